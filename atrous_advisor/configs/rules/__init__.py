"""The rule registry: one module per rule, looked up by code."""

from __future__ import annotations

from atrous_advisor.configs.rules import aa001, aa002, aa101, aa102, aa103, aa201, aa202, aa301, aa302, aa303
from atrous_advisor.configs.rules.base import Diagnostic, FixIntent, Rule

RULES: dict[str, Rule] = {
    module.RULE.code: module.RULE for module in (aa001, aa002, aa101, aa102, aa103, aa201, aa202, aa301, aa302, aa303)
}

__all__ = ["RULES", "Diagnostic", "FixIntent", "Rule"]
