"""mmengine's new-style (pure-Python) configs: ``with read_base(): from .x import *`` and classes as ``type=``."""

from __future__ import annotations

import re
from pathlib import Path

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.frameworks import Framework

_READ_BASE = re.compile(r"^\s*with\s+read_base\s*\(\s*\)\s*:", re.M)


class MMSegNew(Framework):
    name = "mmseg_new"
    label = "mmengine new-style"
    suffixes = (".py",)

    @classmethod
    def recognise(cls, path: Path, text: str):
        return bool(_READ_BASE.search(text))

    def facts(self, path: Path) -> ConfigFacts:
        from atrous_advisor.configs.mmseg import parse_file

        parse_file(path, self.overrides.get(path))  # raises the ConfigError that names the file
        raise AssertionError("unreachable: parse_file refuses read_base configs")
