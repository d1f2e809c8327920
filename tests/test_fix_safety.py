"""`lint --fix` never loses what the user owns: kill -9 mid-write, a write failure (RLIMIT_FSIZE), a concurrent
edit, symlinks into `_base_/`, permissions — and YAML edits that are right for every scalar and mapping style."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "configs"

# A complete MMSegmentation config whose rates are wrong at crop 512, stride 8: --fix writes (1, 10, 20, 30).
MMSEG = """crop_size = (512, 512)
model = dict(
    type='EncoderDecoder',
    backbone=dict(type='ResNetV1c', depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),
    decode_head=dict(type='ASPPHead', in_channels=2048, dilations=(1, 12, 24, 36), num_classes=19),
)
train_pipeline = [dict(type='RandomCrop', crop_size=crop_size)]
train_dataloader = dict(dataset=dict(type='ADE20KDataset', pipeline=train_pipeline))
"""
FIXED = "dilations=(1, 10, 20, 30)"


def padded(lines: int) -> str:
    return MMSEG + "".join(f"# padding line {i:08d}: a config this long takes a moment to write\n" for i in range(lines))


def cli(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "atrous_advisor", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, **kwargs)


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".atrous-tmp" in p.name)


# --------------------------------------------------------------------------------------------- faults


def test_kill_9_mid_write_leaves_the_old_or_the_new_file_byte_for_byte(tmp_path):
    old = padded(50_000).encode()  # 3.4 MB
    new = old.replace(b"dilations=(1, 12, 24, 36)", FIXED.encode())  # what a run that is not killed writes

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    left_behind = []
    for attempt in range(6):  # until a kill lands during a write (the window is a few ms on a loaded machine)
        folder = tmp_path / f"kill{attempt}"
        folder.mkdir()
        config = folder / "cfg.py"
        config.write_bytes(old)
        process = subprocess.Popen([sys.executable, "-m", "atrous_advisor", "lint", "--fix", "cfg.py"], cwd=folder,
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill once the new content is being written: its temp file beside the config has appeared.
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline and not temp_files(folder):
            pass
        process.send_signal(signal.SIGKILL)
        process.wait()
        content = config.read_bytes()
        assert content in (old, new), f"kill {attempt}: {len(content)} bytes, neither the old nor the new file"
        if temp_files(folder):
            left_behind.append(folder)
            break
    assert left_behind, "no kill landed during a write: the test proved nothing"
    # The next run finishes the job and removes the temp file the killed one left.
    done = cli("lint", "--fix", "cfg.py", cwd=left_behind[0])
    assert done.returncode == 0, done.stderr
    assert (left_behind[0] / "cfg.py").read_bytes() == new and temp_files(left_behind[0]) == []


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


def test_a_failed_write_leaves_the_file_byte_identical_exit_2_one_line(tmp_path):
    config = tmp_path / "cfg.py"
    config.write_text(padded(450))  # ~31 KB: the 16 KB file-size limit stops the write half-way
    before = config.read_bytes()
    assert len(before) > 30_000
    done = cli("lint", "--fix", "cfg.py", cwd=tmp_path, preexec_fn=_limit_file_size)
    assert done.returncode == 2, done.stderr
    assert config.read_bytes() == before
    assert done.stderr.splitlines() == ["cfg.py: not fixed: writing failed (File too large); the file is unchanged"]
    assert temp_files(tmp_path) == []


def test_a_file_edited_after_it_was_read_is_not_overwritten(run_cli, tmp_path, monkeypatch):
    from atrous_advisor.configs import engine

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "cfg.py"
    config.write_text(MMSEG)
    theirs = MMSEG + "# saved by the user's editor while lint was running\n"
    compute_fixes = engine.compute_fixes

    def edit_meanwhile(*args, **kwargs):
        fixes = compute_fixes(*args, **kwargs)  # the file has been read and its fix computed ...
        config.write_text(theirs)  # ... and now the user saves it
        return fixes

    monkeypatch.setattr(engine, "compute_fixes", edit_meanwhile)
    result = run_cli("lint", "--fix", "cfg.py")
    assert result.exit_code == 1
    assert "cfg.py: not fixed: the file changed since it was read; run again" in result.stderr
    assert config.read_text() == theirs
    monkeypatch.setattr(engine, "compute_fixes", compute_fixes)
    assert run_cli("lint", "--fix", "cfg.py").exit_code == 0  # run again: fixed, their edit kept
    assert FIXED in config.read_text() and config.read_text().endswith("while lint was running\n")


def test_a_symlinked_leaf_stays_a_link_and_keeps_its_permissions(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "cfg.py"
    target.write_text(MMSEG)
    target.chmod(0o640)
    (tmp_path / "link.py").symlink_to("real/cfg.py")
    assert run_cli("lint", "--fix", "link.py").exit_code == 0
    assert (tmp_path / "link.py").is_symlink() and os.readlink(tmp_path / "link.py") == "real/cfg.py"
    assert FIXED in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert temp_files(tmp_path / "real") == []


@pytest.fixture
def shared_base(tmp_path, monkeypatch):
    """configs/_base_/shared.py (a whole config), inherited by configs/a/other.py; configs/a/leaf.py links to it."""
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "configs" / "_base_" / "shared.py"
    base.parent.mkdir(parents=True)
    base.write_text(MMSEG)
    (tmp_path / "configs" / "a").mkdir()
    (tmp_path / "configs" / "a" / "other.py").write_text("_base_ = ['../_base_/shared.py']\n")
    (tmp_path / "configs" / "a" / "leaf.py").symlink_to("../_base_/shared.py")
    return base


def test_a_leaf_that_is_a_symlink_into_base_is_not_written(run_cli, shared_base):
    result = run_cli("lint", "--fix", "configs/a/leaf.py")
    assert result.exit_code == 1
    assert ("configs/a/leaf.py: not fixed: it is inherited by 1 config; use --fix-inherited to change it for all "
            "of them") in result.stderr
    assert shared_base.read_text() == MMSEG
    # --diff shows what --fix-inherited would write
    assert f"+    decode_head=dict(type='ASPPHead', in_channels=2048, {FIXED}" in run_cli(
        "lint", "--diff", "configs/a/leaf.py").stdout

    forced = run_cli("lint", "--fix", "--fix-inherited", "configs/a/leaf.py")
    assert forced.exit_code == 0, forced.stderr
    assert FIXED in shared_base.read_text() and (shared_base.parent.parent / "a" / "leaf.py").is_symlink()


# --------------------------------------------------------------------------------------------- YAML

HEAD = "_BASE_: Base-DeepLabV3-OS16-Semantic.yaml\n"
CROP = "INPUT:\n  CROP:\n    SIZE: (256, 256)\n"
# Base-DeepLabV3-OS16-Semantic.yaml: ASPP (6, 12, 18) at stride 16; at crop 256 the fix is (2, 4, 6).
YAML_CASES = {
    "block scalar ends the head": HEAD + "MODEL:\n  SEM_SEG_HEAD:\n    NAME: DeepLabV3Head\n    NOTE: |\n"
                                  "      kept\n      as is\n\n  RESNETS:\n    DEPTH: 50\n" + CROP,
    "folded scalar ends the head": HEAD + "MODEL:\n  SEM_SEG_HEAD:\n    NOTE: >\n      folded\n      text\n"
                                   "  RESNETS:\n    DEPTH: 50\n" + CROP,
    "keep-chomped scalar at the end of the file": HEAD + CROP + "MODEL:\n  SEM_SEG_HEAD:\n    NOTE: |+\n      kept\n\n",
    "flow mapping": HEAD + "MODEL: {SEM_SEG_HEAD: {NAME: DeepLabV3Head}, RESNETS: {DEPTH: 50}}  # flow\n" + CROP,
    "comments": HEAD + "MODEL:  # the model\n  SEM_SEG_HEAD:\n    NAME: DeepLabV3Head  # head\n  # between\n"
                "  RESNETS:\n    DEPTH: 50\n" + CROP,
    "block sequence replaced": HEAD + "MODEL:\n  SEM_SEG_HEAD:\n    ASPP_DILATIONS:\n    - 6\n    - 12\n    - 18\n"
                               "    NAME: DeepLabV3Head\n" + CROP,
    "alias replaced at its use": HEAD + "rates: &rates [6, 12, 18]\nother: *rates\nMODEL:\n  SEM_SEG_HEAD:\n"
                                 "    ASPP_DILATIONS: *rates\n" + CROP,
    "merge key overridden": HEAD + "defaults: &head\n  ASPP_DILATIONS: [12, 24, 36]\n  NAME: DeepLabV3Head\n"
                            "MODEL:\n  SEM_SEG_HEAD:\n    <<: *head\n    NUM_CLASSES: 19\n" + CROP,
    "CRLF and a BOM": "\ufeff" + (HEAD + "MODEL:\n  SEM_SEG_HEAD:\n    NOTE: >\n      folded\n  RESNETS:\n"
                                  "    DEPTH: 50\n" + CROP).replace("\n", "\r\n"),
}


@pytest.fixture
def deeplab_folder(tmp_path, monkeypatch):
    root = tmp_path / "detectron2"
    shutil.copytree(FIXTURES / "detectron2", root)
    monkeypatch.chdir(root)
    return root / "projects/DeepLab/configs/Cityscapes-SemanticSegmentation"


@pytest.mark.parametrize("case", list(YAML_CASES))
def test_yaml_fixes_land_in_the_right_mapping_and_change_nothing_else(run_cli, deeplab_folder, case):
    leaf = deeplab_folder / "leaf.yaml"
    text = YAML_CASES[case]
    leaf.write_bytes(text.encode())
    result = run_cli("lint", "--fix", str(leaf))
    assert result.exit_code == 0, result.stdout + result.stderr
    fixed = leaf.read_bytes().decode()
    before, after = yaml.safe_load(text.lstrip("\ufeff")), yaml.safe_load(fixed.lstrip("\ufeff"))
    assert after["MODEL"]["SEM_SEG_HEAD"]["ASPP_DILATIONS"] == [2, 4, 6]
    after["MODEL"]["SEM_SEG_HEAD"].pop("ASPP_DILATIONS")
    before["MODEL"]["SEM_SEG_HEAD"].pop("ASPP_DILATIONS", None)
    assert after == before  # every other value, block scalars included, is what it was
    assert fixed.startswith("\ufeff") == text.startswith("\ufeff")
    assert fixed.count("\n") == fixed.count("\r\n") if "\r\n" in text else "\r" not in fixed
    # and the finding is gone for good: a second run changes nothing
    again = run_cli("lint", "--fix", str(leaf))
    assert again.exit_code == 0 and leaf.read_bytes().decode() == fixed


def test_a_value_shared_through_an_anchor_is_not_edited_in_place(run_cli, deeplab_folder):
    leaf = deeplab_folder / "leaf.yaml"
    text = HEAD + "head: &head\n  ASPP_DILATIONS: [6, 12, 18]\nMODEL:\n  SEM_SEG_HEAD: *head\n" + CROP
    leaf.write_text(text)
    result = run_cli("lint", "--fix", str(leaf))
    assert result.exit_code == 1 and leaf.read_text() == text
    assert "not fixed: AA101: `MODEL.SEM_SEG_HEAD`" not in result.stderr
    assert "shared through the YAML anchor *head; edit it by hand" in result.stderr


def test_an_edit_that_would_not_take_is_refused_not_written(run_cli, deeplab_folder, monkeypatch):
    """Should an edit ever land in the wrong place, the re-lint catches it and nothing is written."""
    from atrous_advisor.configs import fixes

    leaf = deeplab_folder / "leaf.yaml"
    text = YAML_CASES["comments"]
    leaf.write_text(text)
    real = fixes.edits_for

    def misplaced(framework, target, value, path, source):  # the old bug: the key lands under RESNETS
        line = source.splitlines().index("    DEPTH: 50") + 1
        return [fixes.Edit((line, 13), (line, 13), "\n    ASPP_DILATIONS: [2, 4, 6]")]

    monkeypatch.setattr(fixes, "edits_for", misplaced)
    result = run_cli("lint", "--fix", str(leaf))
    assert result.exit_code == 1 and leaf.read_text() == text
    assert "the edit did not take (the finding remains)" in result.stderr

    def unparsable(framework, target, value, path, source):
        return [fixes.Edit((3, 0), (3, 0), "  ]broken\n")]

    monkeypatch.setattr(fixes, "edits_for", unparsable)
    result = run_cli("lint", "--fix", str(leaf))
    assert result.exit_code == 1 and leaf.read_text() == text
    assert "the edit would leave the file unreadable (at line" in result.stderr
    monkeypatch.setattr(fixes, "edits_for", real)
