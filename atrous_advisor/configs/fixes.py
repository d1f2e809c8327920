"""Fixes as text edits in the leaf config: replace a value the leaf sets, or add an override to the leaf.

Never edit a ``_base_`` file: other configs with other crops inherit it. An override written into the leaf
follows the framework's merge rules — a key added to the leaf's ``model = dict(...)``, a new
``model = dict(decode_head=dict(dilations=...))`` at the end of the file (merged into the base's model by
mmengine), a key under the leaf's ``MODEL:`` mapping in YAML. Formatting and comments elsewhere are kept.

YAML positions are PyYAML's node marks from the very tree the linter read (configs/detectron2.py), so the
place an edit goes and the value the finding is about come from one parse; a round-trip library such as
ruamel.yaml would be a second parser (and a dependency) whose tree could disagree with the one linted. Every
edit is re-parsed and re-linted before it is kept (engine.compute_fixes).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from atrous_advisor.configs.facts import Target
from atrous_advisor.configs.values import DictShape, V, canonical, split_lines


class Unfixable(Exception):
    """Why a fix cannot be written automatically (the message is shown to the user)."""


@dataclass(frozen=True)
class Edit:
    start: tuple[int, int]  # (line 1-based, col 0-based)
    end: tuple[int, int]
    text: str


def _offset(lines: list[str], pos: tuple[int, int]) -> int:
    line, col = pos
    return sum(len(x) for x in lines[: line - 1]) + col


def apply_edits(text: str, edits: list[Edit]) -> str:
    lines = split_lines(text, keepends=True) or [""]
    spans = sorted(((_offset(lines, e.start), _offset(lines, e.end), e.text) for e in edits), reverse=True)
    for start, end, replacement in spans:
        text = text[:start] + replacement + text[end:]
    return text


def _line_indent(lines: list[str], line: int) -> str:
    raw = lines[line - 1] if 0 < line <= len(lines) else ""
    return raw[: len(raw) - len(raw.lstrip())]


def python_entry(keys: tuple[str, ...], value_text: str, style: str) -> str:
    inner = value_text
    for key in reversed(keys[1:]):
        inner = f"dict({key}={inner})"
    return f"{keys[0]!r}: {inner}" if style == "literal" else f"{keys[0]}={inner}"


_AFTER_ENTRY = re.compile(r"\s*(,?)\s*(#.*)?$")


def python_insert(shape: DictShape, lines: list[str], entry: str) -> list[Edit]:
    if shape.last_entry_end is None:
        return [Edit(shape.close, shape.close, entry)]
    line, col = shape.last_entry_end
    if shape.close[0] != line:  # one entry per line: keep that layout
        indent = _line_indent(lines, line)
        raw = lines[line - 1].rstrip("\r\n")
        after = _AFTER_ENTRY.match(raw[col:])
        if after and after.group(2):  # `num_classes=19,  # classes`: the comment stays with its entry
            eol = (line, len(raw))
            if after.group(1):
                return [Edit(eol, eol, "\n" + indent + entry + ",")]
            return [Edit((line, col), (line, col), ","), Edit(eol, eol, "\n" + indent + entry)]
        return [Edit((line, col), (line, col), ",\n" + indent + entry)]
    return [Edit((line, col), (line, col), ", " + entry)]


def yaml_block(keys: tuple[str, ...], value_text: str, indent: int) -> str:
    out = []
    for depth, key in enumerate(keys):
        pad = " " * (indent + 2 * depth)
        out.append(f"{pad}{key}: {value_text}" if depth == len(keys) - 1 else f"{pad}{key}:")
    return "\n".join(out)


def yaml_block_sequence(rendered: str, indent: int) -> str:
    """``[2, 4, 6]`` as the block sequence it replaces (``- 2`` lines at the first item's column): a flow
    sequence in its place could sit at its key's own indentation (an indentless sequence) and not parse."""
    items = yaml.safe_load(rendered)
    if not isinstance(items, list):
        return rendered
    return ("\n" + " " * indent).join(f"- {json.dumps(item)}" for item in items)


def yaml_append(shape: DictShape, lines: list[str], block: str) -> Edit:
    """Add entries after the last entry of a block mapping, at the position the YAML parser gave for its end.

    A block scalar (``|``, ``>``) ends with its line break: its end mark is the start of the next line, and
    the entries go there, before whatever follows. Any other value ends inside its line, where YAML allows
    only a comment after it: the entries go after that line's end, so a trailing comment stays where it is.
    """
    assert shape.last_entry_end is not None  # callers insert after an entry; an empty mapping has none
    line, col = shape.last_entry_end
    if col == 0 and line > 1:
        return Edit((line, 0), (line, 0), block + "\n")
    end = (line, len(lines[line - 1].rstrip("\r\n")))
    return Edit(end, end, "\n" + block)


def edits_for(framework: str, target: Target, value: Any, leaf: Path, text: str) -> list[Edit]:
    """The edits that make the leaf config resolve ``target`` to ``value``; raises Unfixable."""
    edits = _edits_for(framework, target, value, leaf, text)
    if "\r\n" in text:  # new lines in a CRLF file end as its other lines do
        edits = [Edit(e.start, e.end, e.text.replace("\n", "\r\n")) for e in edits]
    return edits


def append_at_end(lines: list[str], statement: str) -> list[Edit]:
    """Edits adding ``statement`` as the last line(s) of the file."""
    end = (len(lines), len(lines[-1])) if lines else (1, 0)
    sep = "" if not lines or lines[-1].endswith("\n") else "\n"
    return [Edit(end, end, sep + statement + "\n")]


def _edits_for(framework: str, target: Target, value: Any, leaf: Path, text: str) -> list[Edit]:
    from atrous_advisor.configs.frameworks import by_name

    if not target.editable:
        raise Unfixable(target.why_not or "the value cannot be edited automatically")
    layout = by_name(framework)
    leaf = canonical(leaf)
    lines = split_lines(text, keepends=True)
    rendered = target.render(value)
    current = target.chain[-1]
    if current is not None and current.shared and current.shared != "<<" and canonical(current.site.path) == leaf:
        raise Unfixable(f"the value is shared through the YAML anchor {current.shared}; edit it by hand")
    # (a key merged in with `<<` is overridden below: the key is added to the mapping that merges it)
    if current is not None and not current.shared and canonical(current.site.path) == leaf:
        site = current.site
        return [Edit((site.line, site.col), (site.end_line, site.end_col), layout.replacement(site, rendered, lines))]
    # The deepest container that the leaf itself writes: add the missing keys to it.
    for depth in range(len(target.chain) - 2, -1, -1):
        container: Optional[V] = target.chain[depth]
        if container is None or canonical(container.site.path) != leaf:
            continue
        dotted = ".".join(target.keys[: depth + 1])
        if container.shared:
            how = "merged in with <<" if container.shared == "<<" else f"shared through the YAML anchor {container.shared}"
            raise Unfixable(f"`{dotted}` is {how}; edit it by hand")
        if container.shape is None:
            raise Unfixable(f"`{dotted}` is set through an expression in this file; edit it by hand")
        return layout.insert_edits(container.shape, target.keys[depth + 1 :], rendered, lines)
    # The leaf writes none of the path: add an override at the end of the file.
    return layout.append_edits(target, rendered, lines)


def would_fix(result, d, texts: dict) -> bool:
    """Whether ``--fix`` would write this finding: a safe fix, in a config it rewrites, that it can edit."""
    if not result.writable or d.fix is None or d.fix.applicability != "safe":
        return False
    if result.path not in texts:
        try:
            with open(result.path, encoding="utf-8", newline="") as handle:
                texts[result.path] = handle.read()
        except (OSError, UnicodeDecodeError):
            texts[result.path] = None
    if texts[result.path] is None:
        return False
    try:
        edits_for(result.framework, d.fix.target, d.fix.value, result.path, texts[result.path])
    except Unfixable:  # e.g. the head is set through a name: --fix says "not fixed", so no [*]
        return False
    return True
