"""``atrous-advisor rule [CODE]``: a lint rule's documentation, or the list of all rules."""

from __future__ import annotations

import inspect
import json
import sys
from typing import Optional

import typer

from atrous_advisor.errors import InputError


def rule_doc(code: str) -> str:
    from atrous_advisor.configs.rules import RULES

    rule = RULES.get(code.strip().upper())
    if rule is None:
        raise InputError(f"rule {code!r}: unknown; known rules: {', '.join(RULES)}")
    fix = {"always": "Fix is always available.", "sometimes": "Fix is sometimes available.",
           "never": "Fix is not available."}[rule.fix_availability]
    header = f"# {rule.name} ({rule.code})\n\n{rule.summary}.\n\n{fix}\n\n"
    return header + inspect.cleandoc(type(rule).__doc__ or "") + "\n"


def register(app: typer.Typer) -> None:
    @app.command("rule")
    def rule_command(
        code: Optional[str] = typer.Argument(None, help="A rule code such as AA101; omit to list all rules."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> int:
        """Explain a lint rule (what it checks, why it matters, an example, the fix)."""
        from atrous_advisor.configs.rules import RULES

        if code is not None:
            text = rule_doc(code)
            rule = RULES[code.strip().upper()]
            if as_json:
                sys.stdout.write(json.dumps({"code": rule.code, "name": rule.name, "summary": rule.summary,
                                             "fix_availability": rule.fix_availability, "explanation": text}, indent=2) + "\n")
            else:
                sys.stdout.write(text)
            return 0
        if as_json:
            sys.stdout.write(json.dumps([{"code": r.code, "name": r.name, "summary": r.summary,
                                          "fix_availability": r.fix_availability} for r in RULES.values()], indent=2) + "\n")
            return 0
        width = max(len(r.name) for r in RULES.values())
        for r in RULES.values():
            fix = "fix" if r.fix_availability != "never" else "   "
            sys.stdout.write(f"{r.code}  {r.name:<{width}}  {fix}  {r.summary}\n")
        return 0
