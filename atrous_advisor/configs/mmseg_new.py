"""mmengine's new-style (pure-Python) configs, read without importing mmseg or running them.

What mmengine does (``Config.fromfile`` with lazy imports), and what is done here statically:

- ``with read_base(): from .._base_.datasets.cityscapes import *`` evaluates that file (a relative module
  path: each leading dot beyond the first goes one folder up) and binds its public names here, as Python's
  ``import *`` does; ``from .x import model, crop_size`` binds those names only. Bases are copies: mmengine
  turns every dict into a new ``ConfigDict``, so a change here never reaches a value a base already built
  (its ``train_pipeline`` keeps the crop it was built with, as in old-style configs).
- ``from mmseg.models.decode_heads import ASPPHead`` outside ``read_base`` is a lazy class reference:
  ``type=ASPPHead`` reads as ``"mmseg.models.decode_heads.ASPPHead"`` (what mmengine's ``to_dict`` gives),
  and the head is recognised by its class name. Imported names are not config keys.
- ``model.update(decode_head=dict(num_classes=7))`` and ``x.a.update(...)`` merge recursively
  (``ConfigDict.update``); other method calls make the name unknown (AA001 if a rule needs it).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TypeGuard

from atrous_advisor.configs.chain import ChainLoader
from atrous_advisor.configs.mmseg import Dropped, _FileEvaluator, _snippet
from atrous_advisor.configs.values import V, canonical, split_lines
from atrous_advisor.errors import ConfigError


class ImportedRef(str):
    """A name bound by an import statement: ``"module.Class"``; used as a value it reads as that string."""


@dataclass
class NewStyleFile:
    path: Path
    text: str
    lines: list[str]
    tree: ast.Module
    bases: list[Path]  # the files read_base imports, in order
    imports: dict[int, Path]  # line of each read_base import -> its file


def _is_read_base(stmt: ast.stmt) -> TypeGuard[ast.With]:
    return isinstance(stmt, ast.With) and any(
        isinstance(item.context_expr, ast.Call) and _snippet(item.context_expr.func).endswith("read_base")
        for item in stmt.items
    )


def _module_file(path: Path, node: ast.ImportFrom) -> Path:
    if node.level == 0:
        raise ConfigError(
            f"{path}:{node.lineno}:1: `from {node.module} import …` in read_base() imports a package's config; "
            "atrous-advisor reads bases that are files next to this one (`from .x import *`)"
        )
    folder = path.parent
    for _ in range(node.level - 1):
        folder = folder.parent
    return canonical(folder.joinpath(*(node.module or "").split(".")).with_suffix(".py"))


def parse_new_style(path: Path, text: Optional[str] = None) -> NewStyleFile:
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.offset or 0}: syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ConfigError(f"{path}: cannot parse: {type(exc).__name__}: {exc}") from None
    imports: dict[int, Path] = {}
    for stmt in tree.body:
        if _is_read_base(stmt):
            for inner in stmt.body:
                if isinstance(inner, ast.ImportFrom):
                    imports[inner.lineno] = _module_file(path, inner)
    return NewStyleFile(path, text, split_lines(text), tree, list(dict.fromkeys(imports.values())), imports)


class _NewStyleEvaluator(_FileEvaluator):
    def __init__(self, parsed: NewStyleFile, load):
        super().__init__(parsed.path, parsed.lines, None)
        self.parsed = parsed
        self.load = load  # file -> its full namespace (imported names included)

    def statement(self, stmt: ast.stmt) -> None:
        if _is_read_base(stmt):
            for inner in stmt.body:
                self.read_base_import(inner)
            return
        if isinstance(stmt, ast.Expr) and self.update(stmt.value):
            return
        super().statement(stmt)

    def _statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.ImportFrom) and stmt.level == 0:
            loc = self.loc(stmt)
            for alias in stmt.names:
                if alias.name != "*":  # a lazy class (or function) reference, `module.Name` for mmengine
                    self.names[alias.asname or alias.name] = V(ImportedRef(f"{stmt.module}.{alias.name}"), loc, loc)
            return
        super()._statement(stmt)

    def read_base_import(self, node: ast.stmt) -> None:
        if not isinstance(node, ast.ImportFrom):
            self.taint(node, f"a statement inside read_base() (line {node.lineno}), which is not evaluated")
            return
        base = self.parsed.imports[node.lineno]
        if not base.is_file():
            raise ConfigError(f"{self.path}:{node.lineno}: read_base() imports {base.name!r}, not found (looked for {base})")
        namespace = self.load(base)
        for alias in node.names:
            if alias.name == "*":
                self.names.update({k: v for k, v in namespace.items() if not k.startswith("_")})
            elif alias.name in namespace:
                self.names[alias.asname or alias.name] = namespace[alias.name]
            else:
                raise ConfigError(f"{self.path}:{node.lineno}: {base.name} has no `{alias.name}` to import")

    def _Name(self, node: ast.Name) -> V:
        value = super()._Name(node)
        if isinstance(value.value, ImportedRef):  # used as a value: the class's dotted name, a config value
            return V(str(value.value), value.loc, value.site)
        return value

    def update(self, call: ast.expr) -> bool:
        """``x.update(...)`` / ``x.a.b.update(...)`` on a dict name: merged as ``ConfigDict.update``. False if not that."""
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "update"):
            return False
        path: list[str] = []
        node = call.func.value
        while isinstance(node, ast.Attribute):
            path.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.names or not isinstance(self.names[node.id].value, dict):
            return False
        path.reverse()
        if len(call.args) > 1 or any(k.arg is None for k in call.keywords):
            return False
        changes: dict[str, V] = {}
        if call.args:
            given = self.expr(call.args[0])
            if not isinstance(given.value, dict):
                return False
            changes.update(given.value)
        changes.update({k.arg: self.expr(k.value) for k in call.keywords if k.arg is not None})

        def into(container: V, keys: list[str]) -> Optional[V]:
            if not isinstance(container.value, dict):
                return None
            entries = dict(container.value)
            if keys:
                inner = entries.get(keys[0])
                new = into(inner, keys[1:]) if inner is not None else None
                if new is None:
                    return None
                entries[keys[0]] = new
            else:
                entries = _update(entries, changes)
            return V(entries, container.loc, container.site, container.shape)

        merged = into(self.names[node.id], path)
        if merged is None:
            return False
        self.names[node.id] = merged
        return True

    def namespace(self) -> dict[str, V]:
        for stmt in self.parsed.tree.body:
            self.statement(stmt)
        return dict(self.names)


def _update(entries: dict[str, V], changes: dict[str, V]) -> dict[str, V]:
    """mmengine's ``ConfigDict.update``: a dict given for a dict key merges into it; anything else replaces."""
    out = dict(entries)
    for key, value in changes.items():
        old = out.get(key)
        if old is not None and isinstance(old.value, dict) and isinstance(value.value, dict):
            out[key] = V(_update(old.value, value.value), value.loc, value.site, value.shape)
        else:
            out[key] = value
    return out


def config_of(namespace: dict[str, V]) -> dict[str, V]:
    """The config keys of a file's namespace: what mmengine's ``to_dict`` holds (no imports, modules, dunders)."""
    return {
        k: v for k, v in namespace.items()
        if not k.startswith("__") and not isinstance(v.value, (ImportedRef, Dropped))
    }


class NewStyleLoader(ChainLoader[NewStyleFile]):
    base_key = "read_base()"

    def _parse(self, path: Path, text: Optional[str]) -> NewStyleFile:
        return parse_new_style(path, text)

    def _load(self, path: Path, stack: tuple[Path, ...]) -> dict[str, V]:
        parsed = self.parsed(path)
        return _NewStyleEvaluator(parsed, lambda base: self.load(base, stack)).namespace()
