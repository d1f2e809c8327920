"""Benchmark: `lint` over 100 MMSegmentation configs with their bases vs mmengine merely loading them.

Generates 100 leaf configs (crops, rates, scales, models varied) that inherit model, dataset, runtime and
schedule bases from the test fixture tree, then times, in one run on the same files:

- atrous-advisor's static reader + rules (``lint_paths``, in process, fresh caches each repeat);
- ``mmengine.config.Config.fromfile`` on each leaf (what any mmengine-based check pays just to load);
- the whole CLI in a subprocess (``python -m atrous_advisor lint DIR``): interpreter start, imports, output.

Usage: python benchmarks/bench_lint.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FIXTURES = REPO / "tests" / "fixtures" / "configs" / "mmseg1x"

MODELS = ["deeplabv3_r50-d8", "pspnet_r50-d8", "deeplabv3plus_r50-d8", "fastfcn_r50-d32_jpu_psp", "fcn_r50-d8"]
DATASETS = ["cityscapes", "ade20k", "hrf", "cityscapes_769x769"]
CROPS = [256, 320, 384, 512, 640, 769, 1024]


def make_tree(folder: Path, count: int = 100) -> list[Path]:
    shutil.copytree(FIXTURES / "_base_", folder / "_base_")
    (folder / "bench").mkdir()
    leaves = []
    for i in range(count):
        model, data, crop = MODELS[i % len(MODELS)], DATASETS[i % len(DATASETS)], CROPS[i % len(CROPS)]
        rates = (1, 6 + i % 7, 2 * (6 + i % 7), 3 * (6 + i % 7))
        text = f"""_base_ = [
    '../_base_/models/{model}.py', '../_base_/datasets/{data}.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40k.py'
]
crop_size = ({crop}, {crop})
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline)) if False else dict(batch_size=2)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor, decode_head=dict(num_classes={19 + i}))
"""
        # Half the leaves set their own pipeline; the other half keep the base's (the crop-binding trap).
        if i % 2:
            text = text.replace(" if False else dict(batch_size=2)", "")
        else:
            text = text.replace("train_dataloader = dict(dataset=dict(pipeline=train_pipeline)) if False else dict(batch_size=2)\n", "")
        if model.startswith("deeplabv3"):
            text = text.replace(f"num_classes={19 + i})", f"num_classes={19 + i}, dilations={rates})")
        path = folder / "bench" / f"{model}_{i:03d}_{data}-{crop}x{crop}.py"
        path.write_text(text)
        leaves.append(path)
    return leaves


def time_static(leaves: list[Path]) -> tuple[float, int]:
    from atrous_advisor.configs.engine import lint_paths
    from atrous_advisor.configs.settings import Settings

    start = time.perf_counter()
    run = lint_paths(leaves, Settings())
    elapsed = time.perf_counter() - start
    assert not run.errors, run.errors
    return elapsed, run.diagnostic_count


def time_mmengine(leaves: list[Path]) -> float:
    from mmengine.config import Config

    start = time.perf_counter()
    for leaf in leaves:
        Config.fromfile(str(leaf))
    return time.perf_counter() - start


def time_cli(folder: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "atrous_advisor", "lint", str(folder / "bench")],
                          capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - start
    assert proc.returncode in (0, 1), proc.stderr
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        leaves = make_tree(Path(tmp))
        # Warm-up: import both libraries once, so that the timings compare loading, not importing.
        time_static(leaves[:2])
        time_mmengine(leaves[:2])
        static, mmengine, cli = [], [], []
        for _ in range(args.repeats):
            elapsed, findings = time_static(leaves)
            static.append(elapsed)
            mmengine.append(time_mmengine(leaves))
            cli.append(time_cli(Path(tmp)))
        s, m, c = statistics.median(static), statistics.median(mmengine), statistics.median(cli)
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
        print(f"{len(leaves)} configs, 4 bases each ({len(list(Path(tmp, '_base_').rglob('*.py')))} base files), "
              f"{findings} findings; median of {args.repeats}")
        print(f"atrous-advisor lint (in process, read + resolve + rules): {s * 1000:8.1f} ms")
        print(f"mmengine Config.fromfile (load only):                     {m * 1000:8.1f} ms")
        print(f"ratio mmengine / atrous-advisor:                          {m / s:8.1f}x")
        print(f"atrous-advisor lint CLI, whole process (start + imports): {c * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
