"""Corpus benchmark: `lint` over the real config trees of each ecosystem, and against mmengine's loader.

The trees are the repositories' own configs, extracted at run time from local git mirrors
(``/work/.mirror/<owner>+<name>/repo``, as the search tool's ``fetch`` leaves them) with
``git archive HEAD <paths> | tar -x``; nothing is copied into this project. Per ecosystem it prints: files,
configs recognised, fully checked, partly checked (why), skipped (not configs), not recognised, findings by
rule code, and the time of atrous-advisor's static reader + rules (in process, fresh caches, best of
``--repeats``; wall and CPU time — on a shared machine the wall time includes waiting for a core). For MMSegmentation trees it also times ``mmengine.config.Config.fromfile`` on the same
configs and checks that the crop and the ASPP/PPM values agree.

An extra tree can be given with ``--tree NAME=PATH`` (e.g. the MMSegmentation 1.x zoo that the
``mmsegmentation`` wheel carries under ``mmseg/.mim/configs``; its git mirror is too large to fetch).

Usage: python benchmarks/lint_corpus.py [--repeats 3] [--tree mmseg-1.x=/path/to/configs] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MIRRORS = Path(os.environ.get("ATROUS_MIRRORS", "/work/.mirror"))

# ecosystem -> [(mirror, paths inside it)]
CORPUS = {
    "MMSegmentation 0.x (Swin-Transformer-Semantic-Segmentation)": [
        ("SwinTransformer+Swin-Transformer-Semantic-Segmentation", ["configs"])],
    "Detectron2 (configs + projects)": [("facebookresearch+detectron2", ["configs", "projects"])],
    "PaddleSeg": [("PaddlePaddle+PaddleSeg", ["configs"])],
    "yacs research repos": [
        ("kazuto1011+deeplab-pytorch", ["configs"]),
        ("hszhao+semseg", ["config"]),
        ("CSAILVision+semantic-segmentation-pytorch", ["config"]),
    ],
}
MMENGINE_TREES = ("MMSegmentation",)  # ecosystems whose own loader (mmengine) runs here


def extract(mirror: str, paths: list[str], into: Path) -> Path:
    git_dir = MIRRORS / mirror / "repo"
    target = into / mirror
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "--git-dir", str(git_dir), "archive", "HEAD", *paths], capture_output=True,
                             check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def lint_once(roots: list[Path]):
    from atrous_advisor.configs.engine import lint_paths
    from atrous_advisor.configs.settings import Settings

    start, cpu = time.perf_counter(), time.process_time()
    run = lint_paths(roots, Settings())
    return run, time.perf_counter() - start, time.process_time() - cpu


def files_in(roots: list[Path]) -> int:
    return sum(1 for r in roots for p in r.rglob("*") if p.suffix in (".py", ".yaml", ".yml", ".json") and p.is_file())


def summarise(run, seconds: float, cpu: float, files: int) -> dict:
    from atrous_advisor.configs.result import build_report

    report = build_report(run, lambda result, d: False)
    s = report.summary
    codes = Counter(d.code for c in report.configs for d in c.diagnostics)
    return {
        "files": files,
        "configs": s.configs,
        "could_not_be_linted": s.not_linted,
        "fully_checked": s.fully_checked,
        "partly_checked": s.partly_checked,
        "partly_why": s.partly_why,
        "skipped_not_configs": s.skipped,
        "not_recognised": s.not_recognised,
        "with_findings": s.with_findings,
        "findings_by_code": dict(sorted(codes.items())),
        "frameworks": dict(Counter(c.framework for c in report.configs)),
        "lint_seconds": round(seconds, 4),
        "lint_cpu_seconds": round(cpu, 4),
        "seconds_per_100_configs": round(100 * seconds / max(s.configs, 1), 4),
        "cpu_seconds_per_100_configs": round(100 * cpu / max(s.configs, 1), 4),
    }


def mmengine_compare(run) -> dict:
    """Time mmengine loading the same configs; count where crop, rates or scales differ."""
    try:
        from mmengine.config import Config
    except ImportError:
        return {"mmengine": "not installed"}
    from atrous_advisor.configs.crosscheck import _crop, _head

    loaded = failed = disagree = 0
    start, cpu = time.perf_counter(), time.process_time()
    for result in run.results:
        if result.framework not in ("mmseg", "mmseg_new"):
            continue
        try:
            cfg = Config.fromfile(str(result.path)).to_dict()
        except Exception:  # noqa: BLE001 - a config mmengine itself cannot load (missing package base, …)
            failed += 1
            continue
        loaded += 1
        facts = result.facts
        head = _head(cfg)
        theirs_rates = tuple(d for d in head.get("dilations") or () if d != 1) or None
        ours_rates = facts.aspp.rates if facts.aspp and not facts.aspp.is_default else None
        theirs_crop = _crop(cfg)
        ours_crop = facts.crop if facts.crop_source == "RandomCrop.crop_size" else None
        if (theirs_rates, theirs_crop) != (ours_rates, ours_crop) and ours_crop is not None:
            disagree += 1
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"mmengine_loaded": loaded, "mmengine_failed": failed, "mmengine_seconds": round(seconds, 3),
            "mmengine_cpu_seconds": round(cpu, 3), "disagreements": disagree}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH: also lint this folder")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks/results/lint_corpus.json")
    args = parser.parse_args(argv)
    machine = f"{platform.machine()} {platform.processor() or ''}".strip() + f", {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"machine: {machine}")
    out = {"machine": machine, "ecosystems": {}}
    with tempfile.TemporaryDirectory() as tmp:
        trees: dict[str, list[Path]] = {}
        for name, sources in CORPUS.items():
            try:
                trees[name] = [extract(mirror, paths, Path(tmp) / name.split()[0]) for mirror, paths in sources]
            except (subprocess.CalledProcessError, FileNotFoundError) as exc:
                print(f"{name}: skipped, mirror not available ({exc})")
        for spec in args.tree:
            name, _, path = spec.partition("=")
            trees[name] = [Path(path)]
        for name, roots in trees.items():
            best = best_cpu = None
            for _ in range(args.repeats):
                run, seconds, cpu = lint_once(roots)
                best = seconds if best is None else min(best, seconds)
                best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
            row = summarise(run, best, best_cpu, files_in(roots))
            if name.startswith(MMENGINE_TREES):
                row.update(mmengine_compare(run))
                if row.get("mmengine_cpu_seconds"):  # CPU time: the machine is shared, wall time waits on others
                    row["speedup_vs_mmengine"] = round(row["mmengine_cpu_seconds"] / max(best_cpu, 1e-9), 1)
            out["ecosystems"][name] = row
            why = ", ".join(f"{k} {v}" for k, v in sorted(row["partly_why"].items())) or "-"
            print(f"\n{name}\n  files {row['files']}, configs {row['configs']} ({row['frameworks']}), "
                  f"fully checked {row['fully_checked']}, partly {row['partly_checked']} ({why}), "
                  f"skipped {row['skipped_not_configs']}, not recognised {row['not_recognised']}, "
                  f"errors {row['could_not_be_linted']}")
            print(f"  findings by code {row['findings_by_code']}")
            print(f"  lint {row['lint_seconds']:.3f} s wall, {row['lint_cpu_seconds']:.3f} s CPU "
                  f"({row['cpu_seconds_per_100_configs']:.3f} s CPU per 100 configs)")
            if "mmengine_seconds" in row:
                print(f"  mmengine Config.fromfile: {row['mmengine_loaded']} loaded, {row['mmengine_failed']} failed, "
                      f"{row['mmengine_seconds']:.2f} s wall, {row['mmengine_cpu_seconds']:.2f} s CPU "
                      f"({row.get('speedup_vs_mmengine')}x the CPU time of lint), "
                      f"{row['disagreements']} disagreements on crop/rates")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
