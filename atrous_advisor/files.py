"""Writing results without ever leaving a half-written file where the user's old one was."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union


@contextmanager
def atomic_path(path: Union[str, "os.PathLike[str]"]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step, on failure it goes.

    The temporary name keeps the suffix, so writers that infer the format from it (matplotlib) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
