"""How long `atrous-advisor rate` takes, side by side with `python -c "import torch"` in the same run.

Each command is run as a fresh process (what a user or a pre-commit hook pays), interleaved so that machine
noise hits every command alike; the median wall time is reported. Also shown: a bare interpreter and the
import of typer + rich + pydantic alone, i.e. the floor any CLI on this stack pays before doing anything.

    python benchmarks/bench_rate.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (interpreter only)": [sys.executable, "-c", "pass"],
    "import typer, rich, pydantic (stack floor)": [
        sys.executable, "-c", "import typer, rich.console, rich.table, pydantic"],
    "atrous-advisor rate --crop 512 --stride 8": [
        shutil.which("atrous-advisor") or "atrous-advisor", "rate", "--crop", "512", "--stride", "8"],
    "atrous-advisor rate ... --json": [
        shutil.which("atrous-advisor") or "atrous-advisor", "rate", "--crop", "512", "--stride", "8", "--json"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for name, cmd in COMMANDS.items():  # warm the page cache once
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    for _ in range(args.repeats):
        for name, cmd in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    torch_time = medians['python -c "import torch"']
    rate_time = medians["atrous-advisor rate --crop 512 --stride 8"]
    print(f"median of {args.repeats} runs each, wall seconds")
    print(f"{'command':<46} {'median':>8} {'vs import torch':>16}")
    for name, median in medians.items():
        print(f"{name:<46} {median:8.3f} {median / torch_time:15.2f}x")
    print(f"\n`rate` takes {rate_time:.3f} s: {torch_time / rate_time:.1f}x faster than merely importing torch.")


if __name__ == "__main__":
    main()
