"""PaddleSeg YAML configs (``_base_``, ``_inherited_``, ``model: {type: DeepLabV3P, ...}``)."""

from __future__ import annotations

from pathlib import Path

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.frameworks import Framework
from atrous_advisor.configs.frameworks._yaml import Unreadable, YamlEdits, top_mapping
from atrous_advisor.configs.paddleseg import PaddleSegLoader
from atrous_advisor.configs.resolve_paddleseg import resolve_paddleseg
from atrous_advisor.configs.values import Loc, canonical

# Top-level keys of PaddleSeg's Config (paddleseg/cvlibs/config.py).
KEYS = {"batch_size", "iters", "train_dataset", "val_dataset", "test_dataset", "optimizer", "lr_scheduler", "loss",
        "model", "export", "test_config", "distill_loss", "to_static_training"}


def is_paddleseg(top: dict) -> bool:
    base = top.get("_base_")
    if isinstance(base, str) and base.endswith((".yml", ".yaml")):
        return True
    if isinstance(base, list) and base and all(isinstance(b, str) and b.endswith((".yml", ".yaml")) for b in base):
        return True
    model = top.get("model")
    if isinstance(model, dict) and "type" in model and ({"iters", "batch_size", "train_dataset"} & set(top)):
        return True
    own = set(top) & KEYS
    return {"train_dataset", "val_dataset"} & own != set() and len(own) >= 2


class PaddleSeg(YamlEdits, Framework):
    name = "paddleseg"
    label = "PaddleSeg"
    suffixes = (".yml", ".yaml")

    def __init__(self, overrides, settings) -> None:
        super().__init__(overrides, settings)
        self.loader = PaddleSegLoader(overrides=dict(overrides))

    @classmethod
    def recognise(cls, path: Path, text: str, settings=None):
        try:
            top = top_mapping(text)
        except Unreadable:
            return False
        return top is not None and is_paddleseg(top)

    def bases(self, path: Path) -> list[Path]:
        return self.loader.parsed(path).bases

    def facts(self, path: Path) -> ConfigFacts:
        return resolve_paddleseg(path, self.loader.load(path), Loc(canonical(path), 1, 0, 1, 0))
