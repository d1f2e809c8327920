"""validate never mixes or loses runs: one run per --out at a time (refused or waiting), leftovers of killed
runs cleaned at start, a corrupt checkpoint set aside instead of blocking every resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from atrous_advisor.errors import InputError  # noqa: E402
from atrous_advisor.train.synth import SynthSpec, write_dataset  # noqa: E402
from atrous_advisor.train.validate import LOCK, ValidateRequest, run_validation  # noqa: E402

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "examples" / "tiny_aspp.py")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, SynthSpec(size=64, train=8, val=4, classes=5, seed=0), force=True)
    return root


def request(data, out, **changes):
    settings = dict(model=TINY, kwargs={"num_classes": 5}, data=data, crop=(64, 64), out=out, steps=2, batch_size=4,
                    device="cpu", checkpoint_every=0)
    settings.update(changes)
    return ValidateRequest(**settings)


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_second_run_into_the_same_out_is_refused_naming_the_first_or_waits(data, tmp_path, capsys):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "atrous_advisor", "validate", TINY, "--data", str(data), "--crop", "64",
               "--kwargs", '{"num_classes": 5}', "--steps", "100000", "--batch-size", "4", "--device", "cpu",
               "--out", str(out)]
    first = subprocess.Popen(command, env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            if (out / LOCK).is_file() and (out / LOCK).read_text().strip() == str(first.pid):
                break
            time.sleep(0.05)
        assert first.poll() is None, first.stderr.read().decode()[-2000:]

        with pytest.raises(InputError, match=f"validate process {first.pid} is writing there; wait for it"):
            run_validation(request(data, out))
        assert not (out / "runs").exists()  # the refused run wrote nothing

        second: dict = {}
        waiting = threading.Thread(target=lambda: second.update(report=run_validation(request(data, out, wait=True))))
        waiting.start()
        deadline = time.monotonic() + 120
        seen = ""
        while f"waiting for validate process {first.pid}" not in seen and time.monotonic() < deadline:
            seen += capsys.readouterr().err
            time.sleep(0.05)
        assert f"waiting for validate process {first.pid} to finish writing {out}" in seen
        assert waiting.is_alive()
    finally:
        first.send_signal(signal.SIGKILL)  # the kernel drops a killed process's lock: the waiting run goes on
        first.wait()
    waiting.join(timeout=120)
    assert second["report"].complete
    assert (out / LOCK).read_text().strip() == str(os.getpid())


def test_leftovers_of_killed_runs_are_cleaned_at_start(data, tmp_path):
    out = tmp_path / "out"
    run_validation(request(data, out))
    finished = sorted(p.name for p in (out / "runs").iterdir())
    # a kill between writing a run's record and deleting its checkpoint, and two writes cut short
    (out / "checkpoints").mkdir(exist_ok=True)
    (out / "checkpoints" / "current-seed0.pt").write_bytes(b"stale checkpoint of a finished run")
    pid = dead_pid()
    (out / "checkpoints" / f".suggested-seed0.atrous-tmp{pid}.pt").write_bytes(b"half a checkpoint")
    (out / "runs" / f".current-seed0.atrous-tmp{pid}.json").write_text('{"half": ')
    report = run_validation(request(data, out))
    assert report.complete
    assert list((out / "checkpoints").iterdir()) == []
    assert sorted(p.name for p in (out / "runs").iterdir()) == finished


def test_a_corrupt_checkpoint_is_set_aside_and_its_run_starts_again(data, tmp_path, capsys):
    out = tmp_path / "out"
    checkpoint = out / "checkpoints" / "current-seed0.pt"
    checkpoint.parent.mkdir(parents=True)
    good = tmp_path / "good.pt"
    torch.save({"tag": None, "step": 1, "model": {}}, good)
    checkpoint.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])  # a partial copy
    report = run_validation(request(data, out))
    err = capsys.readouterr().err
    assert report.complete
    current = next(v for v in report.variants if v.name == "current")
    assert current.runs[0].resumed_from_step == 0
    assert (out / "checkpoints" / "current-seed0.pt.corrupt").read_bytes() == good.read_bytes()[: len(good.read_bytes()) // 2]
    lines = [line for line in err.splitlines() if "checkpoint" in line]
    assert len(lines) == 1 and lines[0].startswith(f"warning: checkpoint {checkpoint} is unreadable")
    assert lines[0].endswith("set aside as current-seed0.pt.corrupt; this run starts again from step 0")
    assert json.loads((out / "results.json").read_text())["complete"]
