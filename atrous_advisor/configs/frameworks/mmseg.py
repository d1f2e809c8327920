"""MMSegmentation / mmengine ``_base_ = [...]`` Python configs (0.x and 1.x zoos, SegFormer, Swin)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Union

from atrous_advisor.configs.facts import ConfigFacts, Target
from atrous_advisor.configs.frameworks import Framework, Skipped
from atrous_advisor.configs.mmseg import MMSegLoader
from atrous_advisor.configs.resolve_mmseg import resolve_mmseg
from atrous_advisor.configs.values import DictShape, Loc, canonical

# Detectron2's LazyConfigs are Python too: `model = L(GeneralizedRCNN)(...)`, `from detectron2.config import LazyCall`.
_LAZY = re.compile(r"\bLazyCall\b|^\s*(?:from|import)\s+detectron2\b", re.M)
_BASE = re.compile(r"^_base_\s*=", re.M)
# Keys every mmengine/mmcv training config (or base) sets at the top level.
_CONFIG_KEYS = re.compile(
    r"^(?:model|train_dataloader|data|train_pipeline|crop_size|norm_cfg|optimizer|optim_wrapper|runner|train_cfg|"
    r"default_scope|log_config|dataset_type|data_root|checkpoint_config|evaluation|param_scheduler|lr_config|"
    r"default_hooks|env_cfg|test_pipeline|val_dataloader)\s*=",
    re.M,
)
_MODULE = re.compile(r"^(?:async\s+def|def|class)\s|^if\s+__name__\s*==", re.M)


def classify_python(text: str) -> Union[str, Skipped]:
    """"lazy", "config" or a Skipped for a Python file (new-style configs are claimed before this runs)."""
    if _LAZY.search(text):
        return Skipped("a Detectron2 LazyConfig (Python); atrous-advisor reads Detectron2's YAML configs")
    if _BASE.search(text):
        return "config"
    if _CONFIG_KEYS.search(text) and not _MODULE.search(text):
        return "config"
    if _MODULE.search(text) or re.search(r"^(?:import|from)\s", text, re.M):
        return Skipped("an ordinary Python module")
    return Skipped("a Python file that sets none of a config's keys (_base_, model, data, train_dataloader, …)")


class MMSeg(Framework):
    name = "mmseg"
    label = "MMSegmentation"
    suffixes = (".py",)

    def __init__(self, overrides, settings) -> None:
        super().__init__(overrides, settings)
        self.loader = MMSegLoader(overrides=dict(overrides))

    @classmethod
    def recognise(cls, path: Path, text: str, settings=None):
        kind = classify_python(text)
        return True if kind == "config" else kind

    def bases(self, path: Path) -> list[Path]:
        return self.loader.parsed(path).bases

    def facts(self, path: Path) -> ConfigFacts:
        return resolve_mmseg(path, self.loader.load(path), Loc(canonical(path), 1, 0, 1, 0))

    @classmethod
    def insert_edits(cls, shape: DictShape, rest, rendered, lines):
        from atrous_advisor.configs.fixes import python_entry, python_insert

        return python_insert(shape, lines, python_entry(rest, rendered, shape.style))

    @classmethod
    def append_edits(cls, target: Target, rendered: str, lines: list[str]):
        from atrous_advisor.configs.fixes import append_at_end, python_entry

        keys = target.keys
        if len(keys) > 1:  # mmengine merges `model = dict(decode_head=dict(...))` into the base's model
            statement = f"{keys[0]} = dict({python_entry(keys[1:], rendered, 'call')})"
        else:
            statement = f"{keys[0]} = {rendered}"
        return append_at_end(lines, statement)
