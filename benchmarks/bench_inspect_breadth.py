"""`inspect` over torchvision, smp and transformers models: what it finds (stride, heads, unknown) and how
long it takes — and the capture choice (dispatch recorder vs torch.export) measured on the same models.

Every model is built at its real size on the meta device (random init, nothing downloaded). Two tables:

* breadth: one row per model — crop, output stride, global context, heads, unknown (why), and the
  in-process time of ``inspect_model`` with the default dispatch capture (build + capture + cost + analysis;
  the second call, so imports — measured below — and the library's lazy per-model imports are excluded);
* capture: for a CNN and attention models, ``inspect_model`` with ``prefer="dispatch"`` and
  ``prefer="export"`` in the same process, and whether both give the same output field; and the start-up
  cost of a fresh process: ``import torch, torchvision`` alone vs the whole ``atrous-advisor inspect`` CLI.

    python benchmarks/bench_inspect_breadth.py            # writes benchmarks/results/inspect_breadth.json
    python benchmarks/bench_inspect_breadth.py --quick    # a few models, no export comparison
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "inspect_breadth.json"
HF = str(Path(__file__).resolve().parent / "hf_full_size.py")

# (label, spec, kwargs, crop)
MODELS = [
    ("torchvision DeepLabV3-ResNet50", "torchvision.models.segmentation:deeplabv3_resnet50", {}, (512, 512)),
    ("torchvision FCN-ResNet50", "torchvision.models.segmentation:fcn_resnet50", {}, (512, 512)),
    ("torchvision LR-ASPP MobileNetV3", "torchvision.models.segmentation:lraspp_mobilenet_v3_large", {}, (512, 512)),
    ("torchvision DeepLabV3-MobileNetV3", "torchvision.models.segmentation:deeplabv3_mobilenet_v3_large", {}, (512, 512)),
    ("smp DeepLabV3+ resnet34", "segmentation_models_pytorch:DeepLabV3Plus", {"encoder_name": "resnet34"}, (512, 512)),
    ("smp PSPNet resnet34", "segmentation_models_pytorch:PSPNet", {"encoder_name": "resnet34"}, (512, 512)),
    ("smp PSPNet mobilenet_v2", "segmentation_models_pytorch:PSPNet", {"encoder_name": "mobilenet_v2"}, (512, 512)),
    ("smp DeepLabV3 efficientnet-b0", "segmentation_models_pytorch:DeepLabV3", {"encoder_name": "efficientnet-b0"}, (512, 512)),
    ("smp UPerNet resnet34", "segmentation_models_pytorch:UPerNet", {"encoder_name": "resnet34"}, (512, 512)),
    ("smp DeepLabV3+ mit_b0", "segmentation_models_pytorch:DeepLabV3Plus", {"encoder_name": "mit_b0"}, (512, 512)),
    ("smp Segformer mit_b0", "segmentation_models_pytorch:Segformer", {"encoder_name": "mit_b0"}, (512, 512)),
    ("HF SegFormer-B0", f"{HF}:segformer", {}, (512, 512)),
    ("HF UperNet Swin-T", f"{HF}:upernet_swin", {}, (512, 512)),
    ("HF UperNet ConvNeXt-T", f"{HF}:upernet_convnext", {}, (512, 512)),
    ("HF BEiT-B", f"{HF}:beit", {}, (512, 512)),
    ("HF DPT-L", f"{HF}:dpt", {}, (384, 384)),
    ("HF MobileViT-S DeepLabV3", f"{HF}:mobilevit", {}, (512, 512)),
    ("HF MobileViTV2 DeepLabV3", f"{HF}:mobilevitv2", {}, (512, 512)),
    ("HF Mask2Former Swin-T", f"{HF}:mask2former", {}, (384, 384)),
]
QUICK = {"torchvision DeepLabV3-ResNet50", "HF SegFormer-B0", "HF UperNet Swin-T", "HF MobileViT-S DeepLabV3"}
CAPTURE = ["torchvision DeepLabV3-ResNet50", "HF SegFormer-B0", "HF UperNet Swin-T", "HF BEiT-B"]


def heads_of(r) -> str:
    parts = [f"ASPP {h.rates[-1][0] if h.rates else ''}@{h.stride[0]}" for h in r.aspp]
    parts += [f"PPM {tuple(h.scales)}@{h.stride[0]}" for h in r.ppm]
    parts += [f"FCN d{h.rate[0]}@{h.stride[0]}" for h in r.fcn]
    parts += [f"{u.kind.upper()} (no advice)" for u in r.unassessed]
    return ", ".join(parts) or "—"


def run_one(spec, kwargs, crop, prefer="dispatch"):
    from atrous_advisor.graph.inspection import inspect_model

    start = time.perf_counter()
    report = inspect_model(spec, crop, kwargs or None, layers=False, prefer=prefer)
    return time.perf_counter() - start, report


def startup(repeat: int) -> dict:
    """Fresh processes: import torch+torchvision alone, and the whole CLI on DeepLabV3-ResNet50 at 512."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def once(cmd):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        return time.perf_counter() - t

    cli = [sys.executable, "-m", "atrous_advisor", "inspect", "torchvision.models.segmentation:deeplabv3_resnet50",
           "--crop", "512", "--json", "--capture"]
    runs: dict[str, list[float]] = {"base": [], "dispatch": [], "export": []}
    for _ in range(repeat):  # interleaved, so a change in the machine's load hits all three alike
        runs["base"].append(once([sys.executable, "-c", "import torch, torchvision"]))
        runs["dispatch"].append(once(cli + ["dispatch"]))
        runs["export"].append(once(cli + ["export"]))
    base = statistics.median(runs["base"])
    cli = {k: statistics.median(runs[k]) for k in ("dispatch", "export")}
    return {"import torch, torchvision (s)": round(base, 2),
            "CLI dispatch (s)": round(cli["dispatch"], 2), "CLI export (s)": round(cli["export"], 2),
            "CLI dispatch above the imports (s)": round(cli["dispatch"] - base, 2),
            "CLI export above the imports (s)": round(cli["export"] - base, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few models, no capture comparison")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs for the start-up figures")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    machine = f"{platform.machine()} {platform.processor() or ''}".strip() + f", {os.cpu_count()} CPUs, no GPU used"
    print(f"machine: {machine}; torch {torch.__version__}")
    # imports and first-call set-up are measured apart (start-up figures below), not charged to the first row
    import torchvision  # noqa: F401

    for optional in ("segmentation_models_pytorch", "transformers"):
        try:
            __import__(optional)
        except ImportError:
            pass
    run_one(f"{ROOT / 'examples' / 'tiny_aspp.py'}", {}, (64, 64))
    rows = []
    for label, spec, kwargs, crop in MODELS:
        if args.quick and label not in QUICK:
            continue
        try:
            run_one(spec, kwargs, crop)  # first use: the library's lazy imports of this model's module
            elapsed, r = run_one(spec, kwargs, crop)
        except Exception as exc:  # a model this environment cannot build: a row that says so
            rows.append({"model": label, "crop": list(crop), "error": f"{type(exc).__name__}: {str(exc)[:160]}"})
            print(f"{label:34s} error: {rows[-1]['error']}")
            continue
        row = {
            "model": label, "crop": list(crop), "output_stride": r.output_stride, "global_context": r.global_context,
            "heads": heads_of(r), "unknown": r.unknown, "time_s": round(elapsed, 2),
        }
        rows.append(row)
        stride = "unknown" if r.output_stride is None else r.output_stride[0]
        print(f"{label:34s} {crop[0]}x{crop[1]}  stride {stride!s:>7}  {row['heads']:28s} {elapsed:6.2f} s"
              + (f"  unknown: {r.unknown[:70]}" if r.unknown else ""))
    captures = []
    if not args.quick:
        for label in CAPTURE:
            spec, kwargs, crop = next((s, k, c) for l, s, k, c in MODELS if l == label)
            t_d, r_d = run_one(spec, kwargs, crop, "dispatch")
            t_e, r_e = run_one(spec, kwargs, crop, "export")
            same = (r_d.receptive_field, r_d.output_stride, r_d.global_context) == (r_e.receptive_field, r_e.output_stride, r_e.global_context)
            captures.append({"model": label, "dispatch_s": round(t_d, 2), "export_s": round(t_e, 2),
                             "export/dispatch": round(t_e / t_d, 1), "same_result": same, "export_capture": r_e.capture})
            print(f"capture {label:30s} dispatch {t_d:6.2f} s  export {t_e:6.2f} s  same result: {same}")
    print("\n| model | crop | output stride | global context | heads (largest rate or scales @ stride) | time |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['model']} | {row['crop'][0]}×{row['crop'][1]} | error: {row['error'][:60]} | | | |")
            continue
        stride = "unknown" if row["output_stride"] is None else row["output_stride"][0]
        ctx = "unknown" if row["global_context"] is None else ("yes" if row["global_context"] else "no")
        print(f"| {row['model']} | {row['crop'][0]}×{row['crop'][1]} | {stride} | {ctx} | {row['heads']} | {row['time_s']:.2f} s |")
    print()
    start = startup(args.repeat) if not args.quick else {}
    for k, v in start.items():
        print(f"{k}: {v}")
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"machine": machine, "torch": torch.__version__, "breadth": rows,
                                       "capture": captures, "startup": start}, indent=1) + "\n")
        print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
