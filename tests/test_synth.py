"""The synthetic dataset: layout, determinism, labels given by a distant cue, refusal to overwrite."""

import json

import numpy as np
import pytest
from PIL import Image

from atrous_advisor.errors import InputError
from atrous_advisor.train.synth import MANIFEST, PALETTE, SynthSpec, write_dataset


def test_layout_and_manifest(tmp_path):
    spec = SynthSpec(size=64, train=4, val=2, classes=5, seed=3)
    manifest = write_dataset(tmp_path / "data", spec)
    root = tmp_path / "data"
    for split, count in (("train", 4), ("val", 2)):
        images = sorted(p.name for p in (root / split / "images").iterdir())
        masks = sorted(p.name for p in (root / split / "masks").iterdir())
        assert images == masks and len(images) == count
    image = Image.open(root / "train/images/0000.png")
    mask = Image.open(root / "train/masks/0000.png")
    assert image.mode == "RGB" and image.size == (64, 64)
    assert mask.mode == "L" and mask.size == (64, 64)
    assert json.loads((root / MANIFEST).read_text()) == manifest
    assert len(manifest["files"]) == 12


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    write_dataset(tmp_path / "a", SynthSpec(seed=7, train=3, val=1))
    write_dataset(tmp_path / "b", SynthSpec(seed=7, train=3, val=1))
    write_dataset(tmp_path / "c", SynthSpec(seed=8, train=3, val=1))
    read = lambda root: np.asarray(Image.open(root / "train/images/0002.png"))  # noqa: E731
    assert np.array_equal(read(tmp_path / "a"), read(tmp_path / "b"))
    assert not np.array_equal(read(tmp_path / "a"), read(tmp_path / "c"))


def test_each_object_is_labelled_by_the_colour_of_its_nearest_cue(tmp_path):
    """The class is not in the object's pixels (all objects are the same grey) but in a cue far away."""
    spec = SynthSpec(size=64, train=12, val=1, classes=5, seed=0)
    write_dataset(tmp_path, spec)
    low, high = spec.cue_distance
    checked = 0
    for stem in range(spec.train):
        image = np.asarray(Image.open(tmp_path / f"train/images/{stem:04d}.png")).astype(int)
        mask = np.asarray(Image.open(tmp_path / f"train/masks/{stem:04d}.png"))
        cues = []  # (centre, class) for every palette-coloured pixel block
        for label, colour in enumerate(PALETTE[: spec.classes - 1], start=1):
            ys, xs = np.nonzero((image == colour).all(axis=-1))
            if ys.size:
                cues.append(((ys.mean(), xs.mean()), label, ys.size))
        objects = {}
        for label in range(1, spec.classes):
            ys, xs = np.nonzero(mask == label)
            if ys.size:
                objects[label] = (ys.mean(), xs.mean())
        for label, centre in objects.items():
            if next(c[2] for c in cues if c[1] == label) != spec.cue_side ** 2:
                continue  # two objects of one class: the centres above would mix them
            distances = [np.hypot(centre[0] - c[0][0], centre[1] - c[0][1]) for c in cues]
            nearest = cues[int(np.argmin(distances))]
            assert nearest[1] == label
            assert low - 2 <= min(distances) <= high + 2
            checked += 1
        assert set(np.unique(mask)) <= set(range(spec.classes))
    assert checked >= spec.train  # at least one object per image on average was checked


def test_refuses_non_empty_folder_unless_forced_and_keeps_user_files(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty.*--force"):
        write_dataset(root, SynthSpec(train=2, val=1))
    write_dataset(root, SynthSpec(train=3, val=1), force=True)
    write_dataset(root, SynthSpec(train=2, val=1), force=True)  # an earlier synth run's extra files go
    assert (root / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (root / "train/images").iterdir()) == ["0000.png", "0001.png"]


@pytest.mark.parametrize(
    "spec, message",
    [(SynthSpec(size=16), "--size 16"), (SynthSpec(size=100_000), "--size 100000: at most 2048"),
     (SynthSpec(classes=1), "--classes 1"), (SynthSpec(train=0), "--train 0")],
)
def test_bad_spec(tmp_path, spec, message):
    with pytest.raises(InputError, match=message):
        write_dataset(tmp_path / "d", spec)
    assert not (tmp_path / "d").exists()  # refused before anything is written


def _snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("mine, why", [
    ("train/images/0000.png", "was not written by synth (it is not in its synth.json)"),
    ("synth.json", "was not written by synth: nothing written"),
])
def test_force_never_replaces_a_users_file_with_a_colliding_name(run_cli, tmp_path, mine, why):
    root = tmp_path / "data"
    (root / mine).parent.mkdir(parents=True, exist_ok=True)
    (root / mine).write_bytes(b"the user's own file")
    before = _snapshot(root)
    result = run_cli("synth", str(root), "--train", "2", "--val", "1", "--force")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and why in result.stderr
    assert _snapshot(root) == before  # nothing written


def test_force_replaces_its_own_files_but_not_ones_changed_since(tmp_path):
    root = tmp_path / "data"
    manifest = write_dataset(root, SynthSpec(train=3, val=1))
    assert set(manifest["sha256"]) == set(manifest["files"])
    write_dataset(root, SynthSpec(train=3, val=1, seed=1), force=True)  # proved its own: replaced
    edited = root / "train/masks/0001.png"
    edited.write_bytes(edited.read_bytes() + b"\0")  # the user touched up a mask
    before = _snapshot(root)
    with pytest.raises(InputError, match="0001.png was changed since synth wrote it: nothing written"):
        write_dataset(root, SynthSpec(train=2, val=1), force=True)
    assert _snapshot(root) == before


def test_force_after_an_interrupted_run(tmp_path):
    """A run killed half-way left its first manifest (names, no hashes): --force may replace those names."""
    root = tmp_path / "data"
    manifest = write_dataset(root, SynthSpec(train=3, val=1))
    interrupted = {k: v for k, v in manifest.items() if k != "sha256"} | {"complete": False}
    (root / MANIFEST).write_text(json.dumps(interrupted))
    (root / "val/images/0000.png").unlink()
    write_dataset(root, SynthSpec(train=3, val=1), force=True)
    assert json.loads((root / MANIFEST).read_text()) == manifest  # same seed: the same files, hashes and all


def test_cue_range_and_objects_options(tmp_path):
    """--cue-far 0.5: cues out to half the image; every placed distance inside the range, and recorded."""
    spec = SynthSpec(size=96, train=20, val=2, classes=3, seed=4, cue_near=0.2, cue_far=0.5, objects=4)
    manifest = write_dataset(tmp_path / "wide", spec)
    placed = manifest["cue_distance_placed"]
    assert manifest["cue_distance"] == [0.2 * 96, 0.5 * 96] and manifest["objects"] == 4
    assert 0.2 * 96 <= placed["min"] <= placed["median"] <= placed["max"] <= 0.5 * 96
    assert placed["q75"] > 0.35 * 96  # the long distances are not rejected away
    assert placed["objects"] > spec.train + spec.val  # more than one object per image on average


@pytest.mark.parametrize("field, value", [("cue_near", 0.0), ("cue_far", 0.9), ("cue_near", 0.6), ("objects", 0)])
def test_bad_cue_options_are_refused(tmp_path, field, value):
    with pytest.raises(InputError):
        write_dataset(tmp_path / "x", SynthSpec(**{field: value}))


def test_cli_cue_options(run_cli, tmp_path):
    done = run_cli("synth", str(tmp_path / "ok"), "--size", "64", "--train", "2", "--val", "1", "--cue-far", "0.5", "--objects", "3")
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "ok" / MANIFEST).read_text())["cue_far"] == 0.5
    refused = run_cli("synth", str(tmp_path / "no"), "--cue-far", "0.9")
    assert refused.exit_code == 2 and "--cue-far 0.9" in refused.stderr and "Traceback" not in refused.output
    assert not (tmp_path / "no").exists()
