"""The rate law on CPU: does the best ASPP base rate grow with the crop and sit at round(r*)?

    python benchmarks/rate_law.py                  # run (or resume) the experiment, then write the results
    python benchmarks/rate_law.py --report-only    # rebuild results JSON + figure from the finished runs
    python benchmarks/rate_law.py --plot-only      # redraw the figure from benchmarks/results/rate_law.json
    python benchmarks/rate_law.py --rerun 7        # re-run the recorded command of run 7 into a fresh folder
                                                   # and compare its mIoU with the recorded one

Every training run is `atrous-advisor validate` itself — the experiment is a list of its commands, one per
(crop, seed): each trains the model's own rates (DeepLab's r = 96/s = 24 at stride 4: the "default-style"
rate), the suggested rates and a sweep of base rates around r*, on a `synth` set built at that crop with
cues spread out to half the image (docs/validate.md, "The rate law"). Interrupt it at any time: rerunning
resumes through validate's own resume (finished runs are skipped, the run in progress continues from its
last checkpoint). Two commands run at a time, one thread each (``--jobs``).

Outputs: the runs under benchmarks/out/rate_law/ (not committed); benchmarks/results/rate_law.json and
docs/sections/rate_law.png (committed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path("benchmarks/out/rate_law")  # relative to the repository root, as in the recorded commands
RESULTS = Path("benchmarks/results/rate_law.json")
FIGURE = Path("docs/sections/rate_law.png")
MODEL = "benchmarks/rate_law_model.py"

STRIDE = 4
MARGIN = 32  # the paper's fixed end-to-end margin: FOV = 6·r·s + 32
DEFAULT_STYLE_RATE = 96 // STRIDE  # DeepLab's rule r = 96/s; the model is built with (24, 48, 72)


@dataclass(frozen=True)
class Plan:
    """Everything that defines the experiment; the same schedule for every crop."""

    crops: dict[int, tuple[int, ...]]  # crop → base rates swept (r*/2 … 2·r*)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 400
    batch_size: int = 8
    optimizer: str = "adamw"
    lr: float = 0.005
    width: int = 16  # channels of the model; 16 keeps a run near a minute of one CPU thread
    train: int = 200
    val: int = 48
    classes: int = 3  # background and two object classes told apart only by their cue's colour
    data_seed: int = 1
    cue_near: float = 0.2
    cue_far: float = 0.5
    objects: int = 4
    checkpoint_every: int = 100
    threads: int = 1
    work: Path = WORK
    results: Path = RESULTS
    head: str = "aspp"  # aspp: sweep base rates; ppm: PSPNet scales (1, 2, 3, 6) against the suggested ones

    def r_star(self, crop: int) -> float:
        return (crop - MARGIN) / (6 * STRIDE)

    def data_dir(self, crop: int) -> Path:
        return self.work / f"data-{crop}"

    def out_dir(self, crop: int, seed: int) -> Path:
        return self.work / f"{'ppm-' if self.head == 'ppm' else ''}crop{crop}-seed{seed}"

    def data_args(self, crop: int) -> list[str]:
        return ["synth", str(self.data_dir(crop)), "--size", str(crop), "--train", str(self.train), "--val", str(self.val),
                "--classes", str(self.classes), "--seed", str(self.data_seed), "--cue-near", f"{self.cue_near:g}",
                "--cue-far", f"{self.cue_far:g}", "--objects", str(self.objects)]

    def validate_args(self, crop: int, seed: int) -> list[str]:
        model, variants = (f"{MODEL}:build_psp", []) if self.head == "ppm" else (MODEL, ["--sweep", ",".join(map(str, self.crops[crop]))])
        return ["validate", model, "--kwargs", json.dumps({"num_classes": self.classes, "width": self.width}), "--data", str(self.data_dir(crop)),
                "--crop", str(crop), *variants, "--seed", str(seed), "--repeats", "1",
                "--steps", str(self.steps), "--batch-size", str(self.batch_size), "--optimizer", self.optimizer,
                "--lr", f"{self.lr:g}", "--scale-range", "1,1", "--checkpoint-every", str(self.checkpoint_every),
                "--device", "cpu", "--out", str(self.out_dir(crop, seed))]

    def env_prefix(self) -> str:
        return f"OMP_NUM_THREADS={self.threads} MKL_NUM_THREADS={self.threads}"


# Rates: at least five per crop spanning r*/2 … 2·r*, round(r*) among them; r* = (L − 32) / 24 at stride 4.
PLAN = Plan(crops={
    80: (1, 2, 3, 4, 5),         # r* = 2.00
    112: (2, 3, 4, 5, 7),        # r* = 3.33
    144: (2, 4, 5, 6, 9),        # r* = 4.67
})


def command_text(args: list[str], plan: Plan = PLAN) -> str:
    """The command as a user types it from the repository root (threads pinned, as in the run)."""
    return f"{plan.env_prefix()} atrous-advisor {shlex.join(args)}"


def _env(plan: Plan) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(plan.threads), MKL_NUM_THREADS=str(plan.threads))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _cli(args: list[str], plan: Plan, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "atrous_advisor", *args], cwd=ROOT, env=_env(plan), **kwargs)


def make_data(plan: Plan) -> None:
    for crop in plan.crops:
        if (ROOT / plan.data_dir(crop) / "synth.json").is_file():
            continue
        if _cli(plan.data_args(crop), plan).wait() != 0:
            raise SystemExit(f"synth failed for crop {crop}")


def run_all(plan: Plan, jobs: int, write=None) -> None:
    """All (crop, seed) validate commands, ``jobs`` at a time; seed-major so that a partial result covers every crop."""
    write = write or write_results
    queue = [(crop, seed) for seed in plan.seeds for crop in sorted(plan.crops, reverse=True)]
    logs = ROOT / plan.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running: list[tuple[tuple[int, int], subprocess.Popen]] = []
    failed = []
    last_write = 0.0
    while queue or running:
        while queue and len(running) < jobs:
            crop, seed = queue.pop(0)
            log = open(logs / f"{plan.out_dir(crop, seed).name}.log", "a")
            running.append(((crop, seed), _cli(plan.validate_args(crop, seed), plan, stdout=log, stderr=subprocess.STDOUT)))
            print(f"{time.strftime('%H:%M:%S')} started crop {crop} seed {seed}", flush=True)
        time.sleep(2)
        for item in list(running):
            (crop, seed), proc = item
            if proc.poll() is not None:
                running.remove(item)
                print(f"{time.strftime('%H:%M:%S')} finished crop {crop} seed {seed} (exit {proc.returncode})", flush=True)
                if proc.returncode != 0:
                    failed.append((crop, seed))
        if time.monotonic() - last_write > 30 or not (queue or running):
            write(plan)  # validate rewrites its report after every run: a partial result is always on disk
            last_write = time.monotonic()
    if failed:
        raise SystemExit(f"failed: {failed} (see {plan.work}/logs)")


# ---------------------------------------------------------------------------------------------- results


def _base_rate(variant: dict) -> int:
    return int(round(variant["base_rate"][0]))


def collect_runs(plan: Plan) -> list[dict]:
    runs = []
    for crop in sorted(plan.crops):
        for seed in plan.seeds:
            report = ROOT / plan.out_dir(crop, seed) / "results.json"
            if not report.is_file():
                continue
            data = json.loads(report.read_text())
            for variant in data["variants"]:
                for run in variant["runs"]:
                    runs.append({
                        "crop": [crop, crop], "stride": STRIDE, "base_rate": _base_rate(variant),
                        "rates": variant["rates"], "seed": run["seed"], "steps": run["steps"], "miou": run["miou"],
                        "images_per_second": run["images_per_second"],
                        "command": command_text(plan.validate_args(crop, seed), plan),
                    })
    return runs


def t_quantile_975(dof: int) -> float:
    """Two-sided 95% Student t quantile (small dof table; scipy is not a dependency)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
    return table.get(dof, 1.96)


def summarise(plan: Plan, runs: list[dict]) -> tuple[list[dict], dict]:
    crops, verdict_rows = [], []
    for crop in sorted(plan.crops):
        mine = [r for r in runs if r["crop"][0] == crop]
        by_rate: dict[int, list[dict]] = {}
        for r in mine:
            by_rate.setdefault(r["base_rate"], []).append(r)
        per_rate = []
        for rate in sorted(by_rate):
            values = [r["miou"] for r in by_rate[rate]]
            per_rate.append({"base_rate": rate, "miou_mean": statistics.fmean(values),
                             "miou_std": statistics.stdev(values) if len(values) > 1 else None, "seeds": len(values)})
        complete = [p for p in per_rate if p["seeds"] == len(plan.seeds)]
        best = max(complete, key=lambda p: p["miou_mean"])["base_rate"] if complete else None
        r_star = plan.r_star(crop)
        crops.append({"crop": [crop, crop], "stride": STRIDE, "r_star": round(r_star, 4), "best_rate": best,
                      "data_command": command_text(plan.data_args(crop), plan), "per_rate": per_rate})
        rounded = math.floor(r_star + 0.5)
        paired = _paired(by_rate.get(rounded, []), by_rate.get(DEFAULT_STYLE_RATE, []))
        verdict_rows.append({"crop": crop, "r_star": round(r_star, 4), "round_r_star": rounded, "best_rate": best,
                             "best_within_1_of_round_r_star": None if best is None else abs(best - rounded) <= 1,
                             "complete_rates": len(complete), "rates_planned": len(set(plan.crops[crop]) | {DEFAULT_STYLE_RATE}),
                             "round_r_star_minus_default": paired,
                             "robust": _robust(by_rate, len(plan.seeds))})
    bests = [v["best_rate"] for v in verdict_rows]
    verdict = {
        "per_crop": verdict_rows,
        "best_rate_non_decreasing_with_crop": None if None in bests else all(a <= b for a, b in zip(bests, bests[1:])),
        "best_rate_strictly_increasing_with_crop": None if None in bests else all(a < b for a, b in zip(bests, bests[1:])),
    }
    return crops, verdict


PLATEAU = 0.65  # mIoU: runs below it found the objects but guess their class (measured: none lands in 0.60–0.71)


def _robust(by_rate: dict[int, list[dict]], seeds: int) -> dict:
    """Outcomes are bimodal at this budget: a run learns to read the cue (mIoU ≥ 0.71 here), or stays on a
    plateau where the objects are found and their class is guessed (≤ 0.60). Which one happens depends mostly on
    the seed (initialisation and sample order), and one stuck run swings a three-seed mean by 0.1. So next to
    the mean: the median, how many seeds left the plateau, and — post hoc, labelled as such — the mean mIoU
    of the runs that did."""
    rows = []
    for rate in sorted(by_rate):
        runs = by_rate[rate]
        learned = [r["miou"] for r in runs if r["miou"] >= PLATEAU]
        rows.append({"base_rate": rate, "miou_median": statistics.median(r["miou"] for r in runs), "seeds": len(runs),
                     "left_plateau": len(learned), "miou_mean_left_plateau": statistics.fmean(learned) if learned else None})
    complete = [r for r in rows if r["seeds"] == seeds and r["base_rate"] != DEFAULT_STYLE_RATE]
    best = max(complete, key=lambda r: r["miou_median"])["base_rate"] if complete else None
    return {"plateau_below": PLATEAU, "per_rate": rows, "best_rate_by_median": best}


def _paired(a: list[dict], b: list[dict]) -> dict | None:
    """mIoU(round r*) − mIoU(default-style) over the seeds both have: mean, 95% t interval, per-seed differences."""
    by_seed = {r["seed"]: r["miou"] for r in b}
    diffs = [r["miou"] - by_seed[r["seed"]] for r in sorted(a, key=lambda r: r["seed"]) if r["seed"] in by_seed]
    if not diffs:
        return None
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return {"seeds": 1, "mean": mean, "ci95": None, "differences": diffs}
    half = t_quantile_975(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return {"seeds": len(diffs), "mean": mean, "ci95": [mean - half, mean + half], "differences": diffs}


def write_results(plan: Plan) -> dict:
    runs = collect_runs(plan)
    crops, verdict = summarise(plan, runs)
    planned = len(plan.seeds) * sum(len(set(r) | {DEFAULT_STYLE_RATE, math.floor(plan.r_star(c) + 0.5)}) for c, r in plan.crops.items())
    document = {
        "runs": runs,
        "crops": crops,
        "verdict": verdict,
        "partial": len(runs) < planned,
        "runs_planned": planned,
        "machine": "2-core shared x86_64 CPU (AMD EPYC), no GPU; 1 thread per run, 2 runs at a time",
        "settings": {"steps": plan.steps, "batch_size": plan.batch_size, "optimizer": plan.optimizer, "lr": plan.lr,
                     "scale_range": [1, 1], "train_images": plan.train, "val_images": plan.val, "model": MODEL},
    }
    path = ROOT / plan.results
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)
    return document


def markdown(document: dict) -> str:
    """The per-crop table and the verdict lines of docs/validate.md, from the results JSON."""
    lines = ["| crop | r* | round(r*) | " + "mIoU by base rate (mean ± std over seeds; **best**) | DeepLab r = 24 | best |",
             "|---|---|---|---|---|---|"]
    verdicts = {v["crop"]: v for v in document["verdict"]["per_crop"]}
    for crop in document["crops"]:
        L = crop["crop"][0]
        cells, default = [], "—"
        for p in crop["per_rate"]:
            text = f"{p['miou_mean']:.3f} ± {p['miou_std']:.3f}" if p["miou_std"] is not None else f"{p['miou_mean']:.3f}"
            if p["seeds"] < len(PLAN.seeds):
                text += f" ({p['seeds']} seed{'s' if p['seeds'] > 1 else ''})"
            if p["base_rate"] == DEFAULT_STYLE_RATE:
                default = text
                continue
            cells.append(f"{p['base_rate']}: " + (f"**{text}**" if p["base_rate"] == crop["best_rate"] else text))
        lines.append(f"| {L} | {crop['r_star']:.2f} | {verdicts[L]['round_r_star']} | {'; '.join(cells)} | {default} | "
                     f"{crop['best_rate'] if crop['best_rate'] is not None else '—'} |")
    lines.append("")
    for v in document["verdict"]["per_crop"]:
        paired = v["round_r_star_minus_default"]
        if paired is None:
            diff = "no paired seeds yet"
        elif paired["ci95"] is None:
            diff = f"{paired['mean'] * 100:+.1f} pts (1 seed, no interval)"
        else:
            lo, hi = paired["ci95"]
            diff = f"{paired['mean'] * 100:+.1f} pts, 95% CI [{lo * 100:+.1f}, {hi * 100:+.1f}] over {paired['seeds']} paired seeds"
        robust = "; ".join(f"{r['base_rate']}: {r['miou_median']:.3f} ({r['left_plateau']}/{r['seeds']}"
                           + (f", {r['miou_mean_left_plateau']:.3f})" if r["miou_mean_left_plateau"] is not None else ")")
                           for r in v["robust"]["per_rate"])
        lines.append(f"- crop {v['crop']}: median by rate (seeds that left the plateau, their mean): {robust}; "
                     f"best by median: {v['robust']['best_rate_by_median']}")
        within = {True: "yes", False: "no", None: "not known yet"}[v["best_within_1_of_round_r_star"]]
        lines.append(f"- crop {v['crop']}: best {v['best_rate']}, round(r*) {v['round_r_star']}, within ±1: {within}; "
                     f"round(r*) − DeepLab's 24: {diff}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- figure


def plot(document: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    swept = [p["base_rate"] for c in document["crops"] for p in c["per_rate"] if p["base_rate"] != DEFAULT_STYLE_RATE]
    x_default = max(swept, default=0) + 2  # DeepLab's r = 24 is drawn here, off the rate axis' scale
    for colour, crop in zip(colours, document["crops"]):
        rows = [p for p in crop["per_rate"] if p["base_rate"] != DEFAULT_STYLE_RATE]
        x = [p["base_rate"] for p in rows]
        y = [p["miou_mean"] for p in rows]
        err = [p["miou_std"] or 0.0 for p in rows]
        label = f"crop {crop['crop'][0]} (r* = {crop['r_star']:.2f})"
        left.errorbar(x, y, yerr=err, marker="o", capsize=3, color=colour, label=label)
        offset = (colours.index(colour) - 1) * 0.12  # every single run, so the two outcome modes show
        for r in document.get("runs", []):
            if r["crop"][0] == crop["crop"][0]:
                at = x_default if r["base_rate"] == DEFAULT_STYLE_RATE else r["base_rate"]
                left.plot(at + offset, r["miou"], ".", color=colour, alpha=0.45, markersize=5)
        left.axvline(crop["r_star"], color=colour, linestyle=":", linewidth=1)
        default = next((p for p in crop["per_rate"] if p["base_rate"] == DEFAULT_STYLE_RATE), None)
        if default is not None:
            left.errorbar([x_default], [default["miou_mean"]], yerr=[default["miou_std"] or 0.0],
                          marker="x", capsize=3, color=colour, linestyle="none")
    ticks = sorted(set(swept))
    left.set_xticks(ticks + [x_default], [str(t) for t in ticks] + [f"{DEFAULT_STYLE_RATE}\n(DeepLab)"])
    left.set_xlabel(f"base rate r (branches r, 2r, 3r; output stride {STRIDE})")
    left.set_ylabel("val mIoU (mean ± std over seeds)")
    left.set_title("mIoU against the base rate; dotted: r* of each crop", fontsize=10)
    left.legend(fontsize=8)
    crops = [c["crop"][0] for c in document["crops"] if c["best_rate"] is not None]
    bests = [c["best_rate"] for c in document["crops"] if c["best_rate"] is not None]
    right.plot(crops, bests, "o", markersize=8, label="best base rate by mean mIoU (all runs)")
    learned = []  # post hoc: the best level among runs that left the plateau (see the verdict's "robust")
    for v in document.get("verdict", {}).get("per_crop", []):
        rows = [r for r in v["robust"]["per_rate"] if r["miou_mean_left_plateau"] is not None and r["base_rate"] != DEFAULT_STYLE_RATE]
        if rows:
            learned.append((v["crop"], max(rows, key=lambda r: r["miou_mean_left_plateau"])["base_rate"]))
    if learned:
        right.plot([c for c, _ in learned], [b for _, b in learned], "s", markerfacecolor="none", markersize=9,
                   label="post hoc: best among runs that left the plateau")
    if document["crops"]:
        xs = [min(c["crop"][0] for c in document["crops"]) - 16, max(c["crop"][0] for c in document["crops"]) + 16]
        right.plot(xs, [(x - MARGIN) / (6 * STRIDE) for x in xs], "k--", label="r* = (L − 32) / 24")
        right.fill_between(xs, [(x - MARGIN) / (6 * STRIDE) - 1 for x in xs], [(x - MARGIN) / (6 * STRIDE) + 1 for x in xs],
                           color="grey", alpha=0.15, label="r* ± 1")
    right.set_xlabel("crop L (px)")
    right.set_ylabel("base rate")
    right.set_title("best rate against the crop")
    right.legend(fontsize=8)
    status = " — PARTIAL: not every run finished" if document.get("partial") else ""
    fig.suptitle(f"Rate law on synth (cues out to half the crop), {document['settings']['steps']} steps, "
                 f"2-core CPU{status}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------- rerun


def rerun(index: int, out: Path, results: Path = RESULTS) -> tuple[float, float]:
    """Re-run run ``index``'s recorded command, only ``--out`` changed; return (recorded, new) mIoU."""
    document = json.loads((ROOT / results).read_text())
    run = document["runs"][index]
    return rerun_command(run, out)


def rerun_command(run: dict, out: Path) -> tuple[float, float]:
    words = shlex.split(run["command"])
    env = dict(os.environ)
    while "=" in words[0]:  # the pinned thread counts
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    assert words[0] == "atrous-advisor", words
    args = words[1:]
    args[args.index("--out") + 1] = str(out)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    subprocess.run([sys.executable, "-m", "atrous_advisor", *args, "--json"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = json.loads((Path(out) / "results.json").read_text())
    for variant in report["variants"]:
        if variant["rates"] == run["rates"]:
            for again in variant["runs"]:
                if again["seed"] == run["seed"]:
                    return run["miou"], again["miou"]
    raise SystemExit("the rerun did not train that cell")


# ---------------------------------------------------------------------------------------------- PPM


PPM_PLAN = Plan(crops={80: (), 112: ()}, head="ppm", results=Path("benchmarks/results/rate_law_ppm.json"))


def write_ppm_results(plan: Plan) -> dict:
    """PSPNet's (1, 2, 3, 6) against the suggested scales, per crop, paired over seeds."""
    runs, crops = [], []
    for crop in sorted(plan.crops):
        variants: dict[str, list[dict]] = {}
        scales_of: dict[str, list[int]] = {}
        for seed in plan.seeds:
            report = ROOT / plan.out_dir(crop, seed) / "results.json"
            if not report.is_file():
                continue
            for variant in json.loads(report.read_text())["variants"]:
                scales_of[variant["name"]] = variant["scales"]
                for run in variant["runs"]:
                    row = {"crop": [crop, crop], "stride": STRIDE, "variant": variant["name"], "scales": variant["scales"],
                           "seed": run["seed"], "steps": run["steps"], "miou": run["miou"],
                           "images_per_second": run["images_per_second"],
                           "command": command_text(plan.validate_args(crop, seed), plan)}
                    runs.append(row)
                    variants.setdefault(variant["name"], []).append(row)
        per_variant = [{"variant": name, "scales": scales_of[name], "miou_mean": statistics.fmean(r["miou"] for r in rows),
                        "miou_std": statistics.stdev([r["miou"] for r in rows]) if len(rows) > 1 else None, "seeds": len(rows)}
                       for name, rows in variants.items()]
        crops.append({"crop": [crop, crop], "stride": STRIDE, "data_command": command_text(plan.data_args(crop), plan),
                      "per_variant": per_variant,
                      "suggested_minus_current": _paired(variants.get("suggested", []), variants.get("current", []))})
    document = {"runs": runs, "crops": crops, "partial": len(runs) < 2 * len(plan.seeds) * len(plan.crops),
                "machine": "2-core shared x86_64 CPU (AMD EPYC), no GPU; 1 thread per run, 2 runs at a time"}
    path = ROOT / plan.results
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="validate commands at a time (one thread each)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the JSON and figure from finished runs")
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from the results JSON")
    parser.add_argument("--rerun", type=int, metavar="INDEX", help="re-run the recorded command of runs[INDEX]")
    parser.add_argument("--rerun-out", type=Path, help="a new folder for the rerun (default: a fresh one under benchmarks/out)")
    parser.add_argument("--ppm", action="store_true", help="the PPM comparison instead: (1, 2, 3, 6) vs suggested at two crops")
    parser.add_argument("--steps", type=int, help=f"another schedule (default {PLAN.steps}); its runs, JSON and figure are kept apart")
    parser.add_argument("--only-crops", help="with --ppm: run only these crops of its plan (e.g. 80), to fill a free slot")
    args = parser.parse_args()
    if args.ppm:
        if not args.report_only:
            plan = PPM_PLAN
            if args.only_crops:
                plan = replace(PPM_PLAN, crops={int(c): () for c in args.only_crops.split(",")})
            make_data(plan)
            run_all(plan, args.jobs, write_ppm_results)
        document = write_ppm_results(PPM_PLAN)
        for crop in document["crops"]:
            rows = "; ".join(f"{v['variant']} {tuple(v['scales'])}: {v['miou_mean']:.3f}"
                             + (f" ± {v['miou_std']:.3f}" if v["miou_std"] is not None else "") + f" ({v['seeds']} seeds)"
                             for v in crop["per_variant"])
            paired = crop["suggested_minus_current"]
            diff = "—" if paired is None else f"{paired['mean'] * 100:+.1f} pts" + (
                f", 95% CI [{paired['ci95'][0] * 100:+.1f}, {paired['ci95'][1] * 100:+.1f}]" if paired["ci95"] else "")
            print(f"- crop {crop['crop'][0]}: {rows}; suggested − current: {diff}")
        return
    if args.rerun is not None:
        if args.rerun_out is None:
            (ROOT / "benchmarks/out").mkdir(parents=True, exist_ok=True)
            args.rerun_out = Path(tempfile.mkdtemp(prefix="rate_law-rerun-", dir=ROOT / "benchmarks/out"))
        recorded, again = rerun(args.rerun, args.rerun_out)
        print(f"run {args.rerun}: recorded mIoU {recorded:.6f}, rerun {again:.6f}, difference {again - recorded:+.2e}")
        return
    if args.plot_only:
        plot(json.loads((ROOT / RESULTS).read_text()), ROOT / FIGURE)
        return
    plan, figure = PLAN, FIGURE
    if args.steps is not None and args.steps != PLAN.steps:  # the same experiment on a longer schedule, kept apart
        plan = replace(PLAN, steps=args.steps, work=WORK / f"steps{args.steps}",
                       results=RESULTS.with_name(f"rate_law_steps{args.steps}.json"))
        figure = FIGURE.with_name(f"rate_law_steps{args.steps}.png")
    if not args.report_only:
        make_data(plan)
        run_all(plan, args.jobs)
    document = write_results(plan)
    plot(document, ROOT / figure)
    print(markdown(document))
    print(json.dumps({k: v for k, v in document["verdict"].items() if k != "per_crop"}, indent=2))


if __name__ == "__main__":
    main()
