"""Pydantic results of ``erf``. ``--json`` is ``ErfReport.model_dump_json()``; the models round-trip.

Positions and sizes are input pixels, per axis (h, w) — y before x. ``measured_span`` keeps a null on an axis
whose profile had fewer than two blobs.
"""

from __future__ import annotations

from typing import Literal, Optional

from atrous_advisor.report.base import ResultModel

IntPair = tuple[int, int]
FloatPair = tuple[float, float]
OptionalFloatPair = tuple[Optional[float], Optional[float]]


class AsppSite(ResultModel):
    """The ASPP head the prediction comes from (as detected by ``inspect``)."""

    name: str
    rates: list[IntPair]  # dilated 3×3 branches only
    stride: IntPair
    feature_map: IntPair


class Blobs(ResultModel):
    """Local maxima of the central column (``rows``: y positions) and central row (``cols``: x positions)."""

    rows: list[float]
    cols: list[float]


class Gaussian(ResultModel):
    centre: FloatPair  # (y, x) px
    centre_shift: FloatPair  # fitted centre − centre output pixel, px
    sigma: FloatPair  # (σy, σx) px of the fitted Gaussian
    method: Literal["curve_fit", "moments"]  # "moments" when the least-squares fit failed
    moment_sigma: FloatPair  # spread of the whole map (second central moments), px


class ErfMeasurement(ResultModel):
    """The ERF of one variant of the model (as built, or after rate surgery)."""

    name: Literal["current", "suggested"]
    rates: Optional[list[IntPair]]  # the ASPP's dilated rates in this variant; null without an ASPP
    predicted_span: Optional[IntPair]  # 2·n·r·s of the ASPP, px; null without one
    measured_span: OptionalFloatPair  # centre-to-centre distance of the outermost blobs, px
    span_ratio: OptionalFloatPair  # measured / predicted per axis; null where either is missing
    blobs: Blobs
    measured_extent: Optional[IntPair]  # bounding box size of the ERF above extent_threshold·max (0: non-zero)
    extent_box: Optional[tuple[int, int, int, int]]  # y0, x0, y1, x1 (inclusive)
    extent_threshold: float
    taps_outside_crop: int  # predicted star taps that read beyond the crop (zero padding)
    gaussian: Optional[Gaussian]
    npy: str


class ErfReport(ResultModel):
    model: str
    crop: IntPair
    device: str
    source: Literal["noise", "data"]
    data: Optional[str]
    weights: Optional[str]
    images: int
    batch_size: int
    seed: int
    seconds: float
    images_per_second: float
    output_size: IntPair
    centre: FloatPair  # the centre output pixel in input coordinates (y, x)
    star_centre: Optional[FloatPair]  # where the head's centre tap reads for it (bilinear upsampling convention)
    aspp: Optional[AsppSite]
    # The model as built; the same keys as ``ErfMeasurement`` ("current"), flat for scripts.
    predicted_span: Optional[IntPair]
    measured_span: OptionalFloatPair
    span_ratio: OptionalFloatPair
    measured_extent: Optional[IntPair]
    gaussian: Optional[Gaussian]
    current: ErfMeasurement
    suggested: Optional[ErfMeasurement]  # only with --compare
    png: str
    log_scale: bool
    warnings: list[str]
