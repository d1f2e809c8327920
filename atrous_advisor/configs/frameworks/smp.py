"""segmentation_models_pytorch ``config.json`` written by ``save_pretrained``."""

from __future__ import annotations

from pathlib import Path

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.frameworks import Framework
from atrous_advisor.configs.resolve_smp import resolve_smp
from atrous_advisor.configs.smp import MODEL_CLASS_KEY, parse_smp
from atrous_advisor.configs.values import Loc, canonical


class Smp(Framework):
    name = "smp"
    label = "segmentation_models_pytorch"
    suffixes = (".json",)

    @classmethod
    def recognise(cls, path: Path, text: str, settings=None):
        return f'"{MODEL_CLASS_KEY}"' in text

    def facts(self, path: Path) -> ConfigFacts:
        anchor = Loc(canonical(path), 1, 0, 1, 0)
        return resolve_smp(path, parse_smp(path, self.overrides.get(canonical(path))), anchor)

    @classmethod
    def insert_edits(cls, shape, rest, rendered, lines):
        from atrous_advisor.configs.fixes import Unfixable

        raise Unfixable("config.json has no such key to edit")

    @classmethod
    def append_edits(cls, target, rendered, lines):
        return cls.insert_edits(None, target.keys, rendered, lines)
