"""What a rule is: a code, a name for the bad thing, a message, and optionally a fix (ruff's model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Literal, Optional

from atrous_advisor.configs.facts import ConfigFacts, Target
from atrous_advisor.configs.settings import Settings
from atrous_advisor.configs.values import Loc

FixAvailability = Literal["always", "sometimes", "never"]
Applicability = Literal["safe", "unsafe"]


@dataclass(frozen=True)
class FixIntent:
    """A value to write at ``target``; the fixer turns it into text edits in the leaf config."""

    title: str
    target: Target
    value: Any
    applicability: Applicability


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    loc: Loc
    fix: Optional[FixIntent] = None


class Rule:
    """One check. Subclasses set the class attributes and implement :meth:`check`.

    The class docstring is the rule's documentation (``atrous-advisor rule CODE``) with the sections
    What it does / Why is this bad / Example / Fix.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `atrous-advisor rule`
    fix_title: ClassVar[Optional[str]] = None
    fix_availability: ClassVar[FixAvailability] = "never"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        raise NotImplementedError

    def diagnostic(self, message: str, loc: Loc, fix: Optional[FixIntent] = None) -> Diagnostic:
        return Diagnostic(self.code, message, loc, fix)


def fix_for_target(title: str, target: Optional[Target], value: Any, applicability: Applicability) -> Optional[FixIntent]:
    if target is None or not target.editable:
        return None
    return FixIntent(title, target, value, applicability)
