"""Recognising YAML layouts by their keys: one fast parse of a file into plain values, tags left opaque."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

import yaml

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """Never constructs a ``!!python/...`` object: unknown tags load as None."""


_Loader.add_multi_constructor("", lambda loader, suffix, node: None)
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


class Unreadable(Exception):
    pass


@lru_cache(maxsize=4096)
def _load(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - the loader constructs standard tags only
    except yaml.YAMLError as exc:
        raise Unreadable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    except RecursionError:
        raise Unreadable("nested too deeply") from None


def top_mapping(text: str) -> Optional[dict]:
    """The file's top-level mapping, or None when it is some other YAML; raises Unreadable."""
    data = _load(text)
    return data if isinstance(data, dict) else None


def keys_of(value: Any) -> set:
    return set(value) if isinstance(value, dict) else set()
