"""`inspect` against fvcore's FLOP count of the same model at the same crop, side by side in one run.

Each measurement is a fresh Python process, so importing torch is included on both sides:

* inspect (export):   ``atrous-advisor inspect MODEL --crop C --json`` — torch.export on meta tensors,
                      FlopCounterMode on meta for the MACs, fields, heads;
* inspect (dispatch): the same with ``--capture dispatch``;
* fvcore:             build the model on the CPU and run ``FlopCountAnalysis(model, x).total()``
                      (TorchScript trace + a real forward), under ``torch.no_grad()``.

    python benchmarks/bench_inspect.py                       # DeepLabV3-ResNet101 at 1024x2048
    python benchmarks/bench_inspect.py --crops 512x1024,1024x2048 --repeat 3
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

MODEL = "torchvision.models.segmentation:deeplabv3_resnet101"
KWARGS = {"weights": None, "weights_backbone": None}

FVCORE = """
import sys, torch, importlib
from fvcore.nn import FlopCountAnalysis
module, name = sys.argv[1].split(":")
kwargs = __import__("json").loads(sys.argv[2])
h, w = (int(v) for v in sys.argv[3].split("x"))
model = getattr(importlib.import_module(module), name)(**kwargs).eval()
analysis = FlopCountAnalysis(model, torch.zeros(1, 3, h, w))
analysis.unsupported_ops_warnings(False)
analysis.uncalled_modules_warnings(False)
with torch.no_grad():
    print(int(analysis.total()))
"""


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def inspect_cmd(crop: str, capture: str) -> list[str]:
    return [sys.executable, "-m", "atrous_advisor", "inspect", MODEL, "--crop", crop,
            "--kwargs", json.dumps(KWARGS), "--json", "--capture", capture]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", default="1024x2048", help="comma-separated HxW crops (default 1024x2048)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each inspect variant (median reported)")
    parser.add_argument("--fvcore-crop", default=None, help="crop for fvcore (default: the last of --crops)")
    args = parser.parse_args()
    crops = args.crops.split(",")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"model: {MODEL} {KWARGS}")
    results: dict[str, float] = {}
    macs: dict[str, int] = {}
    for crop in crops:
        for capture in ("export", "dispatch"):
            times = []
            for _ in range(args.repeat):
                elapsed, out = timed(inspect_cmd(crop, capture))
                times.append(elapsed)
            report = json.loads(out)
            macs[crop] = report["macs"]
            results[f"inspect {capture} {crop}"] = statistics.median(times)
            print(f"inspect --capture {capture:8s} {crop:>10s}: {statistics.median(times):6.2f} s "
                  f"(median of {args.repeat}; MACs {report['macs'] / 1e9:.1f} G, capture {report['capture']})")
    fv_crop = args.fvcore_crop or crops[-1]
    elapsed, out = timed([sys.executable, "-c", FVCORE, MODEL, json.dumps(KWARGS), fv_crop])
    fv_macs = int(out.strip().splitlines()[-1])
    print(f"fvcore FlopCountAnalysis         {fv_crop:>10s}: {elapsed:6.2f} s (MACs {fv_macs / 1e9:.1f} G)")
    for capture in ("export", "dispatch"):
        key = f"inspect {capture} {fv_crop}"
        if key in results:
            print(f"ratio fvcore / inspect ({capture}) at {fv_crop}: {elapsed / results[key]:.1f}×")
    if fv_crop in macs:
        print(f"MACs: inspect (FlopCounterMode) {macs[fv_crop] / 1e9:.1f} G vs fvcore {fv_macs / 1e9:.1f} G "
              f"({(fv_macs - macs[fv_crop]) / macs[fv_crop]:+.1%}: fvcore also counts batch norm, "
              "interpolation and pooling)")


if __name__ == "__main__":
    main()
