"""PSPNet pyramid pooling: how big each adaptive-pooling cell is at a crop, and which scales to keep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

from atrous_advisor.errors import InputError
from atrous_advisor.geometry.axes import pair
from atrous_advisor.geometry.rates import feature_map

DEFAULT_SCALES = (1, 2, 3, 6)
DEFAULT_MIN_CELL = 120
"""Smallest useful cell (px): below it the finest bins summarise less than a typical object."""


@dataclass(frozen=True)
class CellInfo:
    scale: int
    cell_features: tuple[float, float]  # F / scale per axis
    cell_pixels: tuple[float, float]  # F·s / scale per axis
    below_min_cell: bool
    redundant: bool  # scale > F: adaptive pooling repeats input positions across bins


@dataclass(frozen=True)
class PPMAnalysis:
    crop: tuple[int, int]
    stride: tuple[int, int]
    feature_map: tuple[int, int]
    min_cell: int
    cells: list[CellInfo]
    suggested_scales: tuple[int, ...]


def suggest_scales(
    scales: Sequence[int], crop: Union[int, tuple[int, int]], min_cell: int = DEFAULT_MIN_CELL,
    fmap: Union[None, tuple[int, int]] = None,
) -> tuple[int, ...]:
    """Cap every scale at floor(min(crop) / min_cell) (and at F), drop duplicates, always keep scale 1.

    Larger scales make smaller cells, so capping the scale is what keeps the finest cell above min_cell.
    Where that cap is 1 (crops below 2·min_cell) the min-cell rule would cut the pyramid down to global
    pooling alone, which measured clearly worse than PSPNet's (1, 2, 3, 6) at 80 and 112 px crops
    (docs/validate.md, "PPM"): then only the hard limit applies, scales above F (:func:`collapses_to_global`).
    """
    crop = pair(crop)
    cap = min(crop) // min_cell
    if cap < 2:
        cap = min(fmap) if fmap is not None else max(scales)
    elif fmap is not None:
        cap = min(cap, min(fmap))
    kept = sorted({1, *(min(s, max(1, cap)) for s in scales)})
    return tuple(kept)


def collapses_to_global(crop: Union[int, tuple[int, int]], min_cell: int = DEFAULT_MIN_CELL) -> bool:
    """Whether the min-cell rule would leave only scale 1 at this crop (so it is not applied)."""
    return min(pair(crop)) // min_cell < 2


def analyse_ppm(
    crop: Union[int, tuple[int, int]],
    stride: Union[int, tuple[int, int]],
    scales: Sequence[int] = DEFAULT_SCALES,
    min_cell: int = DEFAULT_MIN_CELL,
    fmap: Union[None, tuple[int, int]] = None,
) -> PPMAnalysis:
    """Cell sizes of adaptive pooling at ``scales`` on the feature map of ``crop`` at ``stride``.

    ``fmap`` overrides F = ceil(L / s) with a measured feature map (``inspect`` knows the real one).
    """
    if not scales:
        raise InputError("scales: at least one pool scale is needed")
    for s in scales:
        if not isinstance(s, int) or isinstance(s, bool) or s <= 0:
            raise InputError(f"scales {tuple(scales)!r}: {s!r} is not a positive integer")
    if not isinstance(min_cell, int) or min_cell <= 0:
        raise InputError(f"min-cell {min_cell!r}: must be a positive integer")
    crop, stride = pair(crop), pair(stride)
    fh, fw = fmap if fmap is not None else feature_map(crop, stride)
    cells = []
    for scale in scales:
        feats = (fh / scale, fw / scale)
        pixels = (feats[0] * stride[0], feats[1] * stride[1])
        cells.append(
            CellInfo(
                scale=scale,
                cell_features=feats,
                cell_pixels=pixels,
                below_min_cell=min(pixels) < min_cell,
                redundant=scale > fh or scale > fw,
            )
        )
    return PPMAnalysis(
        crop=crop,
        stride=stride,
        feature_map=(fh, fw),
        min_cell=min_cell,
        cells=cells,
        suggested_scales=suggest_scales(scales, crop, min_cell, (fh, fw)),
    )
