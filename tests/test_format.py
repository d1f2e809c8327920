"""Presentation in one place: one way to write a value, and report/ never imports the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

from atrous_advisor.report import format as fmt
from atrous_advisor.report.base import ResultModel

PACKAGE = Path(__file__).parents[1] / "atrous_advisor"
# report/ is the bottom of the data flow: it may use the pure geometry constants, never the library or the CLI.
UPWARD = ("atrous_advisor.advice", "atrous_advisor.commands", "atrous_advisor.cli", "atrous_advisor.graph",
          "atrous_advisor.configs", "atrous_advisor.train", "atrous_advisor.erf", "atrous_advisor.plan",
          "atrous_advisor.api", "atrous_advisor.integrations")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


# The reference-page generator documents the rules from their docstrings: a docs build tool, not a renderer.
BUILD_TOOLS = {"reference.py"}


def test_report_does_not_import_upward():
    for path in (PACKAGE / "report").glob("*.py"):
        if path.name in BUILD_TOOLS:
            continue
        bad = [m for m in _imports(path) if m.startswith(UPWARD)]
        assert not bad, f"{path.name} imports {bad}"


def test_every_result_model_shares_the_base():
    import atrous_advisor.report.erf_models as erf
    import atrous_advisor.report.inspect_models as inspect
    import atrous_advisor.report.lint_models as lint
    import atrous_advisor.report.models as rate
    import atrous_advisor.report.plan_models as plan
    import atrous_advisor.report.validate_models as validate
    from pydantic import BaseModel

    for module in (erf, inspect, lint, plan, rate, validate):
        models = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, BaseModel)
                  and v.__module__ == module.__name__]
        assert models and all(issubclass(m, ResultModel) for m in models), module.__name__
        assert all(m.model_config == ResultModel.model_config for m in models)  # one config, in the base


def test_pairs_crops_rates():
    assert fmt.crop((512, 512)) == "512" and fmt.crop((512, 1024)) == "512×1024"
    assert fmt.rates([(12, 12), (24, 24)]) == "(12, 24)" and fmt.rates([12, 24]) == "(12, 24)"
    assert fmt.rates([(10, 21), (20, 42)]) == "(10×21, 20×42)"
    assert fmt.pair((10.0, 20.6667), digits=2) == "10×20.67" and fmt.pair((None, None)) == "global"
    assert fmt.px((240.4, 240.2)) == "240 px" and fmt.px(None) == fmt.MISSING
    assert fmt.px((None, 12), none=fmt.MISSING) == "—×12 px"
    assert fmt.percent(0.613) == "61%" and fmt.percent_pair((1.1875, 0.59375)) == "119×59%"
    assert fmt.ints([1, 2, 3, 6]) == "(1, 2, 3, 6)" and fmt.ints([6]) == "(6)"
    assert fmt.si(23_500_000) == "23.5 M" and fmt.si(12) == "12"


def test_the_same_crop_is_written_the_same_by_rate_and_lint(run_cli):
    config = Path(__file__).parent / "fixtures" / "configs" / "mmseg1x" / "deeplabv3"
    rate = run_cli("rate", "--crop", "512x1024", "--stride", "8", "--rates", "12,24,36")
    lint = run_cli("lint", str(config / "deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py"))
    assert "512×1024" in rate.stdout and "(10×21, 20×42, 30×63)" in rate.stdout
    assert "crop 512×1024" in lint.stdout and "(10×21, 20×42, 30×63)" in lint.stdout
    assert "512x1024," not in lint.stdout and "(10, 21)" not in lint.stdout
