"""The generated reference pages match the code they are generated from."""

from __future__ import annotations

from atrous_advisor.configs.rules import RULES
from atrous_advisor.report import reference


def test_committed_reference_pages_are_up_to_date():
    stale = reference.stale_pages()
    assert not stale, f"stale: {stale}; run `python -m atrous_advisor.report.reference`"


def test_every_rule_has_its_section_and_a_documented_fix():
    text = reference.rules_markdown()
    for code, rule in RULES.items():
        assert f"## {code} {rule.name}" in text
        doc = type(rule).__doc__ or ""
        for heading in ("## What it does", "## Why is this bad", "## Example", "## Fix"):
            assert heading in doc, (code, heading)


def test_field_comments_are_read_from_the_model_source():
    from atrous_advisor.report.models import RateReport

    comments = reference.field_comments(RateReport)
    assert comments["optimal_base_rate"].startswith("r* = (L − margin)")
    assert "crop" in comments and "snippets" in comments


def test_check_mode_reports_a_stale_page(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "DOCS", tmp_path)
    assert reference.stale_pages(tmp_path) == ["json.md", "rules.md"]
    (tmp_path / "json.md").write_text(reference.json_markdown(), encoding="utf-8")
    assert reference.stale_pages(tmp_path) == ["rules.md"]
