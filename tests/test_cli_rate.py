"""`rate` and `ppm` through the CLI: human output, JSON contracts, bad input, the real console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from atrous_advisor.report.models import PPMReport, RateReport

RATE_KEYS = {"crop", "output_stride", "feature_map", "margin", "branches", "optimal_base_rate", "suggested_rates",
             "default_rates", "evaluations"}
BRANCH_KEYS = {"rate", "kernel_extent", "coverage", "padding_fraction", "degenerate"}


def test_rate_human_output_has_table_verdict_and_snippets(run_cli):
    result = run_cli("rate", "--crop", "512", "--stride", "8")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "default (12, 24, 36)" in out and "suggested (10, 20, 30)" in out
    assert "61%" in out  # rate 36 on the 64×64 map
    assert out.count("Retune:") == 1 and "Use (10, 20, 30)" in out
    assert "dilations=(1, 10, 20, 30)" in out
    assert "atrous_rates=(10, 20, 30)" in out
    assert "decoder_atrous_rates=(10, 20, 30)" in out
    assert "ASPP_DILATIONS: [10, 20, 30]" in out


def test_rate_says_ok_when_rates_fit(run_cli):
    result = run_cli("rate", "--crop", "769", "--stride", "8", "--rates", "15,30,45")
    assert result.exit_code == 0
    assert "OK: your rates (15, 30, 45)" in result.stdout


def test_rate_json_contract_and_round_trip(run_cli):
    result = run_cli("rate", "--crop", "512x1024", "--stride", "8", "--rates", "12,24,36", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert RATE_KEYS <= data.keys()
    assert data["crop"] == [512, 1024] and data["output_stride"] == 8 and data["feature_map"] == [64, 128]
    assert data["optimal_base_rate"][0] == 10.0 and data["optimal_base_rate"][1] == pytest.approx(20.667, abs=1e-3)
    assert data["suggested_rates"] == [[10, 21], [20, 42], [30, 63]]
    assert data["default_rates"] == [[12, 12], [24, 24], [36, 36]]
    assert [e["name"] for e in data["evaluations"]] == ["default", "current", "suggested"]
    for evaluation in data["evaluations"]:
        assert len(evaluation["fov"]) == 2
        for branch in evaluation["branches"]:
            assert BRANCH_KEYS <= branch.keys()
            assert 0.0 <= branch["padding_fraction"] <= 1.0
    assert data["single_int_rates"] == [14, 28, 42]
    report = RateReport.model_validate_json(result.stdout)
    assert json.loads(report.model_dump_json()) == data


def test_ppm_json_contract_and_round_trip(run_cli):
    result = run_cli("ppm", "--crop", "512", "--stride", "8", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {"crop", "output_stride", "feature_map", "min_cell", "cells", "suggested_scales"} <= data.keys()
    assert data["suggested_scales"] == [1, 2, 3, 4]
    assert [c["below_min_cell"] for c in data["cells"]] == [False, False, False, True]
    assert all({"scale", "cell_features", "cell_pixels", "below_min_cell", "redundant"} <= c.keys() for c in data["cells"])
    assert json.loads(PPMReport.model_validate_json(result.stdout).model_dump_json()) == data


def test_ppm_human_output(run_cli):
    result = run_cli("ppm", "--crop", "512", "--stride", "8", "--scales", "1,2,3,6", "--min-cell", "120")
    assert result.exit_code == 0
    assert "below 120 px" in result.stdout and "pool_scales=(1, 2, 3, 4)" in result.stdout


def test_tiny_crop_still_answers_with_a_warning(run_cli):
    result = run_cli("rate", "--crop", "64", "--stride", "16", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["suggested_rates"] == [[1, 1], [2, 2], [3, 3]]
    assert "too small" in result.stderr and "larger crop" in result.stderr


def test_unusual_stride_is_flagged_as_extrapolation(run_cli):
    result = run_cli("rate", "--crop", "512", "--stride", "32")
    assert result.exit_code == 0
    assert "extrapolation" in result.stderr


@pytest.mark.parametrize(
    "args,named",
    [
        (["rate", "--crop", "0", "--stride", "8"], "crop"),
        (["rate", "--crop", "-512", "--stride", "8"], "-512"),
        (["rate", "--crop", "512x", "--stride", "8"], "512x"),
        (["rate", "--crop", "big", "--stride", "8"], "big"),
        (["rate", "--crop", "512", "--stride", "0"], "stride"),
        (["rate", "--crop", "512", "--stride", "eight"], "eight"),
        (["rate", "--crop", "512", "--stride", "8", "--rates", "12,x,36"], "rates"),
        (["rate", "--crop", "512", "--stride", "8", "--rates", "12,0,36"], "rates"),
        (["rate", "--crop", "512", "--stride", "8", "--margin", "512"], "margin"),
        (["rate", "--crop", "512", "--stride", "8", "--margin", "-5"], "--margin '-5': out of range: expected a margin in px from 0"),
        (["rate", "--crop", "32", "--stride", "8"], "larger than the FOV margin of 32 px"),
        (["rate", "--crop", "512", "--stride", "8", "--rates", "6,12", "--branches", "3"], "branches"),
        (["rate", "--stride", "8"], "--crop"),
        (["rate", "--crop", "512", "--stride", "8", "--bogus"], "--bogus"),
        (["ppm", "--crop", "512", "--stride", "8", "--scales", "1,two"], "scales"),
        (["ppm", "--crop", "512", "--stride", "8", "--min-cell", "0"], "min-cell"),
        (["nosuchcommand"], "nosuchcommand"),
    ],
)
def test_bad_input_is_one_line_exit_2(run_cli, args, named):
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("atrous-advisor: error:") and named in lines[0]
    assert "Traceback" not in result.output


def test_console_script_subprocess():
    exe = shutil.which("atrous-advisor")
    assert exe, "the package must be installed (pip install -e .) for its console script"
    proc = subprocess.run([exe, "rate", "--crop", "769", "--stride", "8", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["suggested_rates"] == [[15, 15], [30, 30], [45, 45]]
    alias = subprocess.run([shutil.which("advisor"), "ppm", "--crop", "512", "--stride", "8", "--json"],
                           capture_output=True, text=True)
    assert alias.returncode == 0 and json.loads(alias.stdout)["suggested_scales"] == [1, 2, 3, 4]
    bad = subprocess.run([exe, "rate", "--crop", "512x", "--stride", "8"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("command", [["rate", "--crop", "512", "--stride", "8"], ["ppm", "--crop", "512", "--stride", "8"]])
def test_analytic_commands_work_without_torch(command):
    """A pre-commit environment has no torch: block the import and run the command for real."""
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "from atrous_advisor.cli import main\n"
        f"sys.argv = ['atrous-advisor', *{command!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    imported = subprocess.run([sys.executable, "-X", "importtime", "-m", "atrous_advisor", *command],
                              capture_output=True, text=True).stderr
    assert not [line for line in imported.splitlines() if line.rstrip().endswith("| torch")]


def test_help_lists_commands(run_cli):
    result = run_cli("--help")
    assert result.exit_code == 0
    assert "rate" in result.stdout and "ppm" in result.stdout


def test_debug_shows_the_traceback(run_cli):
    result = run_cli("rate", "--crop", "512x", "--stride", "8", "--debug")
    assert result.exit_code != 0
    assert result.exception is not None and type(result.exception).__name__ == "InputError"


def test_unexpected_exception_is_one_line_exit_3(run_cli, monkeypatch):
    import atrous_advisor.commands.rate as rate_module

    def broken(*args, **kwargs):
        raise RuntimeError("something we did not foresee")

    monkeypatch.setattr(rate_module, "advise_rates", broken)
    result = run_cli("rate", "--crop", "512", "--stride", "8")
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error: RuntimeError: something we did not foresee" in lines[0]
    assert "--debug" in lines[0] and "Traceback" not in result.output
