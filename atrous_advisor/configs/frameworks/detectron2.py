"""Detectron2 YAML configs (yacs ``CfgNode`` with ``_BASE_``): DeepLab and Panoptic-DeepLab projects."""

from __future__ import annotations

from pathlib import Path

from atrous_advisor.configs.detectron2 import Detectron2Loader
from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.frameworks import Framework, Skipped
from atrous_advisor.configs.frameworks._yaml import Unreadable, YamlEdits, keys_of, top_mapping
from atrous_advisor.configs.resolve_detectron2 import resolve_detectron2
from atrous_advisor.configs.values import Loc, canonical

# Keys of detectron2/config/defaults.py (and its projects) that other yacs projects do not use.
MODEL_KEYS = {
    "META_ARCHITECTURE", "RESNETS", "SEM_SEG_HEAD", "ROI_HEADS", "RPN", "FPN", "INS_EMBED_HEAD", "PANOPTIC_DEEPLAB",
    "KEYPOINT_ON", "LOAD_PROPOSALS", "ANCHOR_GENERATOR", "PROPOSAL_GENERATOR", "RETINANET", "ROI_BOX_HEAD",
    "ROI_MASK_HEAD", "MASK_FORMER",
}
SECTION_KEYS = {
    "SOLVER": {"IMS_PER_BATCH", "BASE_LR", "MAX_ITER", "LR_SCHEDULER_NAME", "CHECKPOINT_PERIOD", "WARMUP_ITERS"},
    "INPUT": {"MIN_SIZE_TRAIN", "MAX_SIZE_TRAIN", "MIN_SIZE_TEST", "CROP", "FORMAT"},
    "DATASETS": {"TRAIN", "TEST"},
    "DATALOADER": {"NUM_WORKERS", "FILTER_EMPTY_ANNOTATIONS", "SAMPLER_TRAIN"},
    "TEST": {"EVAL_PERIOD", "AUG", "DETECTIONS_PER_IMAGE"},
}


def is_detectron2(top: dict) -> bool:
    if "_BASE_" in top:
        return True
    model = top.get("MODEL")
    if keys_of(model) & MODEL_KEYS:
        return True
    if isinstance(model, dict) and keys_of(model.get("BACKBONE")) & {"NAME", "FREEZE_AT"}:  # `BACKBONE: resnet101` is not
        return True
    # A leaf that only changes the solver or the input: its sections must all be Detectron2's, with its keys.
    sections = [k for k in top if k in SECTION_KEYS]
    return bool(sections) and all(keys_of(top[k]) & SECTION_KEYS[k] for k in sections) and set(top) <= {
        *SECTION_KEYS, "MODEL", "OUTPUT_DIR", "VERSION", "SEED", "CUDNN_BENCHMARK", "VIS_PERIOD", "GLOBAL",
    }


class Detectron2(YamlEdits, Framework):
    name = "detectron2"
    label = "Detectron2"
    suffixes = (".yaml", ".yml")

    def __init__(self, overrides, settings) -> None:
        super().__init__(overrides, settings)
        self.loader = Detectron2Loader(overrides=dict(overrides))

    @classmethod
    def recognise(cls, path: Path, text: str, settings=None):
        try:
            top = top_mapping(text)
        except Unreadable:
            return False
        if top is None:
            return False
        if "Collections" in top or "Models" in top or "Import" in top:
            return Skipped("an MMSegmentation metafile (model index)")
        return is_detectron2(top)

    def bases(self, path: Path) -> list[Path]:
        return self.loader.parsed(path).bases

    def facts(self, path: Path) -> ConfigFacts:
        return resolve_detectron2(path, self.loader.load(path), Loc(canonical(path), 1, 0, 1, 0))
