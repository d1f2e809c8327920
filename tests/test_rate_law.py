"""The rate-law benchmark's bookkeeping on a tiny cell: its recorded commands run as written, the results
JSON has the issue's keys, and re-running a recorded command (same seed, same thread count) gives the same
mIoU. The experiment itself is a benchmark (benchmarks/rate_law.py), not a test.

Tolerance: 1e-6 absolute on mIoU. On one machine with one thread the run is deterministic (seeded init, a
sample order and augmentation fixed by (seed, epoch, index)), so the two values are expected to be equal.
"""

import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).parents[1]
REPRODUCE_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def rate_law():
    spec = importlib.util.spec_from_file_location("rate_law", ROOT / "benchmarks" / "rate_law.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rate_law"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_recorded_cell_reruns_to_the_same_miou(rate_law, tmp_path):
    plan = rate_law.Plan(crops={48: (1,)}, seeds=(3,), steps=3, batch_size=2, train=4, val=2, classes=3, objects=2,
                         checkpoint_every=0, work=tmp_path / "work", results=tmp_path / "rate_law.json")
    rate_law.make_data(plan)
    rate_law.run_all(plan, jobs=1)
    document = json.loads(plan.results.read_text())

    # 48 px at stride 4: r* = 0.67 → suggested (1, 2, 3), which is also the sweep's 1; the model's own (24, 48, 72).
    assert sorted(r["base_rate"] for r in document["runs"]) == [1, 24]
    run = next(r for r in document["runs"] if r["base_rate"] == 1)
    assert set(run) == {"crop", "stride", "base_rate", "rates", "seed", "steps", "miou", "images_per_second", "command"}
    assert run["crop"] == [48, 48] and run["stride"] == 4 and run["rates"] == [[1, 1], [2, 2], [3, 3]]
    assert run["seed"] == 3 and run["steps"] == 3 and 0 <= run["miou"] <= 1
    assert shlex.split(run["command"])[:3] == ["OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1", "atrous-advisor"]
    (crop,) = document["crops"]
    assert set(crop) == {"crop", "stride", "r_star", "best_rate", "data_command", "per_rate"}
    assert crop["r_star"] == pytest.approx((48 - 32) / 24, abs=1e-4)
    assert {p["base_rate"]: p["seeds"] for p in crop["per_rate"]} == {1: 1, 24: 1}
    assert crop["best_rate"] == max(crop["per_rate"], key=lambda p: p["miou_mean"])["base_rate"]
    assert document["partial"] is False

    recorded, again = rate_law.rerun_command(run, tmp_path / "again")
    assert recorded == run["miou"]
    assert abs(again - recorded) <= REPRODUCE_TOLERANCE


def test_paired_comparison_interval(rate_law):
    a = [{"seed": s, "miou": m} for s, m in ((0, 0.60), (1, 0.62), (2, 0.64))]
    b = [{"seed": s, "miou": m} for s, m in ((0, 0.50), (1, 0.55), (2, 0.51))]
    paired = rate_law._paired(a, b)
    assert paired["differences"] == pytest.approx([0.10, 0.07, 0.13])
    assert paired["mean"] == pytest.approx(0.10)
    half = 4.303 * 0.03 / 3 ** 0.5  # t(0.975, 2) · sd / √n, sd of (0.10, 0.07, 0.13) = 0.03
    assert paired["ci95"] == pytest.approx([0.10 - half, 0.10 + half])
    assert rate_law._paired(a, []) is None
