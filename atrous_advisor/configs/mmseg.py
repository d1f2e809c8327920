"""MMSegmentation Python configs, read without running them.

A static evaluator over the safe subset of Python that configs are written in — literals, ``dict()``, lists,
tuples, names bound earlier in the same file, arithmetic, ``_base_.x`` and ``{{_base_.x}}`` references — with
mmengine's inheritance semantics (``Config._file2dict``): each file is evaluated in its own namespace, the
union of its bases is visible only as ``_base_``, and the file's own bindings are merged recursively into that
union (``_delete_=True`` replaces instead). Anything outside the subset becomes an :class:`Opaque` value:
reported (AA001) when a rule needs it, never guessed, never executed.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

from atrous_advisor.errors import ConfigError
from atrous_advisor.configs.chain import ChainLoader
from atrous_advisor.configs.values import DictShape, Loc, Opaque, V, canonical, split_lines

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"

# mmengine replaces ``{{_base_.x}}`` textually by a placeholder string before parsing, and puts the base's
# value in its place after evaluation. We rewrite it to ``(_base_.x)`` padded to the same length, so that
# every column after it stays where it was in the file.
_PLACEHOLDER = re.compile(r"\{\{\s*" + BASE_KEY + r"\.([\w\.]+)\s*\}\}")


def substitute_placeholders(text: str) -> str:
    def expand(match: re.Match) -> str:
        ref = f"({BASE_KEY}.{match.group(1)}"
        return ref + " " * (len(match.group(0)) - len(ref) - 1) + ")"

    return _PLACEHOLDER.sub(expand, text)


def placeholder_spans(lines: list[str]) -> dict[int, list[tuple[int, int]]]:
    """Line -> character spans of ``{{_base_.x}}``: a fix replacing such a value replaces all of it."""
    spans: dict[int, list[tuple[int, int]]] = {}
    for number, line in enumerate(lines, 1):
        if "{{" in line:
            for match in _PLACEHOLDER.finditer(line):
                spans.setdefault(number, []).append(match.span())
    return spans


class Dropped(Opaque):
    """Imports, functions and classes: mmengine drops modules and functions from the config dict."""


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_NUMBER = (int, float)

# The evaluation budget. A config is data written as Python; one that needs more than this to evaluate is not
# one a linter should evaluate: the expression becomes opaque ("too complex to evaluate statically", AA001 on
# its line when a rule needs it) instead of taking the linter down (`10**64**64`, `x = x * x` forty times).
_MAX_SEQUENCE = 10_000  # items in one list/tuple/str (`[0] * 10**9`)
_MAX_ITEMS = 100_000  # values inside one value, nested ones included (`y = [x] * 10000` with x of 10000)
_MAX_INT_BITS = 4_096  # about 1,233 digits; also keeps every int printable (Python's 4,300-digit limit)
_MAX_OPERATIONS = 200_000  # expression nodes evaluated per file
_MAX_DEPTH = 100  # expressions nested inside each other
TOO_COMPLEX = "too complex to evaluate statically"


def _is_number(x: Any) -> bool:
    return isinstance(x, _NUMBER)  # bool is an int, as in Python


class _FileEvaluator:
    """Evaluates one file's top-level statements into located values. Never calls ``exec``/``eval``."""

    def __init__(self, path: Path, lines: list[str], base: Optional[dict[str, V]], placeholders=None):
        self.path = path
        self.lines = lines
        self.base = base
        self.placeholders: dict[int, list[tuple[int, int]]] = placeholders or {}
        self.names: dict[str, V] = {}
        self.operations = 0
        self.depth = 0
        self._weights: dict[int, tuple[V, int]] = {}  # id -> (value kept alive, values inside it)

    # --- locations -------------------------------------------------------------------------------------
    def _char_col(self, line: int, byte_col: int) -> int:
        # ast columns are UTF-8 byte offsets; Loc columns are characters.
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if text.isascii():
            return byte_col
        return len(text.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))

    def loc(self, node: Any) -> Loc:  # any located node: expr, stmt, keyword
        line, col = node.lineno, self._char_col(node.lineno, node.col_offset)
        for start, end in self.placeholders.get(line, ()):
            if start <= col < end:  # inside a rewritten {{_base_.x}}: the span is the placeholder as written
                return Loc(self.path, line, start, line, end)
        return Loc(
            self.path,
            line,
            col,
            node.end_lineno or node.lineno,
            self._char_col(node.end_lineno or node.lineno, node.end_col_offset or node.col_offset),
        )

    def _end(self, node: ast.AST) -> tuple[int, int]:
        loc = self.loc(node)
        return (loc.end_line, loc.end_col)

    def _shape(self, node: ast.AST, style: str, entries: list[ast.AST]) -> DictShape:
        loc = self.loc(node)
        last = max((self._end(e) for e in entries), default=None)
        return DictShape(style=style, last_entry_end=last, close=(loc.end_line, loc.end_col - 1))

    def opaque(self, node: ast.AST, reason: str) -> V:
        loc = self.loc(node)
        return V(Opaque(reason), loc, loc)

    # --- statements ------------------------------------------------------------------------------------
    def run(self, tree: ast.Module) -> dict[str, V]:
        for stmt in tree.body:
            self.statement(stmt)
        return {
            name: value
            for name, value in self.names.items()
            if name != BASE_KEY and not name.startswith("__") and not isinstance(value.value, Dropped)
        }

    def statement(self, stmt: ast.stmt) -> None:
        self._statement(stmt)
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr)):
            # `x.update(...)`, `pipeline.append(...)`: never run, so what they would change is unknown.
            for root, call in _method_calls(stmt):
                if root.id == BASE_KEY:
                    self.taint_base(call.func, f"`{_snippet(call)}` (line {call.lineno}) may change it and is not evaluated")
                elif root.id in self.names:
                    self.names[root.id] = self.opaque(
                        root, f"`{root.id}` may be changed by `{_snippet(call)}` (line {call.lineno}), which is not evaluated"
                    )
            for node in ast.walk(stmt):  # `(crop := ...)` binds a name in an expression that is not evaluated
                if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
                    self.names[node.target.id] = self.opaque(node.target, f"`{node.target.id}` is bound by `:=` (line {node.lineno})")

    def _statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == BASE_KEY for t in stmt.targets):
                return  # mmengine removes the `_base_ = ...` assignment before evaluating the file
            value = self.expr(stmt.value)
            for target in stmt.targets:
                self.bind(target, value)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self.bind(stmt.target, self.expr(stmt.value))
        elif isinstance(stmt, ast.AugAssign):
            if isinstance(stmt.target, ast.Name) and stmt.target.id in self.names:
                left = self.names[stmt.target.id]
                self.names[stmt.target.id] = self.binop(stmt, stmt.op, left, self.expr(stmt.value))
            else:
                self.taint(stmt, "an augmented assignment that is not evaluated")
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                name = (alias.asname or alias.name).split(".")[0]
                loc = self.loc(stmt)
                self.names[name] = V(Dropped(f"`{name}` is an import"), loc, loc)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            loc = self.loc(stmt)
            self.names[stmt.name] = V(Dropped(f"`{stmt.name}` is a function or class"), loc, loc)
        elif isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    self.names.pop(target.id, None)
                else:  # `del model['decode_head']['dilations']`: not evaluated, so the name is no longer known
                    root = target
                    while isinstance(root, (ast.Subscript, ast.Attribute)):
                        root = root.value
                    if isinstance(root, ast.Name) and root.id in self.names:
                        self.names[root.id] = self.opaque(
                            root, f"`{root.id}` is changed by a `del` (line {stmt.lineno}), which is not evaluated"
                        )
        elif isinstance(stmt, ast.Expr):
            return  # a bare expression binds nothing; it is never run (it may be `__import__('os')...`)
        else:
            kind = type(stmt).__name__.lower()
            self.taint(stmt, f"a `{kind}` statement (line {stmt.lineno}), which is not evaluated")

    def taint(self, stmt: ast.stmt, why: str) -> None:
        """Names bound inside a statement we do not evaluate become opaque — not left at stale values."""
        for root, call in _method_calls(stmt):
            if root.id == BASE_KEY:
                self.taint_base(call.func, f"it may be changed in {why}")
            else:
                self.names[root.id] = self.opaque(root, f"`{root.id}` may be changed in {why}")
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.names[node.id] = self.opaque(node, f"`{node.id}` is bound in {why}")
            elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store):
                root = node
                while isinstance(root, (ast.Subscript, ast.Attribute)):
                    root = root.value
                if isinstance(root, ast.Name):
                    self.names[root.id] = self.opaque(root, f"`{root.id}` is modified in {why}")

    def bind(self, target: ast.expr, value: V) -> None:
        if isinstance(target, ast.Name):
            self.names[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = value.value if isinstance(value.value, (list, tuple)) else None
            if items is not None and len(items) == len(target.elts):
                for t, v in zip(target.elts, items):
                    self.bind(t, v)
            else:
                for t in target.elts:
                    self.bind(t, self.opaque(t, "unpacking of a value that is not a sequence of that length"))
        elif isinstance(target, (ast.Subscript, ast.Attribute)):
            self.bind_item(target, value)

    def taint_base(self, node: ast.expr, why: str) -> None:
        """``_base_.model.update(...)``/``_base_.model.x = ...`` change the base dict the file is merged into."""
        while isinstance(node, (ast.Attribute, ast.Subscript)) and not (
            isinstance(node.value, ast.Name) and node.value.id == BASE_KEY
        ):
            node = node.value
        key = node.attr if isinstance(node, ast.Attribute) else getattr(getattr(node, "slice", None), "value", None)
        if self.base is not None and isinstance(key, str) and key in self.base:
            self.base[key] = self.opaque(node, f"`_base_.{key}`: {why}")

    def bind_item(self, target: Union[ast.Subscript, ast.Attribute], value: V) -> None:
        """``cfg['a']['b'] = v``: rebuild the dicts on the path (values are shared, never mutated)."""
        keys: list[str] = []
        node: ast.expr = target
        while isinstance(node, (ast.Subscript, ast.Attribute)):
            if isinstance(node, ast.Attribute):
                keys.append(node.attr)
            elif isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                keys.append(node.slice.value)
            else:
                keys = []
                break
            node = node.value
        if isinstance(node, ast.Name) and node.id == BASE_KEY:  # mmengine's _base_ is the merged base dict itself
            self.taint_base(target, f"it is assigned to on line {target.lineno}, which is not evaluated")
            return
        if not isinstance(node, ast.Name) or node.id not in self.names or not keys:
            root = node.id if isinstance(node, ast.Name) else "?"
            self.names[root] = self.opaque(target, f"`{root}` is modified by an item assignment that is not evaluated")
            return
        keys.reverse()

        def put(container: V, path: list[str]) -> V:
            if not isinstance(container.value, dict):
                return self.opaque(target, f"item assignment into a non-dict `{node.id}`")
            entries = dict(container.value)
            if len(path) == 1:
                entries[path[0]] = value
            else:
                inner = entries.get(path[0])
                if inner is None:
                    return self.opaque(target, f"item assignment into a missing key {path[0]!r}")
                entries[path[0]] = put(inner, path[1:])
            return V(entries, container.loc, container.site, container.shape)

        self.names[node.id] = put(self.names[node.id], keys)

    # --- expressions -----------------------------------------------------------------------------------
    def expr(self, node: ast.expr) -> V:
        handler = getattr(self, "_" + type(node).__name__, None)
        if handler is None:
            return self.opaque(node, f"{type(node).__name__} expression `{_snippet(node)}` is not evaluated statically")
        self.operations += 1
        if self.operations > _MAX_OPERATIONS:
            return self.opaque(node, f"{TOO_COMPLEX}: the file needs more than {_MAX_OPERATIONS} operations")
        if self.depth >= _MAX_DEPTH:
            return self.opaque(node, f"{TOO_COMPLEX}: expressions nested more than {_MAX_DEPTH} deep")
        self.depth += 1
        try:
            value = handler(node)
        finally:
            self.depth -= 1
        if isinstance(value.value, (list, tuple, dict)) and self.weight(value) > _MAX_ITEMS:
            return self.opaque(node, f"{TOO_COMPLEX}: a value holding more than {_MAX_ITEMS} values")
        return value

    def weight(self, v: V) -> int:
        """How many values ``v`` holds, nested ones included (shared ones counted each time, as a reader would)."""
        known = self._weights.get(id(v))
        if known is not None and known[0] is v:
            return known[1]
        items = v.value.values() if isinstance(v.value, dict) else v.value if isinstance(v.value, (list, tuple)) else ()
        total = 1
        for item in items:
            total += self.weight(item) if isinstance(item, V) else 1
            if total > _MAX_ITEMS:
                break
        self._weights[id(v)] = (v, total)
        return total

    def _Constant(self, node: ast.Constant) -> V:
        loc = self.loc(node)
        if type(node.value) is int and node.value.bit_length() > _MAX_INT_BITS:
            return V(Opaque(f"{TOO_COMPLEX}: an integer of more than {_MAX_INT_BITS} bits"), loc, loc)
        return V(node.value, loc, loc)

    def _sequence(self, node: Union[ast.Tuple, ast.List], kind: type) -> V:
        items: list[V] = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                inner = self.expr(elt.value)
                if not isinstance(inner.value, (list, tuple)):
                    return self.opaque(node, f"unpacking `{_snippet(elt)}` of a value that is not a sequence")
                items.extend(inner.value)
            else:
                items.append(self.expr(elt))
            if len(items) > _MAX_SEQUENCE:
                return self.opaque(node, f"a sequence of more than {_MAX_SEQUENCE} items is not evaluated")
        loc = self.loc(node)
        return V(kind(items), loc, loc)

    def _Tuple(self, node: ast.Tuple) -> V:
        return self._sequence(node, tuple)

    def _List(self, node: ast.List) -> V:
        return self._sequence(node, list)

    def _Dict(self, node: ast.Dict) -> V:
        entries: dict[Any, V] = {}  # a dict literal's keys may be ints or None as well
        for key, value in zip(node.keys, node.values):
            if key is None:  # {**other}
                inner = self.expr(value)
                if not isinstance(inner.value, dict):
                    return self.opaque(node, f"`**{_snippet(value)}` of a value that is not a dict")
                entries.update(inner.value)
                continue
            k = self.expr(key)
            if not isinstance(k.value, (str, int, float, bool, type(None))):
                return self.opaque(node, f"dict key `{_snippet(key)}` is not a constant")
            entries[k.value] = self.expr(value)
        loc = self.loc(node)
        return V(entries, loc, loc, self._shape(node, "literal", list(node.values)))

    def _Call(self, node: ast.Call) -> V:
        func = node.func
        name = func.id if isinstance(func, ast.Name) and func.id not in self.names else None
        if name == "dict":
            return self._dict_call(node)
        if name in ("list", "tuple") and len(node.args) == 1 and not node.keywords:
            inner = self.expr(node.args[0])
            if isinstance(inner.value, (list, tuple)):
                loc = self.loc(node)
                return V((list if name == "list" else tuple)(inner.value), loc, loc)
        return self.opaque(node, f"call `{_snippet(node)}` is not evaluated (configs are never run)")

    def _dict_call(self, node: ast.Call) -> V:
        entries: dict[str, V] = {}
        if len(node.args) > 1:
            return self.opaque(node, "dict() with more than one positional argument")
        if node.args:
            inner = self.expr(node.args[0])
            if not isinstance(inner.value, dict):
                return self.opaque(node, f"dict({_snippet(node.args[0])}) of a value that is not a dict")
            entries.update(inner.value)
        for kw in node.keywords:
            value = self.expr(kw.value)
            if kw.arg is None:
                if not isinstance(value.value, dict):
                    return self.opaque(node, f"`**{_snippet(kw.value)}` of a value that is not a dict")
                entries.update(value.value)
            else:
                entries[kw.arg] = value
        loc = self.loc(node)
        return V(entries, loc, loc, self._shape(node, "call", [*node.args, *node.keywords]))

    def _Name(self, node: ast.Name) -> V:
        loc = self.loc(node)
        if node.id in self.names:
            return self.names[node.id].at_site(loc)
        if node.id == BASE_KEY and self.base is not None:
            return V(self.base, loc, loc)
        return V(Opaque(f"name `{node.id}` is not bound earlier in this file"), loc, loc)

    def _Attribute(self, node: ast.Attribute) -> V:
        owner = self.expr(node.value)
        loc = self.loc(node)
        if owner.is_opaque:
            return V(owner.value, loc, loc)
        if isinstance(owner.value, dict) and node.attr in owner.value:
            return owner.value[node.attr].at_site(loc)
        return V(Opaque(f"`{_snippet(node)}` does not exist"), loc, loc)

    def _Subscript(self, node: ast.Subscript) -> V:
        owner = self.expr(node.value)
        loc = self.loc(node)
        if owner.is_opaque:
            return V(owner.value, loc, loc)
        if isinstance(node.slice, ast.Slice):
            bounds = [self.expr(b).value if b is not None else None for b in (node.slice.lower, node.slice.upper, node.slice.step)]
            if isinstance(owner.value, (list, tuple)) and all(b is None or type(b) is int for b in bounds) and bounds[2] != 0:
                return V(owner.value[slice(*bounds)], loc, loc)
            return V(Opaque(f"slice `{_snippet(node)}` is not evaluated"), loc, loc)
        index = self.expr(node.slice).value
        try:
            if isinstance(owner.value, dict) or (isinstance(owner.value, (list, tuple)) and type(index) is int):
                return owner.value[index].at_site(loc)
        except (KeyError, IndexError, TypeError):
            pass
        return V(Opaque(f"`{_snippet(node)}` does not exist"), loc, loc)

    def _BinOp(self, node: ast.BinOp) -> V:
        return self.binop(node, node.op, self.expr(node.left), self.expr(node.right))

    def binop(self, node: ast.AST, op: ast.operator, left: V, right: V) -> V:
        loc = self.loc(node)
        for side in (left, right):
            if side.is_opaque:
                return V(side.value, loc, loc)
        a, b = left.value, right.value
        fn = _BINOPS.get(type(op))
        try:
            if fn is not None and _is_number(a) and _is_number(b):
                if _int_too_big(op, a, b):
                    return V(Opaque(f"{TOO_COMPLEX}: `{_snippet(node)}` is an integer of more than {_MAX_INT_BITS} bits"), loc, loc)
                return V(fn(a, b), loc, loc)
            if isinstance(op, ast.Add) and type(a) is type(b) and isinstance(a, (list, tuple, str)):
                if len(a) + len(b) > _MAX_SEQUENCE:  # `x = x + x` twenty times must not take the linter down
                    raise OverflowError
                return V(a + b, loc, loc)
            if isinstance(op, ast.Mult) and isinstance(a, (list, tuple, str)) and type(b) is int:
                if len(a) * b > _MAX_SEQUENCE:
                    raise OverflowError
                return V(a * b, loc, loc)
        except (ArithmeticError, TypeError, ValueError):
            pass
        return V(Opaque(f"`{_snippet(node)}` is not evaluated"), loc, loc)

    def _UnaryOp(self, node: ast.UnaryOp) -> V:
        operand = self.expr(node.operand)
        loc = self.loc(node)
        if operand.is_opaque:
            return V(operand.value, loc, loc)
        x = operand.value
        if isinstance(node.op, ast.USub) and _is_number(x):
            return V(-x, loc, loc)
        if isinstance(node.op, ast.UAdd) and _is_number(x):
            return V(+x, loc, loc)
        if isinstance(node.op, ast.Not) and isinstance(x, (bool, int, float, str, list, tuple, dict, type(None))):
            return V(not x, loc, loc)
        return V(Opaque(f"`{_snippet(node)}` is not evaluated"), loc, loc)


def _int_too_big(op: ast.operator, a: Any, b: Any) -> bool:
    """Whether ``a op b`` would be an int past the budget — decided before computing it (``10**10**10``)."""
    if isinstance(a, float) or isinstance(b, float):
        return False  # floats overflow to an OverflowError, which makes the value opaque
    bits_a, bits_b = abs(a).bit_length(), abs(b).bit_length()
    if isinstance(op, ast.Pow):
        return b > 0 and bits_a > 1 and (bits_a - 1) * b > _MAX_INT_BITS
    if isinstance(op, ast.Mult):
        return bits_a + bits_b > _MAX_INT_BITS + 1
    return max(bits_a, bits_b) > _MAX_INT_BITS


def _method_calls(stmt: ast.AST):
    """(name, call) for every method call on a name in ``stmt``: ``a.update()``, ``a[0]['b'].append()``."""
    for node in ast.walk(stmt):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            root = node.func.value
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name):
                yield root, node


def _snippet(node: ast.AST, limit: int = 60) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- files and inheritance ----------------------------------------------------------------------------


@dataclass
class ParsedFile:
    path: Path
    text: str
    lines: list[str]
    tree: ast.Module
    bases: list[Path]  # resolved, in order
    base_site: Optional[Loc]
    placeholders: dict[int, list[tuple[int, int]]]


def parse_file(path: Path, text: Optional[str] = None) -> ParsedFile:
    """Read and parse one file and find its ``_base_`` list; raises ConfigError naming the file."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    source = substitute_placeholders(text)
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{(exc.offset or 0)}: syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):  # the parser's own limit on nesting
        raise ConfigError(f"{path}: cannot parse: {TOO_COMPLEX} (nested too deeply)") from None
    except ValueError as exc:  # null bytes
        raise ConfigError(f"{path}: cannot parse: {exc}") from None
    lines = split_lines(text)
    for stmt in tree.body:  # mmengine's pure-Python configs import their bases as modules
        if isinstance(stmt, ast.With) and any(
            isinstance(item.context_expr, ast.Call) and _snippet(item.context_expr.func).endswith("read_base")
            for item in stmt.items
        ):
            raise ConfigError(
                f"{path}:{stmt.lineno}:1: a new-style config (`with read_base():`) imports its bases as modules; "
                "atrous-advisor reads `_base_ = [...]` configs only"
            )
    bases: list[Path] = []
    base_site = None
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == BASE_KEY for t in stmt.targets):
            evaluator = _FileEvaluator(path, lines, None)
            value = evaluator.expr(stmt.value)
            base_site = value.loc
            raw = value.value
            items = list(raw) if isinstance(raw, (list, tuple)) else [value]
            for item in items:
                if not isinstance(item.value, str):
                    raise ConfigError(f"{item.loc.at()}: _base_ entries must be string paths")
                if "::" in item.value:
                    raise ConfigError(
                        f"{item.loc.at()}: external base {item.value!r} needs its package; atrous-advisor only "
                        "reads bases that are files"
                    )
                bases.append(canonical(path.parent / item.value))
            break
    return ParsedFile(path, text, lines, tree, bases, base_site, placeholder_spans(lines) if "{{" in text else {})


class MMSegLoader(ChainLoader[ParsedFile]):
    """MMSegmentation configs: each file evaluated statically in its own namespace, then merged over its bases."""

    def _parse(self, path: Path, text: Optional[str]) -> ParsedFile:
        return parse_file(path, text)

    def _load(self, path: Path, stack: tuple[Path, ...]) -> dict[str, V]:
        parsed = self.parsed(path)
        base_cfg: dict[str, V] = {}
        for base in parsed.bases:
            cfg = self.load(self.base_file(path, base), stack)
            duplicate = base_cfg.keys() & cfg.keys()
            if duplicate:
                raise ConfigError(f"{path}: bases define the same keys {sorted(duplicate)} (mmengine refuses this)")
            base_cfg.update(cfg)
        own = _FileEvaluator(path, parsed.lines, base_cfg, parsed.placeholders).run(parsed.tree)
        return merge(own, base_cfg, path)


def _delete_flag(v: V) -> bool:
    flag = v.value.get(DELETE_KEY) if isinstance(v.value, dict) else None
    return flag is not None and flag.value is True


def merge(child: dict[str, V], base: dict[str, V], path: Path) -> dict[str, V]:
    """mmengine's ``_merge_a_into_b``: dicts merge recursively unless ``_delete_=True``; other values replace."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value.value, dict) and key in out:
            # Like mmengine, `_delete_` is consumed only where there is a base value to delete.
            entries = {k: v for k, v in value.value.items() if k != DELETE_KEY}
            if not _delete_flag(value):
                if not isinstance(out[key].value, dict):
                    raise ConfigError(
                        f"{value.loc.at()}: `{key}` is a dict here but not in the base; set `_delete_=True` "
                        "to replace the base value"
                    )
                entries = merge(entries, out[key].value, path)
            out[key] = V(entries, value.loc, value.site, value.shape)
        else:
            out[key] = value
    return out
