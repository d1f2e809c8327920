"""Bad input never reaches an internal error, a hang or broken ``--json``: hypothesis over every command's
options and over config files (generated ones and mutated real fixtures). The promise checked is in
tests/fuzz_support.py; a longer run of the same strategies is benchmarks/fuzz.py (figure in docs/reliability.md).

Bounded for the suite: in-process CliRunner, a fixed number of examples per test, the tiny example model at
small crops for the commands that build one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fuzz_support import (
    CONFIG_SUFFIXES, FIXTURES, TINY_MODEL, any_config, config_file, describe, invoke, json_text, mutated_fixture,
    number_text, option_text,
)

FAST = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MODEL = settings(max_examples=5, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A working folder with a copy of the fixture configs; tests chdir here so relative outputs stay inside."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(FIXTURES, root / "configs")
    old = Path.cwd()
    os.chdir(root)
    yield root
    os.chdir(old)


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def optional(strategy):
    return st.one_of(st.none(), strategy, strategy, strategy)  # mostly given: a missing option stops at parsing


def assert_clean(outcome):
    assert outcome.clean, describe(outcome)


# --- rate and ppm: every option ---------------------------------------------------------------------------------


@FAST
@given(command=st.sampled_from(["rate", "ppm"]), crop=optional(number_text()), stride=optional(number_text()),
       extra=st.lists(st.tuples(st.sampled_from(["--rates", "--branches", "--margin", "--scales", "--min-cell"]),
                                number_text()), max_size=2),
       as_json=st.booleans())
def test_rate_and_ppm_options(app, runner, sandbox, command, crop, stride, extra, as_json):
    args = [command]
    for name, value in (("--crop", crop), ("--stride", stride), *extra):
        if value is not None:
            if command == "rate" and name in ("--scales", "--min-cell"):
                name = "--rates"
            if command == "ppm" and name in ("--rates", "--branches", "--margin"):
                name = "--scales"
            args += [name, value]
    if as_json:
        args.append("--json")
    assert_clean(invoke(runner, app, args, json_mode=as_json, watch=[sandbox], seconds=20))


# --- lint: options, generated configs, mutated real configs ----------------------------------------------------


@settings(FAST, max_examples=25)
@given(crop=optional(number_text()), select=optional(st.text(max_size=8)), fmt=st.sampled_from(["text", "json", "github", "x"]),
       engine=st.sampled_from(["static", "x"]), target=st.sampled_from(["mmseg1x/deeplabv3", "broken", "mmseg0x", "smp"]))
def test_lint_options(app, runner, sandbox, crop, select, fmt, engine, target):
    args = ["lint", f"configs/{target}", "--format", fmt, "--engine", engine]
    if crop is not None:
        args += ["--crop", crop]
    if select is not None:
        args += ["--select", select]
    assert_clean(invoke(runner, app, args, json_mode=fmt == "json", watch=[sandbox]))


@FAST
@given(text=any_config(), as_json=st.booleans())
def test_lint_generated_configs(app, runner, sandbox, text, as_json):
    folder = sandbox / "generated"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = folder / config_file(text)
    path.write_text(text, encoding="utf-8")
    args = ["lint", str(path)] + (["--json"] if as_json else [])
    assert_clean(invoke(runner, app, args, json_mode=as_json, watch=[sandbox]))


def _leaves(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in CONFIG_SUFFIXES and p.is_file())


@FAST
@given(data=st.data(), as_json=st.booleans())
def test_lint_mutated_fixtures(app, runner, sandbox, data, as_json):
    copies = _leaves(sandbox / "configs")
    path, text = data.draw(mutated_fixture(copies))
    original = path.read_bytes()
    path.write_text(text, encoding="utf-8")
    try:
        # A mutated base is linted through the configs that inherit it; a mutated leaf on its own.
        args = ["lint", str(path)] + (["--json"] if as_json else [])
        assert_clean(invoke(runner, app, args, json_mode=as_json, watch=[sandbox]))
    finally:
        path.write_bytes(original)


@settings(FAST, max_examples=20)
@given(text=st.one_of(st.just("[tool]\n"), st.just("tool = 1\n"), st.just("[tool]\natrous-advisor = 1\n"),
                      st.tuples(st.sampled_from(["margin", "min-cell", "crop", "tolerance", "select", "bogus"]),
                                st.one_of(number_text().map(repr), st.sampled_from(["9" * 5000, "[1, 2, 3]", "[]", "{}",
                                                                                      "1e400", "true", "-1"])))
                      .map(lambda kv: f"[tool.atrous-advisor]\n{kv[0]} = {kv[1]}\n")))
def test_pyproject_settings(app, runner, sandbox, text):
    folder = sandbox / "project"
    folder.mkdir(exist_ok=True)
    (folder / "pyproject.toml").write_text(text, encoding="utf-8")
    shutil.copy(sandbox / "configs" / "mmseg1x" / "pspnet" / "pspnet_r50-d8_4xb4-20k_tiny-40x40.py", folder / "a.py")
    os.chdir(folder)
    try:
        assert_clean(invoke(runner, app, ["lint", "a.py"], watch=[sandbox]))
    finally:
        os.chdir(sandbox)


def test_special_files_are_skipped_never_opened(app, runner, sandbox):
    folder = sandbox / "special"
    folder.mkdir()
    shutil.copy(sandbox / "configs" / "mmseg1x" / "pspnet" / "pspnet_r50-d8_4xb4-20k_tiny-40x40.py", folder / "ok.py")
    os.mkfifo(folder / "pipe.py")
    os.symlink("/dev/zero", folder / "zero.yaml")
    outcome = invoke(runner, app, ["lint", str(folder)], watch=[], seconds=20)
    assert_clean(outcome)
    assert "pipe.py: note: skipped: a FIFO" in outcome.stderr and "zero.yaml: note: skipped: a device" in outcome.stderr
    named = invoke(runner, app, ["lint", str(folder / "pipe.py")], seconds=20)
    assert named.exit_code == 2 and "a FIFO, not a config file; not opened" in named.stderr, describe(named)
    rooted = invoke(runner, app, ["lint", str(folder / "ok.py"), "--root", str(folder / "pipe.py")], seconds=20)
    assert_clean(rooted)


@pytest.mark.parametrize("suffix", [".py", ".yaml"])
def test_deep_base_chains(app, runner, tmp_path, suffix):
    """1,200 files deep: one clear error naming the cap; 300 deep: linted like any config (no recursion)."""
    from atrous_advisor.configs.chain import MAX_CHAIN_DEPTH

    for depth, expect in ((MAX_CHAIN_DEPTH + 200, 2), (300, 0)):
        folder = tmp_path / f"chain{depth}"
        folder.mkdir()
        for i in range(depth):
            last = i == depth - 1
            if suffix == ".py":
                text = "crop_size = (512, 512)\n" if last else f"_base_ = ['c{i + 1}.py']\n"
            else:
                text = "MODEL:\n  META_ARCHITECTURE: SemanticSegmentor\n" + ("" if last else f"_BASE_: c{i + 1}.yaml\n")
            (folder / f"c{i}{suffix}").write_text(text)
        outcome = invoke(runner, app, ["lint", str(folder / f"c0{suffix}")], seconds=60)
        assert_clean(outcome)
        assert outcome.exit_code == expect, describe(outcome)
        if expect == 2:
            assert f"chain more than {MAX_CHAIN_DEPTH} files deep" in outcome.stderr
            assert len(outcome.stderr.strip().splitlines()) == 1


def test_a_cycle_is_one_error(app, runner, sandbox):
    broken = sandbox / "configs" / "broken"
    outcome = invoke(runner, app, ["lint", str(broken / "cyclic_a.py"), str(broken / "cyclic_b.py")])
    assert_clean(outcome)
    assert outcome.exit_code == 2 and outcome.stderr.count("cyclic _base_") == 1, outcome.stderr


# --- the commands that build a model: inspect, erf, validate; and synth ------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(sandbox):
    from atrous_advisor.train.synth import SynthSpec, write_dataset

    data = sandbox / "tiny-data"
    write_dataset(data, SynthSpec(size=64, train=2, val=1, classes=3, seed=0))
    return data


_MODEL_OPTIONS = {
    "inspect": ["--crop", "--kwargs", "--counter", "--capture", "--field-map"],
    "erf": ["--crop", "--images", "--batch-size", "--seed", "--kwargs", "--extent-threshold", "--out", "--device"],
    "validate": ["--crop", "--seed", "--steps", "--batch-size", "--repeats", "--ignore-index", "--num-classes",
                 "--workers", "--scale-range", "--lr", "--sweep", "--scales", "--checkpoint-every", "--kwargs",
                 "--weights", "--out"],
    "synth": ["--size", "--train", "--val", "--classes", "--seed"],
    "plan": ["--memory", "--batch", "--crops", "--strides", "--image", "--kwargs"],
}


def _path_value(sandbox: Path) -> st.SearchStrategy[str]:
    (sandbox / "a-file").write_text("x")
    (sandbox / "empty.pt").write_bytes(b"")
    if not (sandbox / "dangling.png").is_symlink():
        os.symlink(sandbox / "missing" / "x.png", sandbox / "dangling.png")
    return st.sampled_from([str(sandbox / "a-file" / "x.png"), str(sandbox / "dangling.png"), "/proc/x.png",
                            str(sandbox / "empty.pt"), str(sandbox / "a-file"), "out.txt", "/", ""])


@MODEL
@given(data=st.data(), command=st.sampled_from(sorted(_MODEL_OPTIONS)), as_json=st.booleans())
def test_model_commands_refuse_bad_values(app, runner, sandbox, tiny_data, data, command, as_json):
    """One option hostile, the rest small and valid: exit 2 and one line, or a real answer in a few seconds."""
    option = data.draw(st.sampled_from(_MODEL_OPTIONS[command]))
    if option == "--kwargs":
        value = data.draw(json_text())
    elif option in ("--out", "--weights", "--field-map"):
        value = data.draw(_path_value(sandbox))
    elif option in ("--counter", "--capture", "--device"):
        value = data.draw(st.sampled_from(["", "x", "cuda:99", "FAST", "meta"]))
    else:
        value = data.draw(option_text(option))
    out = sandbox / "out"
    shutil.rmtree(out, ignore_errors=True)
    defaults = {
        "inspect": [str(TINY_MODEL), "--crop", "32"],
        "erf": [str(TINY_MODEL), "--crop", "32", "--images", "1", "--batch-size", "1", "--out", str(out / "erf.png")],
        "validate": [str(TINY_MODEL), "--data", str(tiny_data), "--crop", "64", "--steps", "1", "--batch-size", "1",
                     "--out", str(out / "v"), "--kwargs", '{"num_classes": 3}'],
        "synth": [str(out / "data"), "--size", "32", "--train", "1", "--val", "1"],
        "plan": [str(TINY_MODEL), "--memory", "8GiB", "--batch", "1", "--crops", "64"],
    }[command]
    args = [command, *defaults, option, value] + (["--json"] if as_json and command != "synth" else [])
    allowed = [out] + ([Path(value)] if option in ("--out", "--field-map") else [])
    outcome = invoke(runner, app, args, json_mode=as_json and command != "synth", watch=[sandbox],
                     allowed=allowed, seconds=120)
    assert_clean(outcome)


_NOISY_MODEL = '''
import runpy
import sys

print("model file: imported")          # user code printing to stdout must not break --json
_tiny = runpy.run_path({tiny!r})


class Noisy(_tiny["TinyASPPNet"]):
    def forward(self, x):
        print("forward", tuple(x.shape))
        return super().forward(x)


def build_model(**kwargs):
    print("building with", kwargs)
    return Noisy(**kwargs)


def exits(**kwargs):
    sys.exit("the builder gave up")
'''


@pytest.mark.parametrize("command", ["inspect", "erf", "validate"])
def test_user_code_prints_do_not_break_json(app, runner, sandbox, tiny_data, command):
    """A model file that prints while imported, built and run: its prints go to stderr, stdout stays JSON;
    one that calls sys.exit is one error line, exit 2."""
    model = sandbox / "noisy_model.py"
    model.write_text(_NOISY_MODEL.format(tiny=str(TINY_MODEL)))
    out = sandbox / "noisy-out"
    shutil.rmtree(out, ignore_errors=True)
    extra = {
        "inspect": ["--crop", "32"],
        "erf": ["--crop", "32", "--images", "1", "--batch-size", "1", "--out", str(out / "erf.png")],
        "validate": ["--data", str(tiny_data), "--crop", "64", "--steps", "1", "--batch-size", "1", "--out", str(out / "v"),
                     "--kwargs", '{"num_classes": 3}'],
    }[command]
    outcome = invoke(runner, app, [command, f"{model}:build_model", *extra, "--json"], json_mode=True,
                     watch=[sandbox], allowed=[out], seconds=120)
    # The model's own prints are on stderr, so the few-lines rule does not apply to this one.
    assert outcome.exit_code == 0 and [p for p in outcome.problems if "stderr lines" not in p] == [], describe(outcome)
    assert "model file: imported" in outcome.stderr and "model file: imported" not in outcome.stdout
    shutil.rmtree(out, ignore_errors=True)
    exited = invoke(runner, app, [command, f"{model}:exits", *extra, "--json"], json_mode=True, watch=[sandbox],
                    allowed=[out], seconds=120)
    assert exited.exit_code == 2 and "the builder gave up" in exited.stderr, describe(exited)
    assert [p for p in exited.problems if "stderr lines" not in p] == [], describe(exited)


def test_bad_files_in_validate_are_one_line(app, runner, sandbox, tiny_data, monkeypatch):
    """An empty --weights file, a torn checkpoint left by a crash, a decompression bomb among the masks."""
    from PIL import Image

    base = ["validate", str(TINY_MODEL), "--data", str(tiny_data), "--crop", "64", "--steps", "1", "--batch-size", "1",
            "--kwargs", '{"num_classes": 3}']
    out = sandbox / "bad-files"
    shutil.rmtree(out, ignore_errors=True)
    (sandbox / "empty.pt").write_bytes(b"")
    empty = invoke(runner, app, [*base, "--out", str(out / "a"), "--weights", str(sandbox / "empty.pt")], allowed=[out],
                   seconds=120)
    assert empty.exit_code == 2 and empty.clean and "--weights" in empty.stderr, describe(empty)

    torn = out / "b" / "checkpoints" / "current-seed0.pt"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(b"PK\x03\x04 cut short by a crash")
    resumed = invoke(runner, app, [*base, "--out", str(out / "b"), "--json"], json_mode=True, allowed=[out], seconds=120)
    assert resumed.exit_code == 0 and resumed.clean, describe(resumed)

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 64×64 mask is then past PIL's bomb limit (2×)
    bomb = invoke(runner, app, [*base, "--out", str(out / "c")], allowed=[out], seconds=120)
    assert bomb.exit_code == 2 and bomb.clean and "DecompressionBombError" in bomb.stderr, describe(bomb)
