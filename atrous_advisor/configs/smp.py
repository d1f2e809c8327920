"""segmentation_models_pytorch ``config.json`` files written by ``save_pretrained`` (the model's init kwargs)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

from atrous_advisor.errors import ConfigError
from atrous_advisor.numbers import load_json
from atrous_advisor.configs.values import Loc, V

MODEL_CLASS_KEY = "_model_class"


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1)


def parse_smp(path: Path, text: Optional[str] = None) -> dict:
    """Top-level keys of the JSON object, each with the span of its value in the file."""
    try:
        if text is None:
            text = path.read_text(encoding="utf-8")
        data = load_json(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: unreadable JSON: {exc.msg}") from None
    except ValueError as exc:  # an integer past the cap, nesting past Python's stack
        raise ConfigError(f"{path}: unreadable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an smp config.json must be a JSON object")
    decoder = json.JSONDecoder()
    out: dict = {}
    # Only top-level keys matter; find each value's span by decoding from just after its key.
    depth, i = 0, 0
    key_re = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*')
    while i < len(text):
        ch = text[i]
        if ch == '"':
            match = key_re.match(text, i)
            if depth == 1 and match:
                key = json.loads(f'"{match.group(1)}"')
                start = match.end()
                value, end = decoder.raw_decode(text, start)
                (l0, c0), (l1, c1) = _position(text, start), _position(text, end)
                loc = Loc(path, l0, c0, l1, c1)
                out[key] = V(_wrap(value, loc), loc, loc)
                i = end
                continue
            _, end = decoder.raw_decode(text, i)  # skip a string (keys of nested objects, values)
            i = end
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        i += 1
    return out


def _wrap(value, loc: Loc):
    """Nested JSON values share their parent's span: smp configs are flat, the edits replace whole values."""
    if isinstance(value, list):
        return [V(_wrap(x, loc), loc, loc) for x in value]
    if isinstance(value, dict):
        return {k: V(_wrap(x, loc), loc, loc) for k, x in value.items()}
    return value


def looks_like_smp(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:65536]
    except OSError:
        return False
    return f'"{MODEL_CLASS_KEY}"' in head
