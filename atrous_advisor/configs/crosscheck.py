"""``lint --engine mmengine``: cross-check the static reader against mmengine, which RUNS the config code.

Opt-in and only where mmengine is installed; never imported by a plain ``lint``. For every MMSegmentation
config, ``mmengine.config.Config.fromfile`` loads it and the crop, ASPP rates and pool scales found in its dict
are compared with the static facts. A disagreement is reported as an error (exit 2): it means the static reader
resolved the file differently from the framework, and its findings for that file cannot be trusted.
"""

from __future__ import annotations

from typing import Any, Optional

from atrous_advisor.configs.engine import ConfigResult, LintError
from atrous_advisor.errors import InputError


def _datasets(ds: Any) -> list:
    if isinstance(ds, (list, tuple)):
        return [d for item in ds for d in _datasets(item)]
    if not isinstance(ds, dict):
        return []
    kind = str(ds.get("type", "")).rsplit(".", 1)[-1]
    if kind == "ConcatDataset":
        return _datasets(ds.get("datasets"))
    if "dataset" in ds:
        return _datasets(ds["dataset"])
    return [ds]


def _crop(cfg: dict) -> Optional[tuple[int, int]]:
    root = cfg.get("train_dataloader", {}).get("dataset") if "train_dataloader" in cfg else cfg.get("data", {}).get("train")
    for ds in _datasets(root):
        for step in ds.get("pipeline") or []:
            if isinstance(step, dict) and str(step.get("type", "")).rsplit(".", 1)[-1] == "RandomCrop":
                size = step.get("crop_size")
                return (size, size) if isinstance(size, int) else (size[0], size[1]) if size is not None else None
    return None


def _head(cfg: dict) -> dict:
    head = cfg.get("model", {}).get("decode_head", {})
    return head[0] if isinstance(head, (list, tuple)) and head else head if isinstance(head, dict) else {}


def crosscheck(results: list[ConfigResult]) -> list[LintError]:
    try:
        from mmengine.config import Config
    except ImportError:
        raise InputError("--engine mmengine: mmengine is not installed (pip install mmengine-lite)") from None
    errors = []
    for result in results:
        if result.framework not in ("mmseg", "mmseg_new") or result.facts is None:
            continue
        try:
            cfg = Config.fromfile(str(result.path)).to_dict()
        except Exception as exc:  # whatever the config code raises when mmengine runs it
            errors.append(LintError(result.path, f"{result.path}: mmengine could not load it: {exc}"))
            continue
        facts, head = result.facts, _head(cfg)
        dilations = head.get("dilations") if facts.aspp else None
        theirs = {
            "crop": _crop(cfg),
            "ASPP rates": tuple(tuple(d) if isinstance(d, list) else d for d in dilations if d != 1) if dilations else None,
            "pool scales": tuple(head[facts.ppm.key]) if facts.ppm and facts.ppm.key in head else None,
        }
        ours = {
            "crop": facts.crop if facts.crop_source == "RandomCrop.crop_size" else None,
            "ASPP rates": facts.aspp.rates if facts.aspp and not facts.aspp.is_default else None,
            "pool scales": facts.ppm.scales if facts.ppm and not facts.ppm.is_default else None,
        }
        for key in theirs:
            if theirs[key] == ours[key]:
                continue
            if ours[key] is None:
                message = f"the {key} is {theirs[key]} for mmengine (which runs the config) but not resolved statically"
            else:
                message = f"the static reader and mmengine disagree on the {key}: {ours[key]} vs {theirs[key]}"
            errors.append(LintError(result.path, f"{result.path}: {message}"))
    return errors
