"""The longer fuzz run: the strategies of tests/test_fuzz.py with many more examples, counted instead of asserted.

Every input goes through the CLI in-process (typer's CliRunner) and is checked against the promise of
docs/reliability.md (tests/fuzz_support.py: exit 0/1/2, at most a few stderr lines, no traceback, no "internal
error", JSON stdout with --json, no file outside the output touched, an answer within 30 s). Prints one line
per family and a total, and writes benchmarks/results/fuzz.json; every failing input is listed there.

Usage: python benchmarks/fuzz.py [--scale 1.0]   (scale 1: about 3,000 inputs, a few minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from atrous_advisor.cli import load_commands  # noqa: E402
from fuzz_support import (  # noqa: E402
    CONFIG_SUFFIXES, FIXTURES, TINY_MODEL, any_config, config_file, describe, invoke, json_text, mutated_fixture,
    number_text, option_text,
)

FAMILIES: dict[str, list] = {}


def record(family: str, outcome) -> None:
    FAMILIES.setdefault(family, []).append(outcome)


def run(scale: float, sandbox: Path) -> None:
    app, runner = load_commands(), CliRunner()
    n = lambda count: max(1, int(count * scale))  # noqa: E731
    common = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))

    @settings(max_examples=n(1200), **common)
    @given(command=st.sampled_from(["rate", "ppm"]), crop=st.one_of(st.none(), number_text()),
           stride=st.one_of(st.none(), number_text()),
           extra=st.lists(st.tuples(st.sampled_from(["--rates", "--branches", "--margin", "--scales", "--min-cell"]),
                                    number_text()), max_size=3), as_json=st.booleans())
    def rate_ppm(command, crop, stride, extra, as_json):
        args = [command]
        for name, value in (("--crop", crop), ("--stride", stride), *extra):
            if value is not None:
                args += [name, value]
        args += ["--json"] if as_json else []
        record("rate/ppm options", invoke(runner, app, args, json_mode=as_json, watch=[sandbox / "configs"]))

    @settings(max_examples=n(600), **common)
    @given(text=any_config(), as_json=st.booleans())
    def generated(text, as_json):
        folder = sandbox / "generated"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        path = folder / config_file(text)
        path.write_text(text, encoding="utf-8")
        record("lint: generated configs", invoke(runner, app, ["lint", str(path)] + (["--json"] if as_json else []),
                                                 json_mode=as_json, watch=[sandbox / "configs"]))

    leaves = sorted(p for p in (sandbox / "configs").rglob("*") if p.suffix in CONFIG_SUFFIXES and p.is_file())

    @settings(max_examples=n(800), **common)
    @given(data=st.data(), as_json=st.booleans())
    def mutated(data, as_json):
        path, text = data.draw(mutated_fixture(leaves))
        original = path.read_bytes()
        path.write_text(text, encoding="utf-8")
        try:
            record("lint: mutated fixtures", invoke(runner, app, ["lint", str(path)] + (["--json"] if as_json else []),
                                                    json_mode=as_json, watch=[sandbox / "configs"], allowed=[path]))
        finally:
            path.write_bytes(original)

    data_dir = sandbox / "tiny-data"
    from atrous_advisor.train.synth import SynthSpec, write_dataset

    write_dataset(data_dir, SynthSpec(size=64, train=2, val=1, classes=3, seed=0))
    options = {
        "inspect": ["--crop", "--kwargs"],
        "erf": ["--crop", "--images", "--batch-size", "--seed", "--kwargs", "--extent-threshold"],
        "validate": ["--crop", "--seed", "--steps", "--batch-size", "--repeats", "--ignore-index", "--num-classes",
                     "--workers", "--scale-range", "--lr", "--sweep", "--scales", "--checkpoint-every", "--kwargs"],
        "synth": ["--size", "--train", "--val", "--classes", "--seed", "--cue-near", "--cue-far", "--objects"],
        "plan": ["--memory", "--batch", "--crops", "--strides", "--image", "--kwargs"],
    }

    @settings(max_examples=n(360), **common)
    @given(data=st.data(), command=st.sampled_from(sorted(options)), as_json=st.booleans())
    def model_commands(data, command, as_json):
        option = data.draw(st.sampled_from(options[command]))
        value = data.draw(json_text() if option == "--kwargs" else option_text(option))
        out = sandbox / "out"
        shutil.rmtree(out, ignore_errors=True)
        base = {
            "inspect": [str(TINY_MODEL), "--crop", "32"],
            "erf": [str(TINY_MODEL), "--crop", "32", "--images", "1", "--batch-size", "1", "--out", str(out / "e.png")],
            "validate": [str(TINY_MODEL), "--data", str(data_dir), "--crop", "64", "--steps", "1", "--batch-size", "1",
                         "--out", str(out / "v"), "--kwargs", '{"num_classes": 3}'],
            "synth": [str(out / "d"), "--size", "32", "--train", "1", "--val", "1"],
            "plan": [str(TINY_MODEL), "--memory", "8GiB", "--batch", "1", "--crops", "64"],
        }[command]
        json_mode = as_json and command != "synth"
        args = [command, *base, option, value] + (["--json"] if json_mode else [])
        record(f"{command} options", invoke(runner, app, args, json_mode=json_mode, watch=[sandbox / "configs", data_dir],
                                           allowed=[out], seconds=60))

    for family in (rate_ppm, generated, mutated, model_commands):
        started = time.perf_counter()
        family()
        print(f"  {family.__name__}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every family's number of inputs")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        shutil.copytree(FIXTURES, sandbox / "configs")
        cwd = Path.cwd()
        os.chdir(sandbox)
        try:
            run(args.scale, sandbox)
        finally:
            os.chdir(cwd)
    seconds = time.perf_counter() - started
    rows, failures = [], []
    for family, outcomes in FAMILIES.items():
        bad = [o for o in outcomes if not o.clean]
        slowest = max(o.seconds for o in outcomes)
        rows.append({"family": family, "inputs": len(outcomes), "clean": len(outcomes) - len(bad), "failures": len(bad),
                     "exit_codes": {str(c): sum(o.exit_code == c for o in outcomes) for c in sorted({o.exit_code for o in outcomes}, key=str)},
                     "slowest_s": round(slowest, 2)})
        failures += [describe(o) for o in bad]
    total = sum(r["inputs"] for r in rows)
    clean = sum(r["clean"] for r in rows)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    for r in rows:
        print(f"{r['family']:<28} {r['inputs']:>5} inputs  {r['clean']:>5} clean  {r['failures']:>3} failures  "
              f"exit codes {r['exit_codes']}  slowest {r['slowest_s']} s")
    print(f"{'total':<28} {total:>5} inputs  {clean:>5} clean  {total - clean:>3} failures  ({seconds:.0f} s on {machine})")
    for line in failures[:20]:
        print("FAIL", line)
    result = {"inputs": total, "clean": clean, "failures": total - clean, "seconds": round(seconds), "machine": machine,
              "families": rows, "failing_inputs": failures}
    out = REPO / "benchmarks" / "results" / "fuzz.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
