"""ERF measurement throughput: images/s batched vs one image per backward, side by side in one run.

`erf` sums the centre outputs of a whole batch and runs one backward: in eval mode the images of a batch
are independent, so that gives every image its own input gradient. This measures what that buys over one
forward/backward per image, on the same images, with the same accumulation code
(``atrous_advisor.erf.accumulate.accumulate_erf``). The two modes are interleaved over ``--repeats`` rounds after a
warm-up, so machine noise hits both alike; the median images/s is reported, and the ratio.

Models (random weights, nothing downloaded):
  small-aspp  a shallow stem + torchvision's ASPP (rates 3, 6, 9 at stride 4), as in tests/test_erf.py
  deeplabv3   torchvision deeplabv3_resnet50 (stride 8, rates 12, 24, 36), weights=None

    python benchmarks/bench_erf.py [--device auto] [--repeats 3] [--threads N] [--all] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys

import torch
from torch import nn
from torch.nn import functional as F

from atrous_advisor.erf.accumulate import accumulate_erf, noise_batches
from atrous_advisor.runtime import resolve_device


class SmallASPP(nn.Module):
    def __init__(self, rates=(3, 6, 9), width: int = 16, classes: int = 4) -> None:
        from torchvision.models.segmentation.deeplabv3 import ASPP

        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        )
        self.aspp = ASPP(width, rates, 2 * width)
        self.classifier = nn.Conv2d(2 * width, classes, 1)

    def forward(self, x):
        return F.interpolate(self.classifier(self.aspp(self.stem(x))), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


def deeplabv3():
    from torchvision.models.segmentation import deeplabv3_resnet50

    return deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=False)


CASES = {
    # name: (builder, crop, images per measurement, batch size, slow); about 1.5 min on a 2-core CPU, or
    # about 6 min with --all.
    "small-aspp @ 128": (SmallASPP, (128, 128), 64, 16, False),
    "small-aspp @ 256": (SmallASPP, (256, 256), 32, 16, False),
    "deeplabv3-r50 @ 128": (deeplabv3, (128, 128), 8, 8, False),
    "deeplabv3-r50 @ 256": (deeplabv3, (256, 256), 8, 8, True),
}


def images_per_second(model, crop, images, batch_size, device) -> float:
    return accumulate_erf(model, noise_batches(crop, images, batch_size), device=device).images_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=None, help="run only cases whose name contains this")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice); 1 is steadier on a shared machine")
    parser.add_argument("--all", action="store_true", help="also the slow cases (DeepLabV3 at 256 px)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    device = str(resolve_device(args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    if hasattr(os, "getloadavg"):
        print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    rows = []
    for name, (build, crop, images, batch, slow) in CASES.items():
        if (args.only and args.only not in name) or (slow and not args.all):
            continue
        torch.manual_seed(0)
        model = build().eval()
        images_per_second(model, crop, min(images, batch), batch, device)  # warm-up: allocator, kernels
        images_per_second(model, crop, 2, 1, device)
        batched, single = [], []
        for _ in range(args.repeats):
            batched.append(images_per_second(model, crop, images, batch, device))
            single.append(images_per_second(model, crop, images, 1, device))
        row = {
            "case": name,
            "device": device,
            "images": images,
            "batch_size": batch,
            "batched_images_per_second": statistics.median(batched),
            "single_images_per_second": statistics.median(single),
        }
        row["speedup"] = row["batched_images_per_second"] / row["single_images_per_second"]
        rows.append(row)
        if not args.json:
            print(f"{name:<22} batch {batch:>2}: {row['batched_images_per_second']:8.2f} img/s   "
                  f"one at a time: {row['single_images_per_second']:8.2f} img/s   ×{row['speedup']:.2f}",
                  flush=True)
    if hasattr(os, "getloadavg"):
        print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    machine = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
    }
    if args.json:
        print(json.dumps({"machine": machine, "repeats": args.repeats, "results": rows}, indent=2))
    else:
        print(f"\nmedian of {args.repeats} interleaved rounds; torch {machine['torch']}, "
              f"{machine['torch_threads']} threads, {machine['cpu_count']} CPUs, device {device}"
              + (f" ({machine['gpu']})" if machine["gpu"] else ""))


if __name__ == "__main__":
    main()
