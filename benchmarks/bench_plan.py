"""How close is `plan`'s fake-tensor estimate to a real training step? And how fast is a plan?

Accuracy: for each (model, crop, batch) a fresh Python process builds the model on the CPU with random
weights, primes SGD (momentum 0.9) and runs the same ``training_step`` the planner runs on fake tensors:

* real peak (profiler): PyTorch's CPU memory profiling of one step (``atrous_advisor.plan.measure``):
  the peak of live bytes in PyTorch's allocator, parameters, optimizer state and batch included — the CPU
  analogue of ``torch.cuda.max_memory_allocated``, which is what the estimate claims to be;
* real peak (RSS): the process's peak resident set over its RSS before the model was built (VmHWM reset
  through /proc/self/clear_refs), with glibc told to return every block over 64 KiB to the OS
  (MALLOC_MMAP_THRESHOLD_) so freed tensors leave the RSS. It includes what no tensor tracker sees
  (library initialisation, oneDNN's kernels) and is shown as a cross-check, not as the reference.

The estimate is `plan_model` in the same process on fake tensors, before any real tensor exists.

MMSegmentation zoo: the estimate for the closest model this machine builds next to the training memory
mmseg publishes for its configs (torch.cuda.max_memory_allocated, fp32, batch per GPU).

Speed: a plan over 10 crops of DeepLabV3-ResNet50, and one crop under MemTracker for the ratio.

    python benchmarks/bench_plan.py            # everything; writes benchmarks/results/plan_accuracy.json
    python benchmarks/bench_plan.py --quick    # the tiny model only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TV = {"weights": None, "weights_backbone": None}

# (label, spec, kwargs, crop, batch)
CASES = [
    ("tiny ASPP", "examples/tiny_aspp.py", {}, 128, 4),
    ("tiny ASPP", "examples/tiny_aspp.py", {}, 256, 4),
    ("torchvision FCN-ResNet50", "torchvision.models.segmentation:fcn_resnet50", {**TV, "num_classes": 19}, 128, 2),
    ("torchvision FCN-ResNet50", "torchvision.models.segmentation:fcn_resnet50", {**TV, "num_classes": 19}, 192, 2),
    ("torchvision DeepLabV3-ResNet50", "torchvision.models.segmentation:deeplabv3_resnet50", {**TV, "num_classes": 19}, 128, 2),
    ("torchvision DeepLabV3-ResNet50", "torchvision.models.segmentation:deeplabv3_resnet50", {**TV, "num_classes": 19}, 256, 2),
    ("smp DeepLabV3+ ResNet34", "examples/smp_deeplabv3plus.py", {}, 256, 2),
    ("smp PSPNet ResNet34", "examples/smp_pspnet.py", {}, 256, 4),
]

# mmseg's published training memory (GB = GiB of max_memory_allocated, per GPU), and the model built here.
ZOO = [
    ("DeepLabV3 R-50-D8, Cityscapes 512×1024, 2/GPU", 6.1, "torchvision.models.segmentation:deeplabv3_resnet50",
     {**TV, "num_classes": 19, "aux_loss": True}, (512, 1024), 2),
    ("DeepLabV3 R-101-D8, Cityscapes 512×1024, 2/GPU", 9.6, "torchvision.models.segmentation:deeplabv3_resnet101",
     {**TV, "num_classes": 19, "aux_loss": True}, (512, 1024), 2),
    ("DeepLabV3 R-50-D8, Cityscapes 769×769, 2/GPU", 6.9, "torchvision.models.segmentation:deeplabv3_resnet50",
     {**TV, "num_classes": 19, "aux_loss": True}, (769, 769), 2),
    ("PSPNet R-50-D8, Cityscapes 512×1024, 2/GPU", 6.1, "benchmarks/models/pspnet_r50_d8.py", {"classes": 19}, (512, 1024), 2),
    ("DeepLabV3 R-50-D8, ADE20K 512×512, 4/GPU", 8.9, "torchvision.models.segmentation:deeplabv3_resnet50",
     {**TV, "num_classes": 150, "aux_loss": True}, (512, 512), 4),
]

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(1)
spec, kwargs, crop, batch = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
from atrous_advisor.graph.loading import load_model
from atrous_advisor.plan.measure import profiled_peak
from atrous_advisor.plan.planner import plan_model
from atrous_advisor.plan.step import make_optimizer, prime_optimizer, training_step

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

t = time.perf_counter()
est = plan_model(spec, 1 << 50, batch, crops=[(crop, crop)], kwargs=kwargs).candidates[0]
est_s = time.perf_counter() - t
torch.manual_seed(0)
base = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")
model = load_model(spec, kwargs, device="cpu").model.train()
opt = make_optimizer("sgd", model.parameters())
prime_optimizer(model, opt)
images, target = torch.randn(batch, 3, crop, crop), torch.randint(0, 4, (batch, crop, crop))
training_step(model, opt, images, target)
rss = status("VmHWM:") - base
t = time.perf_counter()
real = profiled_peak(model, opt, images, target)
print(json.dumps({"estimate": est.peak_bytes, "breakdown": est.breakdown.model_dump(), "profiler": real,
                  "rss": rss, "estimate_s": round(est_s, 2), "profiled_step_s": round(time.perf_counter() - t, 2)}))
"""

ESTIMATE_ONLY = CHILD.split("torch.manual_seed(0)")[0] + "print(json.dumps({'s': round(est_s, 2)}))"

MEMTRACKER = r"""
import json, sys, time, torch
torch.set_num_threads(1)
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.distributed._tools.mem_tracker import MemTracker
from atrous_advisor.graph.loading import load_model
from atrous_advisor.plan.planner import _fakeify
from atrous_advisor.plan.step import make_optimizer, prime_optimizer, training_step
model = load_model(sys.argv[1], json.loads(sys.argv[2])).model.train()
mode = FakeTensorMode()
_fakeify(model, mode)
crop, batch = int(sys.argv[3]), int(sys.argv[4])
with mode:
    opt = make_optimizer("sgd", model.parameters())
    prime_optimizer(model, opt)
    x, y = torch.empty(batch, 3, crop, crop), torch.zeros(batch, crop, crop, dtype=torch.long)
    tracker = MemTracker()
    tracker.track_external(model, opt, x, y)
    t = time.perf_counter()
    with tracker:
        training_step(model, opt, x, y)
    seconds = time.perf_counter() - t
peak = max(tracker.get_tracker_snapshot("peak").values(), key=lambda s: s["Total"])["Total"]
print(json.dumps({"memtracker_peak": peak, "memtracker_step_s": round(seconds, 2)}))
"""


def child(code: str, *args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"child failed: {args}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the tiny model")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/plan_accuracy.json"))
    args = parser.parse_args()
    cases = CASES[:2] if args.quick else CASES
    rows = []
    print("| model | crop | batch | estimate MiB | real (profiler) MiB | estimate/real | real (RSS) MiB |")
    print("|---|---|---|---|---|---|---|")
    for label, spec, kwargs, crop, batch in cases:
        r = child(CHILD, spec, json.dumps(kwargs), str(crop), str(batch))
        r.update(model=label, spec=spec, crop=crop, batch=batch, ratio=round(r["estimate"] / r["profiler"], 3))
        rows.append(r)
        print(f"| {label} | {crop} | {batch} | {mib(r['estimate'])} | {mib(r['profiler'])} | {r['ratio']:.2f} | {mib(r['rss'])} |",
              flush=True)

    zoo = []
    if not args.quick:
        from atrous_advisor.plan.planner import plan_model

        print("\n| mmseg config | published GiB | model built here | estimate GiB |")
        print("|---|---|---|---|")
        for label, published, spec, kwargs, crop, batch in ZOO:
            est = plan_model(spec, 1 << 50, batch, crops=[crop], kwargs=kwargs).candidates[0]
            zoo.append({"config": label, "published_gib": published, "spec": spec, "kwargs": kwargs, "crop": crop,
                        "batch": batch, "estimate_gib": round(est.peak_bytes / 2**30, 2),
                        "breakdown": est.breakdown.model_dump()})
            print(f"| {label} | {published} | {spec} | {est.peak_bytes / 2**30:.2f} |", flush=True)

    speed = {}
    if not args.quick:
        spec, kwargs = "torchvision.models.segmentation:deeplabv3_resnet50", {**TV, "num_classes": 19}
        cmd = [sys.executable, "-m", "atrous_advisor", "plan", spec, "--kwargs", json.dumps(kwargs), "--memory", "24GiB",
               "--batch", "8", "--crops", "448:1024:64", "--json"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        plan_s = time.perf_counter() - t
        if done.returncode not in (0, 1):
            raise SystemExit(done.stderr[-2000:])
        ours = child(ESTIMATE_ONLY, spec, json.dumps(kwargs), "512", "8")
        mt = child(MEMTRACKER, spec, json.dumps(kwargs), "512", "8")
        speed = {"plan_10_crops_s": round(plan_s, 1), "candidates": len(json.loads(done.stdout)["candidates"]),
                 "one_crop_estimate_s": ours["s"], **mt}
        print(f"\nplan over 10 crops (DeepLabV3-ResNet50, batch 8), whole CLI process: {plan_s:.1f} s; "
              f"one crop 512, batch 8: StepMemory {ours['s']:.1f} s (incl. build and head capture) vs "
              f"MemTracker step alone {mt['memtracker_step_s']:.1f} s; MemTracker peak {mib(mt['memtracker_peak'])} MiB")

    import torch

    result = {
        "command": "python benchmarks/bench_plan.py" + (" --quick" if args.quick else ""),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), no GPU; torch {torch.__version__}",
        "accuracy": rows, "mmseg_zoo": zoo, "speed": speed,
    }
    from atrous_advisor.files import atomic_path

    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
