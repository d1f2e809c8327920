"""Located values: every value a reader produces remembers the file, line and column that set it.

mmengine's loader returns plain dicts and forgets where a value came from; a linter must point at the line
that set a value (in the ``_base_`` file when that is where it was set), and ``--fix`` must know where an
expression starts and ends in the file it edits. So readers build trees of :class:`V` instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Optional

from atrous_advisor.files import canonical  # noqa: F401 - the readers and the engine import it from here


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(text: str, keepends: bool = False) -> list[str]:
    """Lines as Python's tokenizer counts them (``str.splitlines`` also splits on form feeds and U+2028)."""
    lines = _LINE.findall(text)
    return lines if keepends else [line.rstrip("\r\n") for line in lines]


@dataclass(frozen=True)
class Loc:
    """A span in a file. ``line`` is 1-based; columns are 0-based character offsets, ``end_col`` exclusive."""

    path: Path
    line: int
    col: int
    end_line: int
    end_col: int

    def at(self) -> str:
        return f"{self.path}:{self.line}:{self.col + 1}"


@dataclass(frozen=True)
class Opaque:
    """A value that could not be resolved statically: never guessed and never run. ``reason`` says why."""

    reason: str


@dataclass(frozen=True)
class DictShape:
    """Where a ``dict(...)``/``{...}`` expression can take one more entry (for ``--fix``)."""

    style: str  # "call" for dict(k=v), "literal" for {'k': v}, "yaml" for a block mapping, "flow" for {k: v} YAML
    last_entry_end: Optional[tuple[int, int]]  # (line, col) just after the last entry; None when empty
    close: tuple[int, int]  # (line, col) of the closing bracket
    entry_indent: Optional[int] = None  # column of the entries (block yaml)


@dataclass(frozen=True)
class V:
    """A value with its origin.

    ``loc``: where the value itself was written (a literal's span; follows names and ``_base_`` references
    back to their definition). ``site``: where the expression that put it in its container was written,
    in the file that did so — for ``--fix``, which edits sites in the leaf, never origins in a base.
    ``value`` is a scalar, an :class:`Opaque`, a ``list``/``tuple`` of ``V`` or a ``dict`` of str to ``V``.
    """

    value: Any
    loc: Loc
    site: Loc
    shape: Optional[DictShape] = None  # set when the site is a dict expression that can take an entry
    # YAML anchors: "*name" inside an aliased subtree or on an anchor's definition that aliases reuse (an
    # edit there changes every user), "<<" for a key merged in (overridden by adding the key explicitly).
    # --fix never edits a shared value in place.
    shared: str = ""

    def at_site(self, site: Loc, shape: Optional[DictShape] = None) -> "V":
        return replace(self, site=site, shape=shape)

    @property
    def is_opaque(self) -> bool:
        return isinstance(self.value, Opaque)

    def get(self, key: str) -> Optional["V"]:
        if isinstance(self.value, dict):
            return self.value.get(key)
        return None


def plain(v: Any) -> Any:
    """The plain Python value of a located tree (opaque leaves stay :class:`Opaque`)."""
    if isinstance(v, V):
        v = v.value
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, tuple):
        return tuple(plain(x) for x in v)
    return v


def find_opaque(v: Any) -> Optional[tuple[Opaque, Optional[V]]]:
    """The first opaque leaf inside a located tree, with the located value that holds it."""
    if isinstance(v, V):
        if isinstance(v.value, Opaque):
            return v.value, v
        return find_opaque(v.value)
    items: Iterable[Any]
    if isinstance(v, dict):
        items = v.values()
    elif isinstance(v, (list, tuple)):
        items = v
    else:
        return None
    for item in items:
        found = find_opaque(item)
        if found:
            return found
    return None
