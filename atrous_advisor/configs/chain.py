"""What every config format with base files shares: parse each file once, merge each chain once, refuse cycles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, Union

from atrous_advisor.configs.values import canonical
from atrous_advisor.errors import ConfigError

Parsed = TypeVar("Parsed")


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

    def load(self, path: Path, _stack: tuple[Path, ...] = ()) -> dict[str, Any]:
        """The merged config of ``path``: its own values over its bases', with locations."""
        path = canonical(path)
        if path in _stack:
            cycle = " -> ".join(p.name for p in (*_stack[_stack.index(path):], path))
            raise ConfigError(f"{path}: cyclic {self.base_key}: {cycle}")
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
