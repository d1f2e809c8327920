"""The pre-flight check the framework integrations share: inspect the live model once, say what was found.

A verdict is one of:

* ``retune``  — a head's rates or pool scales do not fit the crop (the lines say which and the fix);
* ``ok``      — every head found fits the crop;
* ``no-head`` — no ASPP, PPM or dilated FCN head was found;
* ``unknown`` — the check could not see well enough to advise (the model did not copy or run on the meta
  device, or the graph could not be followed outside the heads' own branches). No advice is given and
  ``strict`` never stops a run on an unknown.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from atrous_advisor.errors import AdvisorError, RetuneRequired
from atrous_advisor.report.inspect_models import InspectReport

PREFIX = "atrous-advisor"


def _fmt(value) -> str:
    h, w = (None if v is None else round(v, 1) for v in value)
    if h is None or w is None:
        return "global"
    return f"{h:g}" if h == w else f"{h:g}×{w:g}"


@dataclass(frozen=True)
class Verdict:
    status: str  # "retune", "ok", "no-head" or "unknown"
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


def _outside_heads(report: InspectReport) -> dict[str, int]:
    """Unsupported ops not inside a head's own branches: the fields the heads rely on may be estimates."""
    branches = [b for head in report.aspp for b in head.branch_modules] + [b for head in report.ppm for b in head.branch_modules]
    counts: dict[str, int] = {}
    for op, where in report.unsupported_ops.items():
        for module, n in where.items():
            if not any(module == b or module.startswith(b + ".") for b in branches):
                counts[op] = counts.get(op, 0) + n
    return counts


def _consistent(head, crop: tuple[int, int]) -> bool:
    """The head's measured map times its stride lands on the crop (within one stride of padding/rounding)."""
    return all(
        s is not None and f is not None and abs(f * s - c) <= s
        for f, s, c in zip(head.feature_map, head.stride, crop)
    )


def verdict_of(report: InspectReport, label: str, seconds: float) -> Verdict:
    where = f"{PREFIX}: {label} at crop {_fmt(report.crop)}"
    took = f"check took {seconds:.1f} s"
    blind = _outside_heads(report)
    if blind:
        ops = ", ".join(f"{op} ({n}×)" for op, n in sorted(blind.items()))
        return Verdict("unknown", (
            f"{where}: unknown — the graph could not be followed through {ops}, so strides and fields are not "
            f"known; no advice given ({took})",
        ), seconds, report)
    heads = [("ASPP", h) for h in report.aspp] + [("PPM", h) for h in report.ppm] + [("dilated FCN", h) for h in report.fcn]
    lines, retune, unsure = [], 0, 0
    for kind, head in heads:
        kind = f"{kind} {head.name or '<root>'}"
        if not _consistent(head, report.crop):
            unsure += 1
            lines.append(
                f"  {kind}: unknown — its {_fmt(head.feature_map)} map at stride {_fmt(head.stride)} "
                f"does not match the {_fmt(report.crop)} crop; no advice given"
            )
        elif head.ok:
            lines.append(f"  {kind}: ok: {head.verdict}")
        else:
            retune += 1
            fix = getattr(head, "fix", None)
            lines.append(f"  {kind}: retune: {head.verdict}" + (f"; fix: {fix}" if fix else ""))
    facts = f"output stride {_fmt(report.output_stride)}, field {_fmt(report.receptive_field)} px"
    if retune:
        status, what = "retune", f"{retune} head{'s' if retune > 1 else ''} to retune"
    elif unsure:
        status, what = "unknown", f"{unsure} head{'s' if unsure > 1 else ''} could not be checked"
    elif heads:
        status, what = "ok", f"{len(heads)} head{'s fit' if len(heads) > 1 else ' fits'} the crop"
    else:
        status, what = "no-head", "no ASPP, PPM or dilated FCN head found"
    return Verdict(status, (f"{where}: {what} ({facts}; {took})", *lines), seconds, report)


def preflight(model: Any, crop: Optional[Sequence[int]], label: Optional[str] = None, *,
              share: Iterable[Any] = (), capture: str = "dispatch") -> Verdict:
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
        report = live.inspect_copy(live.meta_copy(inner, share=share), (crop[0], crop[1]), label, layers=False, prefer=capture)
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
        return shape[-2:] if len(shape) == 4 or (example and len(shape) == 3) else None
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
            assert first is not None  # checked just above
            return (int(first[-2]), int(first[-1]))
        values = list(batch)
    else:
        return None
    for value in values:
        found = crop_of_batch(value, example)
        if found:
            return found
    return None
