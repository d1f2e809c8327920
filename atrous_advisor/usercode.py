"""The one guard around the user's model code: it may print, it may even exit, but it never owns our exit code.

While model code is imported, built or run (``inspect``, ``validate``, ``erf``):

- what it prints goes to stderr, so ``--json`` on stdout stays valid JSON (Python's ``sys.stdout`` and, where
  the process has one, file descriptor 1: output from C extensions or child processes moves too);
- ``sys.exit(...)`` or any other ``BaseException`` it raises becomes a ``ModelLoadError``: one line, exit 2.
  Without this a model file calling ``sys.exit(0)`` made the command exit 0 with no output.
- ``KeyboardInterrupt`` passes through unchanged: Ctrl-C is the user's, and the CLI exits 130 for it.

Ordinary exceptions also pass through: the callers already turn them into errors that say what failed
(import, build, forward at this crop).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager, redirect_stdout
from typing import Iterator, Optional

from atrous_advisor.errors import ModelLoadError


@contextmanager
def _stdout_fd_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr for the duration; a no-op where there are no real descriptors."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        try:
            sys.stdout.flush()
        except (OSError, ValueError):  # pragma: no cover - a closed stream
            pass
        os.dup2(saved, 1)
        os.close(saved)


@contextmanager
def user_code(model: Optional[str] = None) -> Iterator[None]:
    """Run the block as the user's model code (see the module docstring). Also usable as ``@user_code()``.

    ``model`` (the spec as the user typed it) names the model in the error line.
    """
    try:
        with _stdout_fd_to_stderr(), redirect_stdout(sys.stderr):
            yield
    except (Exception, KeyboardInterrupt):
        raise
    except BaseException as exc:  # SystemExit, GeneratorExit, a user's own BaseException subclass
        from atrous_advisor.graph.loading import _compact  # one format for errors in user code

        owner = f"model {model!r}" if model else "model"
        raise ModelLoadError(
            f"{owner}: its code raised {_compact(exc)}; model code must raise an exception, not end the process"
        ) from None
