"""Agreement with mmengine: the static reader resolves the fixture trees exactly as
``mmengine.config.Config.fromfile`` does (which runs them), and so finds the same crop, dilations and scales.
Skipped where mmengine is not installed; never imported by atrous-advisor itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atrous_advisor.configs.engine import lint_paths, walk
from atrous_advisor.configs.mmseg import MMSegLoader
from atrous_advisor.configs.settings import Settings
from atrous_advisor.configs.values import plain

Config = pytest.importorskip("mmengine.config").Config

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
# The computed-crop config builds its crop with a comprehension: mmengine runs it, we report AA001 instead.
COMPUTED = FIXTURES / "mmseg1x/misc/deeplabv3_r50-d8_computed-crop_ade20k.py"
LEAVES = [p for tree in ("mmseg1x", "mmseg0x") for p in walk(FIXTURES / tree) if p != COMPUTED]


def _kind(component: dict) -> str:
    """The class name of a component: `type` is a registry name, or `module.Class` in new-style configs."""
    return str(component.get("type")).rsplit(".", 1)[-1]


def _train_datasets(cfg: dict) -> list[dict]:
    root = cfg["train_dataloader"]["dataset"] if "train_dataloader" in cfg else cfg["data"]["train"]
    stack, out = [root], []
    while stack:
        ds = stack.pop(0)
        if _kind(ds) == "ConcatDataset":
            stack.extend(ds["datasets"])
        elif "dataset" in ds:
            stack.append(ds["dataset"])
        else:
            out.append(ds)
    return out


def _mmengine_geometry(cfg: dict):
    crops = [step["crop_size"] for ds in _train_datasets(cfg) for step in ds["pipeline"] if _kind(step) == "RandomCrop"]
    head = cfg["model"]["decode_head"]
    dilations = head.get("dilations")
    scales = head.get("pool_scales", head.get("filter_sizes"))  # DMHead calls its pooling scales filter_sizes
    return tuple(crops[0]), (tuple(d for d in dilations if d != 1) if dilations else None), scales


@pytest.mark.parametrize("leaf", LEAVES, ids=lambda p: p.name)
def test_static_resolution_equals_mmengine(leaf):
    theirs = Config.fromfile(str(leaf)).to_dict()
    assert plain(MMSegLoader().load(leaf)) == theirs
    crop, rates, scales = _mmengine_geometry(theirs)
    (result,) = [r for r in lint_paths([leaf], Settings()).results if r.path == leaf]
    facts = result.facts
    assert facts.crop == crop
    assert (facts.aspp.rates if facts.aspp else None) == rates
    assert (facts.ppm.scales if facts.ppm else None) == scales


def test_what_mmengine_computes_by_running_code_is_reported_not_guessed():
    assert _mmengine_geometry(Config.fromfile(str(COMPUTED)).to_dict())[0] == (512, 128)
    (result,) = lint_paths([COMPUTED], Settings()).results
    assert result.facts.crop is None
    # AA001 where the crop is computed; AA002 on the (base's) head line that could not be checked
    assert sorted((d.code, d.loc.path.name, d.loc.line) for d in result.diagnostics) == [
        ("AA001", COMPUTED.name, 6), ("AA002", "deeplabv3_r50-d8.py", 30)]


def test_engine_mmengine_crosscheck_agrees_on_the_fixtures(run_cli, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    result = run_cli("lint", "--engine", "mmengine", "mmseg1x/deeplabv3", "mmseg0x")
    assert result.exit_code == 1 and "disagree" not in result.stderr  # findings, and no disagreement


# Random base/child pairs: literals, nested dicts, _delete_ — merged by both loaders.
_keys = st.sampled_from(["a", "b", "c", "type", "crop_size"])
_scalars = st.one_of(st.integers(-5, 5), st.sampled_from(["x", "y"]), st.none(), st.booleans())
_values = st.recursive(
    st.one_of(_scalars, st.tuples(st.integers(1, 9), st.integers(1, 9))),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=8,
)
_top = st.dictionaries(st.sampled_from(["model", "data", "crop_size", "norm"]), _values, min_size=1, max_size=3)


def _with_delete(child: dict, flags: list) -> dict:
    out = {}
    for i, (k, v) in enumerate(child.items()):
        if isinstance(v, dict) and flags and flags[i % len(flags)]:
            v = {"_delete_": True, **v}
        out[k] = v
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=_top, child=_top, flags=st.lists(st.booleans(), max_size=3))
def test_merge_semantics_match_mmengine(tmp_path_factory, base, child, flags):
    folder = tmp_path_factory.mktemp("merge")
    (folder / "base.py").write_text("".join(f"{k} = {v!r}\n" for k, v in base.items()))
    child = _with_delete(child, flags)
    (folder / "child.py").write_text("_base_ = './base.py'\n" + "".join(f"{k} = {v!r}\n" for k, v in child.items()))
    try:
        theirs = Config.fromfile(str(folder / "child.py")).to_dict()
    except TypeError:  # mmengine refuses a dict over a non-dict without _delete_; so must we
        with pytest.raises(Exception, match="_delete_"):
            MMSegLoader().load(folder / "child.py")
        return
    assert plain(MMSegLoader().load(folder / "child.py")) == theirs


NEW_STYLE = sorted((FIXTURES / "mmseg_new/configs").rglob("*.py"))


@pytest.mark.parametrize("path", NEW_STYLE, ids=lambda p: p.name)
def test_new_style_static_namespace_equals_mmengine(path):
    """mmengine loads new-style configs lazily (no mmseg needed): imported classes are `module.Class` strings."""
    from atrous_advisor.configs.mmseg_new import NewStyleLoader, config_of

    theirs = Config.fromfile(str(path)).to_dict()
    assert plain(config_of(NewStyleLoader().load(path.resolve()))) == theirs
    if "train_dataloader" in theirs and "model" in theirs:
        crop, rates, _ = _mmengine_geometry(theirs)
        (result,) = [r for r in lint_paths([path], Settings()).results if r.path == path]
        assert result.facts.crop == crop and result.facts.aspp.rates == rates
