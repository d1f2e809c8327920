"""The static readers: what the ast evaluator resolves (and where), mmengine's per-file namespaces and merge
rules, opaque values that are never run, Detectron2 YAML with unknown tags, smp config.json."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from atrous_advisor.configs.detectron2 import Detectron2Loader, lookup
from atrous_advisor.configs.mmseg import MMSegLoader
from atrous_advisor.configs.smp import parse_smp
from atrous_advisor.configs.values import Opaque, plain
from atrous_advisor.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures" / "configs"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(path: Path) -> dict:
    return MMSegLoader().load(path)


def test_literals_names_arithmetic_and_locations(tmp_path):
    path = write(tmp_path, "cfg.py", """
        base = 6
        crop_size = (512, 256 * 2)
        rates = (1, base * 2, base * 4, base * 6)
        model = dict(decode_head=dict(dilations=rates, scales=[1, 2] + [3, 6]), **dict(extra=-1))
        """)
    cfg = load(path)
    assert plain(cfg["crop_size"]) == (512, 512)
    assert plain(cfg["model"]) == {"decode_head": {"dilations": (1, 12, 24, 36), "scales": [1, 2, 3, 6]}, "extra": -1}
    rates = cfg["model"].value["decode_head"].value["dilations"]
    # The origin is the tuple on line 3; the site is the name `rates` inside model = dict(...) on line 4.
    assert (rates.loc.line, rates.loc.col) == (3, 8)
    assert (rates.site.line, rates.site.col) == (4, 40)
    assert [(x.loc.line, x.loc.col) for x in rates.value][1] == (3, 12)


def test_base_placeholder_and_attribute_references(tmp_path):
    write(tmp_path, "base.py", """
        crop_size = (640, 640)
        model = dict(decode_head=dict(num_classes=19))
        """)
    child = write(tmp_path, "child.py", """
        _base_ = './base.py'
        crop = {{_base_.crop_size}}
        classes = _base_.model.decode_head.num_classes * 2
        """)
    cfg = load(child)
    assert plain(cfg["crop"]) == (640, 640)
    assert cfg["crop"].loc.path.name == "base.py"  # the value was set in the base
    assert plain(cfg["classes"]) == 38
    # The placeholder is rewritten in place: columns after it stay where they are in the file.
    assert (cfg["crop"].site.line, cfg["crop"].site.col, cfg["crop"].site.end_col) == (2, 7, 27)


def test_each_file_has_its_own_namespace_the_crop_binding_trap():
    leaf = FIXTURES / "mmseg1x/deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-256x256.py"
    cfg = load(leaf)
    assert plain(cfg["crop_size"]) == (256, 256)
    pipeline = cfg["train_dataloader"].value["dataset"].value["pipeline"]
    crop = next(step for step in plain(pipeline) if step["type"] == "RandomCrop")["crop_size"]
    assert crop == (512, 1024)


def test_base_names_are_not_visible_as_bare_names(tmp_path):
    write(tmp_path, "base.py", "crop_size = (512, 512)\n")
    child = write(tmp_path, "child.py", "_base_ = './base.py'\npipeline = [dict(type='RandomCrop', crop_size=crop_size)]\n")
    crop = load(child)["pipeline"].value[0].value["crop_size"]
    assert isinstance(crop.value, Opaque) and "not bound earlier" in crop.value.reason


def test_recursive_merge_and_delete(tmp_path):
    write(tmp_path, "base.py", "model = dict(head=dict(type='ASPPHead', dilations=(1, 12, 24, 36), num_classes=19))\n")
    merged = write(tmp_path, "merged.py", "_base_ = './base.py'\nmodel = dict(head=dict(num_classes=150))\n")
    replaced = write(tmp_path, "replaced.py", "_base_ = './base.py'\nmodel = dict(head=dict(_delete_=True, type='PSPHead'))\n")
    assert plain(load(merged)["model"]) == {"head": {"type": "ASPPHead", "dilations": (1, 12, 24, 36), "num_classes": 150}}
    assert plain(load(replaced)["model"]) == {"head": {"type": "PSPHead"}}


def test_list_of_bases_with_duplicate_keys_is_an_error(tmp_path):
    write(tmp_path, "a.py", "x = 1\n")
    write(tmp_path, "b.py", "x = 2\n")
    child = write(tmp_path, "child.py", "_base_ = ['./a.py', './b.py']\n")
    with pytest.raises(ConfigError, match="same keys"):
        load(child)


def test_malicious_config_is_read_but_never_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = write(tmp_path, "evil.py", f"""
        __import__('os').system('touch {marker}')
        crop_size = __import__('os').system('touch {marker}')
        exec("open('{marker}', 'w').close()")
        train_pipeline = [dict(type='RandomCrop', crop_size=crop_size)]
        if True:
            model = dict(decode_head=dict(dilations=(1, 6, 12, 18)))
        """)
    cfg = load(evil)
    assert not marker.exists()
    assert isinstance(cfg["crop_size"].value, Opaque)
    assert isinstance(cfg["model"].value, Opaque)  # bound inside an `if`: not evaluated, not left stale


def test_huge_sequence_arithmetic_is_refused(tmp_path):
    path = write(tmp_path, "big.py", "x = [0] * 10 ** 9\ny = 2 ** 100000\n")
    cfg = load(path)
    assert isinstance(cfg["x"].value, Opaque) and isinstance(cfg["y"].value, Opaque)


@pytest.mark.parametrize(
    ("name", "message"),
    [("syntax_error.py", "syntax error"), ("missing_base.py", "not found"), ("cyclic_a.py", "cyclic _base_")],
)
def test_broken_files_raise_config_error_naming_the_file(name, message):
    with pytest.raises(ConfigError, match=message) as info:
        load(FIXTURES / "broken" / name)
    assert name in str(info.value)


def test_detectron2_base_chain_and_opaque_eval_tag(tmp_path):
    leaf = FIXTURES / "detectron2/projects/DeepLab/configs/Cityscapes-SemanticSegmentation/deeplab_v3_R_103_os16_mg124_poly_90k_bs16_512x512.yaml"
    cfg = Detectron2Loader().load(leaf)
    assert plain(lookup(cfg, "MODEL.SEM_SEG_HEAD.ASPP_DILATIONS")) == [6, 12, 18]
    assert plain(lookup(cfg, "MODEL.RESNETS.RES5_DILATION")) == 2  # from Base-RCNN-DilatedC5.yaml, three levels up
    assert lookup(cfg, "MODEL.RESNETS.RES5_DILATION").loc.path.name == "Base-RCNN-DilatedC5.yaml"
    min_size = lookup(cfg, "INPUT.MIN_SIZE_TRAIN")
    assert isinstance(min_size.value, Opaque) and "python/object/apply:eval" in min_size.value.reason


def test_detectron2_unreadable_yaml_names_the_file():
    with pytest.raises(ConfigError, match=r"bad_detectron2\.yaml:\d+:\d+: unreadable YAML"):
        Detectron2Loader().load(FIXTURES / "broken/bad_detectron2.yaml")


def test_smp_config_json_values_with_spans():
    cfg = parse_smp(FIXTURES / "smp/deeplabv3_resnet34/config.json")
    rates = cfg["decoder_atrous_rates"]
    assert plain(rates) == [12, 24, 36]
    assert (rates.loc.line, rates.loc.end_line) == (8, 12)
    assert plain(cfg["_model_class"]) == "DeepLabV3"


def test_null_bytes_and_deep_nesting_are_config_errors(tmp_path):
    nul = tmp_path / "nul.py"
    nul.write_bytes(b"crop_size = (512, 512)\x00\n")
    with pytest.raises(ConfigError, match="nul.py"):
        load(nul)
    deep = write(tmp_path, "deep.py", "x = " + "[" * 200 + "]" * 200 + "\n")
    assert plain(load(deep)["x"])  # deep but legal: evaluated


def test_opaque_tag_loader_never_constructs_python_objects(tmp_path):
    import yaml

    from atrous_advisor.configs.detectron2 import OpaqueTagLoader

    marker = tmp_path / "pwned"
    text = f"A: !!python/object/apply:os.system ['touch {marker}']\nB: !custom 3\nC: [1, 2]\n"
    data = yaml.load(text, Loader=OpaqueTagLoader)  # noqa: S506 - a SafeLoader subclass
    assert isinstance(data["A"], Opaque) and isinstance(data["B"], Opaque) and data["C"] == [1, 2]
    assert not marker.exists()


def test_a_method_call_that_may_change_a_name_makes_it_opaque_not_stale(tmp_path):
    """mmengine runs `pipeline[0].update(...)`; the static reader does not, so it must not keep the old value."""
    path = write(tmp_path, "cfg.py", """
        train_pipeline = [dict(type='RandomCrop', crop_size=(512, 512))]
        train_pipeline[0].update(crop_size=(256, 256))
        head = dict(type='ASPPHead', dilations=(1, 12, 24, 36))
        rates = head.pop('dilations')
        kept = dict(a=1)
        model = dict(decode_head=dict(dilations=(1, 6, 12, 18)))
        del model['decode_head']['dilations']
        crop = (256, 256)
        size = (crop := (128, 128))
        """)
    cfg = load(path)
    assert isinstance(cfg["train_pipeline"].value, Opaque) and "update" in cfg["train_pipeline"].value.reason
    assert isinstance(cfg["head"].value, Opaque) and isinstance(cfg["rates"].value, Opaque)
    assert plain(cfg["kept"]) == {"a": 1}  # names no call touches keep their values
    assert isinstance(cfg["model"].value, Opaque) and "del" in cfg["model"].value.reason
    assert isinstance(cfg["crop"].value, Opaque)  # rebound by `:=`, not left at (256, 256)


def test_a_yaml_alias_bomb_is_a_config_error_not_a_hang(tmp_path):
    lines = ["MODEL:", "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10**9 values expanded
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="aliases are expanded"):
        Detectron2Loader().load(path)


def test_sequences_built_by_concatenation_or_unpacking_are_bounded(tmp_path):
    """`x = x + x` or `[*x, *x]` repeated doubles each line: past the cap the value is opaque, not built."""
    path = write(tmp_path, "big.py", "x = [0] * 6000\ny = x + x\nz = [*x, *x]\nok = x + [1]\n")
    cfg = load(path)
    assert isinstance(cfg["y"].value, Opaque) and isinstance(cfg["z"].value, Opaque)
    assert len(cfg["ok"].value) == 6001


def test_a_new_style_read_base_config_is_refused_not_passed_as_empty(tmp_path):
    path = write(tmp_path, "new_style.py", """
        from mmengine.config import read_base

        with read_base():
            from ._base_.models.deeplabv3_r50_d8 import *

        model.update(dict(decode_head=dict(num_classes=19)))
        """)
    with pytest.raises(ConfigError, match="read_base"):
        load(path)
