"""User model code never owns the exit code or stdout: sys.exit, BaseException and print in import, build and
forward, through the real CLI in a subprocess (an in-process runner would swallow a SystemExit itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).parents[1]

# examples/tiny_aspp.py, with the misbehaviour chosen by an environment variable: MISBEHAVE=<phase>:<act>
MODEL = '''
import os, sys
sys.path.insert(0, {examples!r})
import tiny_aspp

PHASE, _, ACT = os.environ.get("MISBEHAVE", "none:none").partition(":")

class Shutdown(BaseException):
    pass

def act():
    print("chatter from the model")
    if ACT.startswith("shell"):  # a child process writes to file descriptor 1, not to sys.stdout
        os.system("echo chatter from a child process")
    act = ACT.removeprefix("shell")
    if act.startswith("exit"):
        sys.exit(int(act[4:]) if act[4:] else None)
    if act == "base":
        raise Shutdown("the model gave up")
    if act == "interrupt":
        raise KeyboardInterrupt

if PHASE == "import":
    act()

class Net(tiny_aspp.TinyASPPNet):
    def forward(self, x):
        if PHASE == "forward":
            act()
        return super().forward(x)

def build_model(num_classes=4):
    if PHASE == "build":
        act()
    return Net(num_classes)
'''


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("usercode") / "model.py"
    path.write_text(MODEL.format(examples=str(ROOT / "examples")))
    return path


def error_line(exit_code: int, stdout: str, stderr: str) -> str:
    assert exit_code == 2, (exit_code, stdout, stderr)
    assert stdout == ""
    lines = [line for line in stderr.splitlines() if "chatter" not in line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("misbehave", ["import:exit0", "build:exit5", "forward:exit", "forward:base", "import:base"])
def test_inspect_never_exits_with_the_models_code(run_cli, monkeypatch, model_file, misbehave):
    monkeypatch.setenv("MISBEHAVE", misbehave)
    result = run_cli("inspect", str(model_file), "--crop", "64", "--json")
    line = error_line(result.exit_code, result.stdout, result.stderr)
    assert line.startswith("atrous-advisor: error: model")
    code = {"exit0": "SystemExit: 0", "exit5": "SystemExit: 5", "exit": "SystemExit", "base": "Shutdown: the model gave up"}
    assert code[misbehave.partition(":")[2]] in line
    assert "model.py:" in line  # where in the user's file it happened
    assert "chatter from the model" in result.stderr


@pytest.mark.parametrize("phase", ["import", "forward"])
def test_a_keyboard_interrupt_from_the_model_is_still_an_interrupt(run_cli, monkeypatch, model_file, phase):
    monkeypatch.setenv("MISBEHAVE", f"{phase}:interrupt")
    result = run_cli("inspect", str(model_file), "--crop", "64")
    assert result.exit_code == 130 and "Traceback" not in result.stderr, result.stderr


def test_what_the_model_prints_goes_to_stderr_and_json_stays_valid(run_cli, monkeypatch, model_file):
    monkeypatch.setenv("MISBEHAVE", "forward:print")
    result = run_cli("inspect", str(model_file), "--crop", "64", "--json")
    assert result.exit_code in (0, 1), result.stderr
    assert json.loads(result.stdout)["aspp"]
    assert "chatter from the model" in result.stderr


def cli(*args: str, misbehave: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MISBEHAVE=misbehave)
    return subprocess.run([sys.executable, "-m", "atrous_advisor", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_a_real_process_exits_2_and_output_of_child_processes_moves_to_stderr_too(model_file):
    """sys.exit(0) in the forward pass of a real process; the model also runs `echo` (writes to descriptor 1)."""
    done = cli("inspect", str(model_file), "--crop", "64", "--json", misbehave="forward:shellexit0")
    assert "SystemExit: 0" in error_line(done.returncode, done.stdout, done.stderr)
    assert "chatter from a child process" in done.stderr


def test_erf_validate_and_plan_run_the_model_under_the_guard(run_cli, monkeypatch, model_file, tmp_path):
    from atrous_advisor.train.synth import SynthSpec, write_dataset

    from atrous_advisor.errors import ModelLoadError
    from atrous_advisor.plan.planner import plan_model

    monkeypatch.setenv("MISBEHAVE", "forward:base")
    with pytest.raises(ModelLoadError, match=r"its code raised Shutdown: the model gave up \(\S*model.py:\d+\)"):
        plan_model(str(model_file), 8 * 2**30, 1, crops=[(64, 64)])

    monkeypatch.setenv("MISBEHAVE", "forward:exit0")
    erf = run_cli("erf", str(model_file), "--crop", "64", "--images", "1", "--batch-size", "1", "--device", "cpu",
                  "--out", str(tmp_path / "erf.png"), "--json")
    assert "SystemExit: 0" in error_line(erf.exit_code, erf.stdout, erf.stderr)

    data = tmp_path / "data"
    write_dataset(data, SynthSpec(size=64, train=4, val=2, classes=4, seed=0), force=True)
    monkeypatch.setenv("MISBEHAVE", "forward:exit5")
    validate = run_cli("validate", str(model_file), "--data", str(data), "--crop", "64", "--steps", "1",
                       "--batch-size", "2", "--device", "cpu", "--out", str(tmp_path / "out"), "--json")
    assert "SystemExit: 5" in error_line(validate.exit_code, validate.stdout, validate.stderr)
