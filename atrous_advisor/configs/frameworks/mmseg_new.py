"""mmengine's new-style (pure-Python) configs: ``with read_base(): from .x import *`` and classes as ``type=``."""

from __future__ import annotations

import re
from pathlib import Path

from atrous_advisor.configs.facts import ConfigFacts, Target
from atrous_advisor.configs.frameworks import Framework
from atrous_advisor.configs.mmseg_new import NewStyleLoader, config_of
from atrous_advisor.configs.resolve_mmseg import resolve_mmseg
from atrous_advisor.configs.values import DictShape, Loc, canonical

_READ_BASE = re.compile(r"^\s*with\s+read_base\s*\(\s*\)\s*:", re.M)
# A base of new-style configs has no read_base but imports its classes from the framework to use as `type=`.
_CLASS_TYPES = re.compile(r"^from\s+(?:mmseg|mmdet|mmpretrain|mmcv|mmengine)[\w.]*\s+import\s", re.M)
_TYPE_IS_NAME = re.compile(r"\btype\s*=\s*[A-Z]\w*\s*[,)]")
_MODULE = re.compile(r"^(?:async\s+def|def|class)\s|^if\s+__name__\s*==", re.M)


class MMSegNew(Framework):
    name = "mmseg_new"
    label = "mmengine new-style"
    suffixes = (".py",)

    def __init__(self, overrides, settings) -> None:
        super().__init__(overrides, settings)
        self.loader = NewStyleLoader(overrides=dict(overrides))

    @classmethod
    def recognise(cls, path: Path, text: str, settings=None):
        if _READ_BASE.search(text):
            return True
        # A base: framework classes as `type=`, and no code of its own (a training script also imports them).
        return bool(_CLASS_TYPES.search(text) and _TYPE_IS_NAME.search(text) and not _MODULE.search(text))

    def bases(self, path: Path) -> list[Path]:
        return self.loader.parsed(path).bases

    def facts(self, path: Path) -> ConfigFacts:
        facts = resolve_mmseg(path, config_of(self.loader.load(path)), Loc(canonical(path), 1, 0, 1, 0))
        facts.framework = self.name
        return facts

    @classmethod
    def insert_edits(cls, shape: DictShape, rest, rendered, lines):
        from atrous_advisor.configs.fixes import python_entry, python_insert

        return python_insert(shape, lines, python_entry(rest, rendered, shape.style))

    @classmethod
    def append_edits(cls, target: Target, rendered: str, lines: list[str]):
        """``model.update(decode_head=dict(dilations=...))``: rebinding ``model`` would drop the base's model."""
        from atrous_advisor.configs.fixes import append_at_end, python_entry

        keys = target.keys
        if len(keys) == 1:
            return append_at_end(lines, f"{keys[0]} = {rendered}")
        return append_at_end(lines, f"{keys[0]}.update({python_entry(keys[1:], rendered, 'call')})")
