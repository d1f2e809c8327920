"""Values the user supplies where a config carries none: the crop and the output stride.

Three places, most specific first — a comment in the linted file, then ``--crop``/``--stride``, then
``crop``/``stride`` in ``[tool.atrous-advisor]``::

    # atrous-advisor: crop=512x1024 stride=16

They only fill in what the config does not carry (a crop its pipeline really uses always wins), and the
facts remember where each supplied value came from.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Optional

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.settings import Settings
from atrous_advisor.configs.values import Loc
from atrous_advisor.errors import ConfigError, InputError
from atrous_advisor.numbers import STRIDE, parse_int

_COMMENT = re.compile(r"#\s*atrous-advisor:(?!\s*noqa\b)\s*(?P<body>.*)$", re.I)
_PAIR = re.compile(r"(?P<key>[a-z_-]+)\s*=\s*(?P<value>[^\s,]+)")
STRIDES = (1, 2, 4, 8, 16, 32, 64)


def parse_stride(text: str, where: str) -> int:
    try:
        value = parse_int(text, "stride", STRIDE)  # ASCII digits only; 5,000 digits are refused, not converted
    except InputError:
        value = 0
    if value not in STRIDES:
        raise ConfigError(f"{where}: stride {text!r}: expected one of {', '.join(map(str, STRIDES))}")
    return value


@dataclasses.dataclass(frozen=True)
class FileValues:
    crop: Optional[tuple[int, int]] = None
    stride: Optional[int] = None
    loc: Optional[Loc] = None


def file_values(path: Path, lines: list[str]) -> FileValues:
    """The ``# atrous-advisor: crop=… stride=…`` comment of a linted file; raises ConfigError on a bad value."""
    from atrous_advisor.geometry import parse_crop

    crop = stride = loc = None
    for number, line in enumerate(lines, 1):
        if "atrous-advisor" not in line:
            continue
        match = _COMMENT.search(line)
        if match is None:
            continue
        where = f"{path}:{number}"
        pairs = list(_PAIR.finditer(match.group("body")))
        if not pairs:
            raise ConfigError(f"{where}: `# atrous-advisor:` expects crop=512x1024 and/or stride=16, or noqa")
        for pair in pairs:
            key, value = pair.group("key").lower(), pair.group("value")
            if key == "crop":
                try:
                    crop = parse_crop(value)
                except InputError:
                    raise ConfigError(f"{where}: crop {value!r}: expected 512 or 512x1024 (height x width)") from None
            elif key == "stride":
                stride = parse_stride(value, where)
            else:
                raise ConfigError(f"{where}: unknown key {key!r} in `# atrous-advisor:` (crop, stride)")
        loc = Loc(path, number, match.start(), number, len(line.rstrip("\r\n")))
    return FileValues(crop, stride, loc)


def supply(facts: ConfigFacts, own: FileValues, settings: Settings) -> None:
    """Fill the crop and the heads' stride where the config carries none, most specific source first."""
    crop_from = "this file's `# atrous-advisor:` comment" if own.crop else settings.crop_from
    crop = own.crop or settings.crop
    if facts.crop is None and crop is not None:
        facts.crop, facts.crop_source = crop, "supplied"
        facts.crop_loc = own.loc if own.crop else None
        facts.supplied["crop"] = crop_from
    stride_from = "this file's `# atrous-advisor:` comment" if own.stride else settings.stride_from
    stride = own.stride or settings.stride
    if stride is None:
        return
    used = False
    if facts.aspp is not None and facts.aspp.stride is None:
        facts.aspp = dataclasses.replace(facts.aspp, stride=stride, stride_loc=own.loc or facts.aspp.loc)
        used = True
    for i, head in enumerate(facts.extra_aspp):
        if head.stride is None:
            facts.extra_aspp[i] = dataclasses.replace(head, stride=stride, stride_loc=own.loc or head.loc)
            used = True
    if facts.ppm is not None and facts.ppm.stride is None:
        facts.ppm = dataclasses.replace(facts.ppm, stride=stride, stride_loc=own.loc or facts.ppm.loc)
        used = True
    if used:
        facts.supplied["stride"] = stride_from
        if facts.output_stride is None:
            facts.output_stride = stride
