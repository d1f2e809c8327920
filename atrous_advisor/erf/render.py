"""The ERF heatmaps: one or more panels with the crop drawn and the predicted taps overlaid (matplotlib)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from atrous_advisor.erf.star import FloatPair, StarMeasurement, StarPrediction
from atrous_advisor.files import atomic_path
from atrous_advisor.report import format as fmt
from atrous_advisor.report.erf_models import ErfMeasurement

# --------------------------------------------------------------------------------------------------------------
# Rendering


@dataclass
class ErfPanel:
    """One heatmap of a figure: the map, where its centre is, and (optionally) the analytic star."""

    erf: np.ndarray
    title: str
    centre: FloatPair
    star: Optional[StarPrediction] = None
    measured: Optional[StarMeasurement] = None
    notes: list[str] = field(default_factory=list)


def render_erf_png(panels: Sequence[ErfPanel], path: Path, log: bool = False, dpi: int = 110) -> Path:
    """Write the panels side by side: heatmap inside the drawn crop, predicted taps as markers.

    The axes extend beyond the crop when taps fall outside it (a branch reading zero padding), so those
    taps stay visible — drawn hollow, in a warning colour.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        erf = panel.erf
        H, W = erf.shape
        top = float(erf.max())
        if log and top > 0:
            positive = erf[erf > 0]
            floor = max(float(positive.min()), top * 1e-6)
            shown = np.where(erf > floor, erf, floor)
            norm: Normalize = LogNorm(vmin=floor, vmax=top)
        else:
            shown, norm = erf, Normalize(vmin=0.0, vmax=top if top > 0 else 1.0)
        image = ax.imshow(shown, cmap="magma", norm=norm, extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Σ clipped ∂out/∂in" + (" (log)" if log else ""))
        ax.add_patch(Rectangle((-0.5, -0.5), W, H, fill=False, edgecolor="#4fc3f7", linewidth=1.5, label=f"crop {H}×{W}"))
        y_lo, y_hi, x_lo, x_hi = -0.5, H - 0.5, -0.5, W - 0.5
        if panel.star is not None:
            taps = panel.star.taps()
            inside = [t for t in taps if 0 <= t.y <= H - 1 and 0 <= t.x <= W - 1]
            outside = [t for t in taps if t not in inside]
            if inside:
                ax.scatter([t.x for t in inside], [t.y for t in inside], s=36, marker="+", c="#00e676",
                           linewidths=1.2, label="predicted taps")
            if outside:
                ax.scatter([t.x for t in outside], [t.y for t in outside], s=40, marker="o", facecolors="none",
                           edgecolors="#ff5252", linewidths=1.2, label="taps in padding")
            y_lo = min(y_lo, min(t.y for t in taps) - 8)
            y_hi = max(y_hi, max(t.y for t in taps) + 8)
            x_lo = min(x_lo, min(t.x for t in taps) - 8)
            x_hi = max(x_hi, max(t.x for t in taps) + 8)
        if panel.measured is not None:
            cy, cx = panel.centre
            ax.scatter(list(panel.measured.cols.positions), [cy] * len(panel.measured.cols.positions), s=60,
                       marker="|", c="#40c4ff", label="measured blobs")
            ax.scatter([cx] * len(panel.measured.rows.positions), list(panel.measured.rows.positions), s=60,
                       marker="_", c="#40c4ff")
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_hi, y_lo)
        ax.set_facecolor("#202020")
        ax.set_title(panel.title, fontsize=10)
        if panel.notes:
            ax.set_xlabel("\n".join(panel.notes), fontsize=8)
    # One legend for the figure, below the panels, so that no tap is hidden under it.
    handles: dict = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def atomic_render(panels: Sequence[ErfPanel], path: Path, log: bool) -> None:
    with atomic_path(path) as tmp:
        render_erf_png(panels, tmp, log=log)


def panel_notes(m: "ErfMeasurement") -> list[str]:
    notes = []
    if m.predicted_span is not None:
        notes.append(f"predicted span {fmt.px(m.predicted_span, none='—')} · measured {fmt.px(m.measured_span, none='—')}")
    else:
        notes.append(f"measured span {fmt.px(m.measured_span, none='—')} (no ASPP detected)")
    if m.measured_extent is not None:
        notes.append(f"non-zero extent {fmt.px(m.measured_extent, none='—')}")
    if m.taps_outside_crop:
        notes.append(f"{m.taps_outside_crop} predicted taps outside the crop (zero padding)")
    return notes
