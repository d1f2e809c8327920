"""Recognising YAML layouts by their keys: one fast parse of a file into plain values, tags left opaque."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

from atrous_advisor.configs.facts import Target
from atrous_advisor.configs.values import DictShape
from atrous_advisor.numbers import MAX_JSON_DIGITS

import yaml

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """Never constructs a ``!!python/...`` object: unknown tags load as None."""


def _bounded_int(loader, node):
    """Python refuses to convert ints of more than 4,300 digits (ValueError); no config needs a tenth of that."""
    if len(node.value) > MAX_JSON_DIGITS:
        return None
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _bounded_int)
_Loader.add_multi_constructor("", lambda loader, suffix, node: None)
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


class Unreadable(Exception):
    pass


@lru_cache(maxsize=4096)
def _load(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - the loader constructs standard tags only
    except yaml.YAMLError as exc:
        raise Unreadable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    except RecursionError:
        raise Unreadable("nested too deeply") from None


def top_mapping(text: str) -> Optional[dict]:
    """The file's top-level mapping, or None when it is some other YAML; raises Unreadable."""
    data = _load(text)
    return data if isinstance(data, dict) else None


def keys_of(value: Any) -> set:
    return set(value) if isinstance(value, dict) else set()


class YamlEdits:
    """How a fix edits a YAML config: a block sequence replaced as one, keys added where the parser's marks
    say the deepest mapping the leaf writes ends, or at the end of the file."""

    @classmethod
    def replacement(cls, site, rendered: str, lines: list[str]) -> str:
        from atrous_advisor.configs.fixes import yaml_block_sequence

        if lines[site.line - 1][site.col : site.col + 1] == "-":  # `- 6` lines: a flow list there may not parse
            return yaml_block_sequence(rendered, site.col)
        return rendered

    @classmethod
    def insert_edits(cls, shape: DictShape, rest, rendered, lines):
        from atrous_advisor.configs.fixes import Edit, yaml_append, yaml_block

        if shape.style == "flow":  # `{A: 1}`: add `, KEY: value` before the closing brace
            entry = rendered
            for key in reversed(rest[1:]):
                entry = f"{{{key}: {entry}}}"
            entry = f"{rest[0]}: {entry}"
            if shape.last_entry_end is None:
                return [Edit(shape.close, shape.close, entry)]
            return [Edit(shape.last_entry_end, shape.last_entry_end, ", " + entry)]
        return [yaml_append(shape, lines, yaml_block(rest, rendered, shape.entry_indent or 0))]

    @classmethod
    def append_edits(cls, target: Target, rendered: str, lines: list[str]):
        from atrous_advisor.configs.fixes import append_at_end, yaml_block

        return append_at_end(lines, yaml_block(target.keys, rendered, 0))
