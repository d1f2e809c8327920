"""Writing files without ever leaving a half-written one where the user's old one was.

Every write goes to a temporary file in the same folder, is flushed to disk (fsync) and then renamed over
the old file in one step: a kill, a full disk or a power loss leaves the old content or the new, never a mix.
The temporary names are ``.NAME.atrous-tmpPID[.SUFFIX]``, so a temp file left by a killed process can be
recognised (this tool's marker, and its PID no longer runs) and removed by :func:`remove_stale_temp_files`
without ever taking a file of the user's for one.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

TEMP_MARK = ".atrous-tmp"
_TEMP = re.compile(r"^\.(?P<name>.+)\.atrous-tmp(?P<pid>\d+)(?P<suffix>\.[^.]*)?$")


class FileChangedError(Exception):
    """The file is no longer what was read: someone else wrote it in the meantime."""


@lru_cache(maxsize=4096)
def _normalised(absolute: str) -> Path:
    return Path(os.path.normpath(absolute))


def canonical(path: "os.PathLike[str] | str") -> Path:
    """The absolute, normalised path used as a cache key (like mmengine's ``osp.abspath``; no syscalls)."""
    text = os.fspath(path)
    return _normalised(text if os.path.isabs(text) else os.path.join(os.getcwd(), text))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable: the new directory entry is on disk, not only the file's data."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - a folder we cannot open (Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is synced and replaces ``path`` in one step, on
    failure it goes.

    The temporary name keeps the suffix, so writers that infer the format from it (matplotlib) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}{TEMP_MARK}{os.getpid()}{path.suffix}")
    try:
        yield tmp
        _fsync_file(tmp)  # data on disk before the rename: a power loss must not leave an empty new file
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def replace_contents(path: PathLike, data: bytes, expected_sha256: Optional[str] = None) -> Path:
    """Replace the contents of the existing file ``path`` with ``data``, atomically; return the file written.

    A symlink stays a symlink: the file it points to is replaced. The file's permission bits (and owner and
    group, where we may set them) are kept. With ``expected_sha256`` the file is read again just before the
    rename, and :class:`FileChangedError` is raised, with nothing written, if it is no longer that content.
    Any failure (``OSError``: disk full, file size limit, permissions) leaves the file as it was.
    """
    target = Path(os.path.realpath(path))
    before = os.stat(target)
    tmp = target.with_name(f".{target.name}{TEMP_MARK}{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, stat.S_IMODE(before.st_mode))
        if hasattr(os, "chown") and (before.st_uid, before.st_gid) != (os.getuid(), os.getgid()):
            try:
                os.chown(tmp, before.st_uid, before.st_gid)
            except PermissionError:  # another user's file in a folder we may write: it becomes ours
                pass
        if expected_sha256 is not None and sha256(target.read_bytes()) != expected_sha256:
            raise FileChangedError(f"{path} changed since it was read")
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temp_files(folder: PathLike, recursive: bool = False) -> list[Path]:
    """Remove the temp files of writes whose process is gone (killed mid-write); return what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    pattern = f".*{TEMP_MARK}*"
    for candidate in folder.rglob(pattern) if recursive else folder.glob(pattern):
        match = _TEMP.match(candidate.name)
        if match is None or not candidate.is_file() or candidate.is_symlink():
            continue
        if int(match["pid"]) == os.getpid() or _running(int(match["pid"])):
            continue
        try:
            candidate.unlink()
        except OSError:
            continue
        removed.append(candidate)
    return removed


class FolderLockedError(Exception):
    """Another process holds the folder's lock; ``pid`` is what it wrote in the lock file ("" if unknown)."""

    def __init__(self, folder: Path, pid: str) -> None:
        super().__init__(f"{folder} is locked by process {pid or '(unknown)'}")
        self.folder, self.pid = folder, pid


@contextmanager
def folder_lock(folder: PathLike, name: str, wait: bool = False,
                on_wait: Optional[Callable[[str], None]] = None) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if missing) while the block runs.

    The lock is ``flock`` on the file ``folder/name``, which holds the owner's PID: the kernel releases it
    when the owner exits, however it exits (kill -9 included), so a lock is never stale. Held by another
    process: :class:`FolderLockedError`, or with ``wait`` block until it is free (``on_wait(pid)`` is called
    first). Where ``fcntl`` does not exist (Windows), or the filesystem has no ``flock``, nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
            if not wait:
                raise FolderLockedError(folder, holder) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a filesystem without flock (some FUSE mounts): go on unlocked rather than not at all
            yield
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_writable(folder: Union[str, "os.PathLike[str]"], what: str) -> None:
    """Fail before any work when results could not be written to ``folder`` (created if missing).

    A training run or a measurement that ends in "cannot write" after an hour is lost work; so the folder
    is made and a probe file written and removed up front. ``what`` names the option in the message.
    """
    from atrous_advisor.errors import InputError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".atrous-advisor-probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{what} {folder}: cannot write there: {exc.strerror or exc}") from None
