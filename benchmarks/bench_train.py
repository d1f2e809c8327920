"""Training throughput of ``validate``'s loop: fp32 eager against bf16 autocast (± channels_last), side by side.

Each model is fine-tuned for ``--steps`` optimiser steps on the synthetic dataset (``atrous_advisor.train.synth``)
with exactly the code ``validate`` runs (``atrous_advisor.train.loop.train``); the first step of every run is
warm-up and not timed (the loop's own ``images_per_second``). Modes are interleaved over ``--repeats`` rounds so
machine noise hits all alike; the median images/s per mode is reported with its ratio to fp32.

Models (random weights, nothing downloaded):
  tiny       examples/tiny_aspp.py (stride-8 stem, ASPP 12/24/36), crop 128, batch 8
  deeplabv3  torchvision deeplabv3_resnet50 (stride 8, ASPP 12/24/36), crop 128 on CPU / 512 on CUDA, batch 2 / 8

    python benchmarks/bench_train.py [--device auto] [--models tiny,deeplabv3] [--steps 6] [--repeats 3] [--json]

On CUDA the modes are the ones ``validate`` chooses between: fp32 eager and bf16 autocast + channels_last.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from atrous_advisor.graph.loading import load_model
from atrous_advisor.train import loop
from atrous_advisor.train.data import SegmentationDataset, discover
from atrous_advisor.train.synth import SynthSpec, write_dataset
from atrous_advisor.runtime import resolve_device
from atrous_advisor.train.validate import device_name

ROOT = Path(__file__).parents[1]
MODELS = {
    "tiny": (str(ROOT / "examples" / "tiny_aspp.py"), {"num_classes": 5}, {"cpu": (128, 8), "cuda": (512, 16)}),
    "deeplabv3": (
        "torchvision.models.segmentation:deeplabv3_resnet50",
        {"weights": None, "weights_backbone": None, "num_classes": 5},
        {"cpu": (128, 2), "cuda": (512, 8)},
    ),
}
MODES = {  # name: (precision, channels_last)
    "fp32": ("fp32", False),
    "bf16": ("bf16", False),
    "bf16+channels_last": ("bf16", True),
}


def measure(spec: str, kwargs: dict, data: Path, crop: int, batch: int, steps: int, device: torch.device, mode: str) -> float:
    precision, channels_last = MODES[mode]
    loop.seed_everything(0)
    model = load_model(spec, kwargs, device="cpu").model.to(device)
    settings = loop.TrainSettings(steps=steps, batch_size=batch, lr=0.01, crop=(crop, crop), num_classes=5,
                                  precision=precision, channels_last=channels_last,
                                  num_workers=4 if device.type == "cuda" else 0)
    dataset = SegmentationDataset(discover(data, "train").samples, (crop, crop), train=True, scale_range=(1.0, 1.0))
    return loop.train(model, dataset, settings, 0, device).images_per_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", default="tiny,deeplabv3")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help="subset of " + ", ".join(MODES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    kind = device.type
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            spec, kwargs, sizes = MODELS[name]
            crop, batch = sizes[kind]
            data = Path(tmp) / f"synth-{crop}"
            if not data.exists():
                write_dataset(data, SynthSpec(size=crop, train=max(16, batch * 2), val=1, classes=5))
            speeds: dict[str, list[float]] = {m: [] for m in args.modes.split(",")}
            for round_ in range(args.repeats):
                for mode in speeds:
                    speeds[mode].append(measure(spec, kwargs, data, crop, batch, args.steps, device, mode))
                    print(f"round {round_ + 1}: {name} {mode} {speeds[mode][-1]:.2f} images/s", file=sys.stderr, flush=True)
            base = statistics.median(speeds["fp32"]) if speeds.get("fp32") else float("nan")
            for mode, values in speeds.items():
                median = statistics.median(values)
                results.append({"model": name, "crop": crop, "batch": batch, "mode": mode,
                                "images_per_second": round(median, 2), "runs": [round(v, 2) for v in values],
                                "speedup_vs_fp32": round(median / base, 3)})
    record = {"device": str(device), "device_name": device_name(device), "torch": torch.__version__,
              "python": platform.python_version(), "steps": args.steps, "repeats": args.repeats, "results": results}
    if args.json:
        json.dump(record, sys.stdout, indent=2)
        print()
    else:
        print(f"{record['device_name']} ({device}), torch {torch.__version__}, {args.steps} steps × {args.repeats} rounds, median")
        print(f"{'model':<10} {'crop':>5} {'batch':>5} {'mode':<20} {'images/s':>9} {'vs fp32':>8}")
        for r in results:
            print(f"{r['model']:<10} {r['crop']:>5} {r['batch']:>5} {r['mode']:<20} {r['images_per_second']:>9.2f} {r['speedup_vs_fp32']:>7.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
