"""PaddleSeg YAML configs: ``_base_`` chains merged as ``paddleseg/cvlibs/config.py`` does, with locations.

``merge_config_dicts``: mappings merge recursively, anything else replaces, and a mapping that says
``_inherited_: False`` replaces the base's mapping whole. Several bases are merged in order, each under
the result so far (the first base listed wins over the later ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from atrous_advisor.configs.chain import ChainLoader
from atrous_advisor.configs.detectron2 import YamlFile, parse_yaml
from atrous_advisor.configs.values import V, canonical
from atrous_advisor.errors import ConfigError

BASE_KEY = "_base_"
INHERIT_KEY = "_inherited_"


def _not_inherited(v: V) -> bool:
    flag = v.get(INHERIT_KEY)
    return flag is not None and flag.value is False


def merge(child: dict, base: dict) -> dict:
    out = dict(base)
    for key, value in child.items():
        if key in (BASE_KEY, INHERIT_KEY):
            continue
        if isinstance(value.value, dict) and _not_inherited(value):
            entries = {k: v for k, v in value.value.items() if k != INHERIT_KEY}
            out[key] = V(entries, value.loc, value.site, value.shape)
        elif isinstance(value.value, dict) and key in out and isinstance(out[key].value, dict):
            out[key] = V(merge(value.value, out[key].value), value.loc, value.site, value.shape)
        else:
            out[key] = value
    return out


def parse_paddleseg(path: Path, text: Optional[str] = None) -> YamlFile:
    parsed = parse_yaml(path, text)
    base = parsed.root.value.get(BASE_KEY)
    bases: list[Path] = []
    if base is not None:
        for item in base.value if isinstance(base.value, list) else [base]:
            if not isinstance(item.value, str):
                raise ConfigError(f"{item.loc.at()}: _base_ must be a path")
            bases.append(canonical(path.parent / item.value))
    parsed.bases = bases
    return parsed


class PaddleSegLoader(ChainLoader[YamlFile]):
    base_key = BASE_KEY

    def _parse(self, path: Path, text: Optional[str]) -> YamlFile:
        return parse_paddleseg(path, text)

    def _load(self, path: Path, stack: tuple[Path, ...]) -> dict:
        parsed = self.parsed(path)
        merged = {k: v for k, v in parsed.root.value.items() if k != BASE_KEY}
        for base in parsed.bases:
            merged = merge(merged, self.load(self.base_file(path, base), stack))
        return merged
