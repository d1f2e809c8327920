"""The pre-flight check the framework integrations share: inspect the live model once, say what was found.

A verdict is one of:

* ``retune``  — a head's rates or pool scales do not fit the crop (the lines say which and the fix);
* ``ok``      — every head found fits the crop;
* ``no-head`` — no ASPP, PPM or dilated FCN head was found;
* ``unknown`` — the check could not see well enough to advise: the model did not copy or run on the meta
  device, no crop was found, ``inspect`` could not assess a head (its input's layout or stride is not
  known), or it could not follow the graph to the output and found no head before that point. No advice is
  given and ``strict`` never stops a run on an unknown.

Which heads are assessed, and why one is not, is ``inspect``'s decision (``InspectReport.unassessed``,
``InspectReport.unknown``); this module only words it for a training log.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

from atrous_advisor.errors import AdvisorError, InputError, RetuneRequired
from atrous_advisor.geometry import parse_crop
from atrous_advisor.report.inspect_models import InspectReport

PREFIX = "atrous-advisor"
CropLike = Union[int, str, Sequence[int]]
Status = Literal["retune", "ok", "no-head", "unknown"]


def as_crop(crop: Optional[CropLike]) -> Optional[tuple[int, int]]:
    """A crop argument (``512``, ``(512, 1024)``, ``[512, 1024]``, ``"512x1024"``) as (h, w); None stays None."""
    if crop is None:
        return None
    if isinstance(crop, (int, str)):
        return parse_crop(crop)
    if len(crop) != 2:
        raise InputError(f"crop {crop!r}: expected 512, (512, 1024) or '512x1024'")
    return parse_crop((int(crop[0]), int(crop[1])))


def check_capture(capture: Optional[str]) -> Optional[str]:
    """A bad ``capture`` is an error when the hook is built, not an "unknown" at the start of training."""
    if capture is not None and capture not in ("dispatch", "export"):
        raise InputError(f"capture {capture!r}: expected 'dispatch' or 'export'")
    return capture


def _fmt(value) -> str:
    if value is None:
        return "unknown"
    h, w = (None if v is None else round(v, 1) for v in value)
    if h is None or w is None:
        return "global"
    return f"{h:g}" if h == w else f"{h:g}×{w:g}"


@dataclass(frozen=True)
class Verdict:
    status: Status
    lines: tuple[str, ...]  # a headline, then one line per head
    seconds: float  # wall time of the check
    report: Optional[InspectReport] = None

    @property
    def message(self) -> str:
        return "\n".join(self.lines)

    @property
    def problem(self) -> bool:
        """Worth a warning rather than an info line."""
        return self.status in ("retune", "unknown")


def verdict_of(report: InspectReport, label: str, seconds: float) -> Verdict:
    """Summarise ``inspect``'s report. Advice comes only from the heads it assessed; a head it could not
    assess, or an output whose field it could not follow, is "unknown" with its reason."""
    where = f"{PREFIX}: {label} at crop {_fmt(report.crop)}"
    took = f"check took {seconds:.1f} s"
    lines, retune, ok = [], 0, 0
    for kind, assessed in (("ASPP", report.aspp), ("PPM", report.ppm), ("dilated FCN", report.fcn)):
        for head in assessed:
            name = f"{kind} {head.name or '<root>'}"
            if head.ok:
                ok += 1
                lines.append(f"  {name}: ok: {head.verdict}")
            else:
                retune += 1
                fix = getattr(head, "fix", None)
                lines.append(f"  {name}: retune: {head.verdict}" + (f"; fix: {fix}" if fix else ""))
    kinds = {"aspp": "ASPP", "ppm": "PPM", "fcn": "dilated FCN"}
    for unassessed in report.unassessed:
        name = f"{kinds.get(unassessed.kind, unassessed.kind)} {unassessed.name or '<root>'}"
        lines.append(f"  {name}: unknown — {unassessed.reason}; no advice given")
    unsure = len(report.unassessed)
    if report.unknown:
        facts = report.unknown
    else:
        facts = f"output stride {_fmt(report.output_stride)}, field {_fmt(report.receptive_field)} px"
    status: Status
    if retune:
        status, what = "retune", f"{retune} head{'s' if retune > 1 else ''} to retune"
    elif unsure:
        status, what = "unknown", f"{unsure} head{'s' if unsure > 1 else ''} could not be checked; no advice given"
    elif ok:
        status, what = "ok", f"{ok} head{'s fit' if ok > 1 else ' fits'} the crop"
    elif report.unknown:  # a head hidden past the point the graph was lost would not have been found
        status, what = "unknown", "no head found, but the graph was not followed to the output; no advice given"
    else:
        status, what = "no-head", "no ASPP, PPM or dilated FCN head found"
    return Verdict(status, (f"{where}: {what} ({facts}; {took})", *lines), seconds, report)


def preflight(model: Any, crop: Optional[Sequence[int]], label: Optional[str] = None, *,
              share: Iterable[Any] = (), capture: Optional[str] = None) -> Verdict:
    """Inspect ``model`` (live, possibly wrapped) at ``crop`` on a meta copy. Never raises for a model it
    cannot read: that is an ``unknown`` verdict naming the reason."""
    from atrous_advisor import live

    inner = live.unwrap(model)
    label = label or type(inner).__name__
    if crop is None:
        return Verdict("unknown", (
            f"{PREFIX}: {label}: unknown — no crop: give crop=... (no crop in the pipeline or batch was found)",
        ), 0.0)
    start = time.perf_counter()
    try:
        pair = (int(crop[0]), int(crop[1]))
        options = {} if capture is None else {"prefer": capture}  # None: the CLI's default capture
        report = live.inspect_copy(live.meta_copy(inner, share=share), pair, label, layers=False, **options)
    except AdvisorError as exc:
        reason = str(exc)
    except Exception as exc:  # a model this tool cannot read must not stop the user's training
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    else:
        return verdict_of(report, label, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    return Verdict("unknown", (
        f"{PREFIX}: {label} at crop {_fmt(tuple(crop))}: unknown — could not inspect the model: {reason}; "
        f"no advice given (check took {seconds:.1f} s)",
    ), seconds)


def enforce(verdict: Verdict, strict: bool) -> None:
    """With ``strict``, a head to retune stops the run (before its first step) with the verdict as message."""
    if strict and verdict.status == "retune":
        raise RetuneRequired(verdict.message + f"\n{PREFIX}: strict=True: stopping before the first training step")


_IMAGE_KEYS = ("pixel_values", "image", "images", "img", "inputs", "x")


def _shape(value: Any) -> Optional[tuple[int, ...]]:
    """The shape of a tensor or array (torch, numpy), else None."""
    shape = getattr(value, "shape", None)
    return tuple(int(n) for n in shape) if isinstance(shape, Sequence) else None


def crop_of_batch(batch: Any, example: bool = False) -> Optional[tuple[int, int]]:
    """(H, W) of the images in a batch: an N×C×H×W tensor, the first one in a tuple/list, or a dict's
    ``pixel_values``/``image``/``img``/``inputs`` entry (else its first 4-D tensor). A list of C×H×W tensors
    (mmengine's ``inputs``) gives the first one's size; with ``example`` (one dataset item, not a batch) a
    C×H×W tensor is an image too. None when no image is found."""
    shape = _shape(batch)
    if shape is not None:
        return (shape[-2], shape[-1]) if len(shape) == 4 or (example and len(shape) == 3) else None
    if isinstance(batch, Mapping):
        for key in _IMAGE_KEYS:
            if key in batch:
                found = crop_of_batch(batch[key], example)
                if found:
                    return found
        values = list(batch.values())
    elif isinstance(batch, (list, tuple)):
        shapes = [_shape(t) for t in batch]
        if batch and all(s is not None and len(s) == 3 for s in shapes):
            first = shapes[0]
            assert first is not None
            return first[-2], first[-1]
        values = list(batch)
    else:
        return None
    for value in values:
        found = crop_of_batch(value, example)
        if found:
            return found
    return None
