#!/usr/bin/env bash
# The GPU check (≤ 10 min on one recent NVIDIA GPU): torchvision DeepLabV3-ResNet50 at a 512 px crop on a synth
# set whose cues reach out to half the image.
#   1. validate: the model's own rates (12, 24, 36) against the suggested ones (r* = (512 − 32) / 48 = 10:
#      (10, 20, 30)), 2 seeds, the same schedule   → benchmarks/results/gpu_validate.json
#   2. speed and memory of validate's training loop: bf16 autocast + channels_last against fp32 eager
#      (images/s, peak allocated memory)             → benchmarks/results/gpu_precision.json
# Run from anywhere:  bash benchmarks/gpu_check.sh        (no weights are downloaded: weights=None)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "gpu_check: no CUDA device here; nothing measured")'

WORK=benchmarks/out/gpu_check
DATA=$WORK/data-512
mkdir -p benchmarks/results "$WORK"
[ -f "$DATA/synth.json" ] || python -m atrous_advisor synth "$DATA" --size 512 --train 256 --val 32 --classes 5 \
    --cue-far 0.5 --objects 6 --seed 1

# 1. current vs suggested; resumable: rerunning skips finished runs.
python -m atrous_advisor validate examples/torchvision_deeplabv3.py --kwargs '{"num_classes": 5}' --data "$DATA" \
    --crop 512 --steps 300 --batch-size 8 --repeats 2 --optimizer adamw --lr 0.0001 --scale-range 1,1 \
    --device cuda --out "$WORK/validate" --json > "$WORK/validate.json"
cp "$WORK/validate.json" benchmarks/results/gpu_validate.json

# 2. bf16 + channels_last vs fp32 eager: validate's own loop, same data, same seed, steps after the first timed.
python - "$DATA" <<'PY'
import json, platform, sys
from pathlib import Path

import torch

from atrous_advisor.graph.loading import load_model
from atrous_advisor.train import loop
from atrous_advisor.train.data import SegmentationDataset, discover
from atrous_advisor.train.validate import device_name

data, device, crop, batch, steps = Path(sys.argv[1]), torch.device("cuda"), 512, 8, 40
dataset = SegmentationDataset(discover(data, "train").samples, (crop, crop), train=True, scale_range=(1.0, 1.0))
results = []
for mode, precision, channels_last in (("fp32", "fp32", False), ("bf16+channels_last", "bf16", True)) * 2:
    loop.seed_everything(0)
    model = load_model("examples/torchvision_deeplabv3.py", {"num_classes": 5}, device="cpu").model.to(device)
    settings = loop.TrainSettings(steps=steps, batch_size=batch, lr=1e-4, optimizer="adamw", crop=(crop, crop),
                                  num_classes=5, precision=precision, channels_last=channels_last, num_workers=4)
    torch.cuda.reset_peak_memory_stats(device)
    stats = loop.train(model, dataset, settings, 0, device)
    results.append({"mode": mode, "images_per_second": round(stats.images_per_second, 2),
                    "peak_allocated_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 3)})
    print(results[-1], file=sys.stderr, flush=True)
    del model
    torch.cuda.empty_cache()
summary = {}
for mode in ("fp32", "bf16+channels_last"):  # two interleaved rounds each: keep the faster (less noise from warm-up)
    rows = [r for r in results if r["mode"] == mode]
    summary[mode] = max(rows, key=lambda r: r["images_per_second"])
summary["speedup"] = round(summary["bf16+channels_last"]["images_per_second"] / summary["fp32"]["images_per_second"], 3)
summary["memory_ratio"] = round(summary["bf16+channels_last"]["peak_allocated_gib"] / summary["fp32"]["peak_allocated_gib"], 3)
record = {"device_name": device_name(device), "torch": torch.__version__, "python": platform.python_version(),
          "model": "torchvision deeplabv3_resnet50 (weights=None)", "crop": crop, "batch": batch, "steps": steps,
          "runs": results, "summary": summary}
Path("benchmarks/results/gpu_precision.json").write_text(json.dumps(record, indent=2) + "\n")
print(json.dumps(summary, indent=2))
PY
echo "wrote benchmarks/results/gpu_validate.json and benchmarks/results/gpu_precision.json"
