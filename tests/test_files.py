"""atomic_path: results replace the old file in one step, and a failed write leaves the old file alone."""

from __future__ import annotations

import os

import pytest

from atrous_advisor.files import atomic_path


def test_success_replaces_and_keeps_the_suffix(tmp_path):
    target = tmp_path / "sub" / "erf.png"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["erf.png"]


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_fsync_and_a_dead_writers_temp_file_is_recognised(tmp_path):
    import subprocess
    import sys

    from atrous_advisor.files import remove_stale_temp_files

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = [tmp_path / f".cfg.py.atrous-tmp{pid}", tmp_path / f".results.atrous-tmp{pid}.json"]
    live = tmp_path / f".cfg.py.atrous-tmp{os.getpid()}"  # this process is still writing it
    # not this tool's temp names, however alike: the user's own files
    mine = [tmp_path / f".cfg.py.tmp{pid}", tmp_path / "notes.atrous-tmp1", tmp_path / ".hidden", tmp_path / "cfg.py"]
    for p in stale + [live] + mine:
        p.write_text("x")
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [live] + mine)


def test_replace_contents_checks_the_hash_and_keeps_a_changed_file(tmp_path):
    from atrous_advisor.files import FileChangedError, replace_contents, sha256

    target = tmp_path / "cfg.py"
    target.write_bytes(b"theirs")
    with pytest.raises(FileChangedError):
        replace_contents(target, b"ours", expected_sha256=sha256(b"what we read"))
    assert target.read_bytes() == b"theirs" and [p.name for p in tmp_path.iterdir()] == ["cfg.py"]
    replace_contents(target, b"ours", expected_sha256=sha256(b"theirs"))
    assert target.read_bytes() == b"ours"
