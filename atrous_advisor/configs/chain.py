"""What every config format with base files shares: parse each file once, merge each chain once, refuse cycles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, Union

from atrous_advisor.configs.values import canonical
from atrous_advisor.errors import ConfigError

Parsed = TypeVar("Parsed")

MAX_CHAIN_DEPTH = 1_000  # files in one inheritance chain; real ones have three or four


@dataclass
class ChainLoader(Generic[Parsed]):
    """Loads configs with their bases; each file is parsed and merged once and then shared.

    Subclasses say how a file is parsed (``_parse``) and how it is merged over its bases (``_load``);
    ``base_key`` names the inheritance key in messages (``_base_`` or ``_BASE_``).
    """

    base_key: ClassVar[str] = "_base_"
    overrides: dict[Path, str] = field(default_factory=dict)  # resolved path -> text (``--diff`` previews)
    files: dict[Path, Parsed] = field(default_factory=dict)
    _merged: dict[Path, Union[dict, ConfigError]] = field(default_factory=dict)

    def _parse(self, path: Path, text: Union[str, None]) -> Parsed:
        raise NotImplementedError

    def _load(self, path: Path, stack: tuple[Path, ...]) -> dict[str, Any]:
        raise NotImplementedError

    def parsed(self, path: Path) -> Parsed:
        path = canonical(path)
        if path not in self.files:
            self.files[path] = self._parse(path, self.overrides.get(path))
        return self.files[path]

    def _bases(self, parsed: Parsed) -> list[Path]:
        return list(getattr(parsed, "bases"))

    def _load_bases_first(self, path: Path) -> None:
        """Load every base of ``path``, deepest first, without recursion.

        Each ``_load`` then finds its bases already merged, so a chain thousands of files deep costs no
        Python stack; a cycle is reported once, from the file where it closes, the same whichever file of
        it was named.
        """
        stack: list[tuple[Path, list[Path]]] = [(path, [])]
        on_stack = {path}
        while stack:
            current, done = stack[-1]
            if current in self._merged:
                stack.pop()
                on_stack.discard(current)
                continue
            parsed = self.parsed(current)
            pending = [b for b in self._bases(parsed) if b not in done and b not in self._merged and b.is_file()]
            if not pending:
                stack.pop()
                on_stack.discard(current)
                if current != path:
                    try:
                        self._merged[current] = self._load(current, (current,))
                    except ConfigError as exc:
                        self._merged[current] = exc
                continue
            base = pending[0]
            done.append(base)
            if base in on_stack:
                chain = [p for p, _ in stack]
                cycle = [*chain[chain.index(base):], base]
                first = min(range(len(cycle) - 1), key=lambda i: str(cycle[i]))  # the same text from any entry
                cycle = cycle[first:-1] + cycle[:first] + [cycle[first]]
                raise ConfigError(f"{cycle[0]}: cyclic {self.base_key}: {' -> '.join(p.name for p in cycle)}")
            if len(stack) >= MAX_CHAIN_DEPTH:
                raise ConfigError(f"{path}: {self.base_key} chain more than {MAX_CHAIN_DEPTH} files deep")
            stack.append((base, []))
            on_stack.add(base)

    def load(self, path: Path, _stack: tuple[Path, ...] = ()) -> dict[str, Any]:
        """The merged config of ``path``: its own values over its bases', with locations."""
        path = canonical(path)
        if path in _stack:
            cycle = " -> ".join(p.name for p in (*_stack[_stack.index(path):], path))
            raise ConfigError(f"{path}: cyclic {self.base_key}: {cycle}")
        if not _stack and path not in self._merged:
            try:
                self._load_bases_first(path)
            except ConfigError as exc:
                self._merged[path] = exc
                raise
        cached = self._merged.get(path)
        if isinstance(cached, ConfigError):
            raise cached
        if cached is not None:
            return cached
        try:
            merged = self._load(path, (*_stack, path))
        except ConfigError as exc:
            if not _stack:  # only a top-level failure is final; a base may load fine on its own
                self._merged[path] = exc
            raise
        self._merged[path] = merged
        return merged

    def base_file(self, path: Path, base: Path) -> Path:
        if not base.is_file():
            raise ConfigError(f"{path}: {self.base_key} {base.name!r} not found (looked for {base})")
        return base
