"""One module per config layout, behind one small interface, in one registry (pre-commit's languages).

A layout is recognised by a file's content (never by the case of its first key), then:

- ``bases(path)``: the files it inherits (for "lint what inherits this changed base");
- ``facts(path)``: the resolved geometry the rules read;
- ``insert_edits(...)`` / ``append_edits(...)``: how a fix adds a key the leaf does not write yet
  (replacing a value the leaf writes is the same text splice for every layout: :mod:`configs.fixes`).

Files that are recognised as *not* configs (ordinary Python modules, Detectron2 LazyConfigs, mmseg
metafiles) are :class:`Skipped` with one line saying what they are; the summary counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional, Union

from atrous_advisor.configs.facts import ConfigFacts, Target
from atrous_advisor.configs.values import DictShape

HEAD_BYTES = 65536  # recognition reads at most this much of a file


@dataclass(frozen=True)
class Skipped:
    """A file recognised as something other than a training config: not linted, counted, named."""

    what: str  # "an ordinary Python module", "a Detectron2 LazyConfig (Python)", ...


class Framework:
    """One config layout. Subclasses are instantiated per lint run and hold that layout's loader cache."""

    name: ClassVar[str]
    label: ClassVar[str]  # for people: "MMSegmentation (_base_ configs)"
    suffixes: ClassVar[tuple[str, ...]]

    def __init__(self, overrides: dict[Path, str], settings) -> None:
        self.overrides = overrides
        self.settings = settings

    @classmethod
    def recognise(cls, path: Path, text: str, settings=None) -> Union[bool, Skipped]:
        """True when ``text`` (the file's first :data:`HEAD_BYTES`) is this layout; a Skipped for a known non-config.

        ``settings`` (when given) carries the user's key mapping for yacs-style configs."""
        raise NotImplementedError

    def bases(self, path: Path) -> list[Path]:
        return []

    def facts(self, path: Path) -> ConfigFacts:
        raise NotImplementedError

    @classmethod
    def replacement(cls, site, rendered: str, lines: list[str]) -> str:
        """The text that replaces a value the leaf writes at ``site`` (Loc) with the value ``rendered``."""
        return rendered

    @classmethod
    def insert_edits(cls, shape: DictShape, rest: tuple[str, ...], rendered: str, lines: list[str]):
        """Edits adding ``rest`` (keys below a container the leaf writes) with the value ``rendered``."""
        from atrous_advisor.configs.fixes import Unfixable

        raise Unfixable(f"{cls.label} configs cannot be extended automatically")

    @classmethod
    def append_edits(cls, target: Target, rendered: str, lines: list[str]):
        """Edits adding an override of ``target`` at the end of a leaf that writes none of its path."""
        from atrous_advisor.configs.fixes import Unfixable

        raise Unfixable(f"the config has no `{'.'.join(target.keys)}` to edit")


def registry() -> list[type[Framework]]:
    """In recognition order: the first layout that claims a file reads it."""
    from atrous_advisor.configs.frameworks import detectron2, mmseg, mmseg_new, paddleseg, smp, yacs

    # yacs first among YAML layouts: a user's key mapping (or a known research layout) is the most specific claim.
    return [mmseg_new.MMSegNew, mmseg.MMSeg, yacs.Yacs, detectron2.Detectron2, paddleseg.PaddleSeg, smp.Smp]


def by_name(name: str) -> type[Framework]:
    for cls in registry():
        if cls.name == name:
            return cls
    raise KeyError(name)


def read_head(path: Path, override: Optional[str] = None) -> Optional[str]:
    if override is not None:
        return override[:HEAD_BYTES]
    try:
        with open(path, "rb") as handle:
            return handle.read(HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None


def recognise(path: Path, override: Optional[str] = None, settings=None) -> Union[type[Framework], Skipped, None]:
    """The layout of ``path`` by its content; a Skipped when it is known not to be a config; None when unknown."""
    suffix = path.suffix.lower()
    candidates = [cls for cls in registry() if suffix in cls.suffixes]
    if not candidates:
        return None
    text = read_head(path, override)
    if text is None:
        return None
    skipped: Optional[Skipped] = None
    for cls in candidates:
        answer = cls.recognise(path, text, settings)
        if answer is True:
            return cls
        if isinstance(answer, Skipped) and skipped is None:
            skipped = answer
    return skipped
