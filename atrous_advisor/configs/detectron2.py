"""Detectron2 YAML configs: ``_BASE_`` chains, located values, unknown tags kept opaque.

Some real Detectron2 configs carry ``!!python/object/apply:eval`` tags (Panoptic-DeepLab's
``MIN_SIZE_TRAIN``). ``yaml.unsafe_load`` would run them; ``yaml.safe_load`` refuses the whole file. We
compose the node tree (which never constructs anything), construct standard scalars with a SafeLoader, and
turn every other tag into an :class:`Opaque` value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import yaml

from atrous_advisor.errors import ConfigError
from atrous_advisor.numbers import MAX_JSON_DIGITS
from atrous_advisor.configs.chain import ChainLoader
from atrous_advisor.configs.values import DictShape, Loc, Opaque, V, canonical

BASE_KEY = "_BASE_"


class OpaqueTagLoader(yaml.SafeLoader):
    """SafeLoader that loads unknown tags (``!!python/...``, ``!custom``) as :class:`Opaque`, never executing them.

    It also records where anchors are used, which the composed tree forgets (an alias is the anchored node
    itself): ``alias_uses`` maps (parent node id, key node id or item index) to the ``*name`` event, and
    ``aliased`` holds the ids of anchored nodes that some alias reuses.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self.alias_uses: dict = {}
        self.aliased: dict[int, str] = {}

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            self.alias_uses[(id(parent), index if isinstance(index, int) else id(index))] = event
            self.aliased[id(node)] = event.anchor
            return node
        return super().compose_node(parent, index)


def _construct_opaque(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Opaque:
    return Opaque(f"YAML tag {node.tag} is not evaluated")


OpaqueTagLoader.add_multi_constructor("", _construct_opaque)
OpaqueTagLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_opaque)

if hasattr(yaml, "CSafeLoader"):

    class _FastLoader(yaml.CSafeLoader):
        """libyaml's composer: the same nodes and marks, ~10x faster. Only for text without anchors or aliases,
        whose uses OpaqueTagLoader records and libyaml's composer does not report."""

        def __init__(self, stream):
            super().__init__(stream)
            self.alias_uses: dict = {}
            self.aliased: dict[int, str] = {}

    _FastLoader.add_multi_constructor("", _construct_opaque)
    _FastLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_opaque)
HAS_LIBYAML = hasattr(yaml, "CSafeLoader")  # PyYAML without libyaml: every file takes the pure-Python path

_STANDARD = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "binary")}


@dataclass
class YamlFile:
    path: Path
    text: str
    lines: list[str]
    root: V
    bases: list[Path]
    top_keys: list[str]


def _loc(path: Path, node: yaml.Node) -> Loc:
    """The node's span; a block collection's ends with its last item, not where the next key starts."""
    start = node.start_mark
    end = _content_end(node) if isinstance(node, yaml.CollectionNode) else (node.end_mark.line + 1, node.end_mark.column)
    return Loc(path, start.line + 1, start.column, *end)


def _content_end(node: yaml.Node) -> tuple[int, int]:
    """Where a node's text ends. A block collection's end mark is the start of whatever follows it; a block
    scalar's (``|``, ``>``) is the start of the line after its last line break (column 0)."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1])
    return (node.end_mark.line + 1, node.end_mark.column)


_MAX_NODES = 100_000  # aliases expand: `&a [*b, *b, ...]` nested nine deep is a billion nodes


def _child(path: Path, loader: OpaqueTagLoader, parent: yaml.Node, index, node: yaml.Node, budget: list,
           shared: str) -> V:
    """The value at ``parent[index]``. Reached through ``*name``, its site is that alias (replacing it changes
    this use only) and everything inside it is shared with the anchor; an anchored node that aliases reuse is
    shared where it is defined."""
    alias = loader.alias_uses.get((id(parent), index if isinstance(index, int) else id(index)))
    if alias is None:
        defined = loader.aliased.get(id(node))
        return _to_v(path, loader, node, budget, shared or (f"*{defined}" if defined else ""))
    value = _to_v(path, loader, node, budget, f"*{alias.anchor}")
    site = Loc(path, alias.start_mark.line + 1, alias.start_mark.column, alias.end_mark.line + 1, alias.end_mark.column)
    return replace(value, site=site, shape=None, shared=shared)


def _to_v(path: Path, loader: OpaqueTagLoader, node: yaml.Node, budget: Optional[list] = None, shared: str = "") -> V:
    budget = [_MAX_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"{path}: more than {_MAX_NODES} values once its YAML aliases are expanded")
    loc = _loc(path, node)
    value: Any  # a scalar's Python value or an Opaque; a node's V
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:int" and len(node.value) > MAX_JSON_DIGITS:
            value = Opaque(f"an integer of more than {MAX_JSON_DIGITS} digits is not read")
        elif node.tag in _STANDARD:
            value = loader.construct_object(node, deep=True)
        else:
            value = Opaque(f"YAML tag {node.tag} is not evaluated")
        return V(value, loc, loc, shared=shared)
    if node.tag not in ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
        return V(Opaque(f"YAML tag {node.tag} is not evaluated"), loc, loc, shared=shared)
    if isinstance(node, yaml.SequenceNode):
        items = [_child(path, loader, node, i, item, budget, shared) for i, item in enumerate(node.value)]
        return V(items, loc, loc, shared=shared)
    entries: dict = {}
    merged: dict = {}
    last_end = None
    indent = None
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
        value = _child(path, loader, node, key_node, value_node, budget, shared)
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys unless set here; the first wins
            for source in value.value if isinstance(value.value, list) else [value]:
                if isinstance(source.value, dict):
                    for k, v in source.value.items():
                        merged.setdefault(k, replace(v, shared=shared or "<<"))
        else:
            entries[key] = value
        indent = key_node.start_mark.column
        last_end = _content_end(value_node)
    entries = {**{k: v for k, v in merged.items() if k not in entries}, **entries}
    shape = None
    if node.flow_style:  # `{A: 1, B: 2}`: a fix adds `, KEY: value` before the closing brace
        shape = DictShape(style="flow", last_entry_end=last_end, close=(loc.end_line, loc.end_col - 1))
    elif last_end is not None:
        shape = DictShape(style="yaml", last_entry_end=last_end, close=last_end, entry_indent=indent)
    return V(entries, loc, loc, None if shared else shape, shared=shared)


def parse_yaml(path: Path, text: Optional[str] = None) -> YamlFile:
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    fast = HAS_LIBYAML and "&" not in text and "*" not in text  # no anchor or alias can be in it
    loader = _FastLoader(text) if fast else OpaqueTagLoader(text)
    try:
        node = loader.get_single_node()
        root = _to_v(path, loader, node) if node is not None else None
    except RecursionError:
        raise ConfigError(f"{path}: unreadable YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: unreadable YAML: {problem}") from None
    finally:
        loader.dispose()
    if root is None:
        loc = Loc(path, 1, 0, 1, 0)
        root = V({}, loc, loc)
    if not isinstance(root.value, dict):
        raise ConfigError(f"{path}: a Detectron2 config must be a mapping at the top level")
    bases: list[Path] = []
    base = root.value.get(BASE_KEY)
    if base is not None:
        for item in base.value if isinstance(base.value, list) else [base]:
            if not isinstance(item.value, str):
                raise ConfigError(f"{item.loc.at()}: _BASE_ must be a path")
            bases.append(canonical(path.parent / Path(item.value).expanduser()))
    return YamlFile(path, text, text.splitlines(), root, bases, list(root.value))


def looks_like_detectron2(path: Path) -> bool:
    """Detectron2 configs have upper-case top-level keys (MODEL, INPUT, SOLVER) or a ``_BASE_``."""
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096].lstrip("\ufeff")  # a BOM is not a key
    except OSError:
        return False
    for line in head.splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "---")) and ":" in line:
            key = line.split(":", 1)[0].strip().strip("'\"")
            return key == BASE_KEY or (key.isupper() and key.replace("_", "").isalnum())
    return False


def merge(child: dict, base: dict) -> dict:
    """yacs ``_merge_a_into_b``: mappings merge recursively, everything else replaces."""
    out = dict(base)
    for key, value in child.items():
        if key == BASE_KEY:
            continue
        if isinstance(value.value, dict) and key in out and isinstance(out[key].value, dict):
            out[key] = replace(value, value=merge(value.value, out[key].value))
        else:
            out[key] = value
    return out


class Detectron2Loader(ChainLoader[YamlFile]):
    base_key = "_BASE_"

    def _parse(self, path: Path, text: Optional[str]) -> YamlFile:
        return parse_yaml(path, text)

    def _load(self, path: Path, stack: tuple[Path, ...]) -> dict:
        parsed = self.parsed(path)
        merged: dict = {}
        for base in parsed.bases:
            merged = merge(self.load(self.base_file(path, base), stack), merged)
        return merge(parsed.root.value, merged)


def lookup(cfg: dict, dotted: str) -> Optional[V]:
    node: Optional[V] = None
    current = cfg
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        node = current[part]
        current = node.value
    return node
