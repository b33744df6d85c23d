"""The picture of a detection: coronal and sagittal MIPs with the found landmarks labelled."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from lm_zoo.io import read_image

if TYPE_CHECKING:
    from lm_zoo.detection.detector import Detections

__all__ = ["save_detection_montage"]


def save_detection_montage(image, detections: Detections, path, title: str | None = None, step_mm: float = 2.0):
    """PNG of a coronal and a sagittal maximum-intensity projection with the found landmarks labelled.

    The volume is resampled onto an LPS-aligned ``step_mm`` grid first, so the projections are
    true coronal (along P) and sagittal (along L) whatever the file's direction cosines; patient
    right is on the left of the coronal panel, superior is up. Written to a temporary file and
    moved into place.
    """
    import os
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lm_zoo.figures import save_png

    arr, lo, hi = _lps_aligned(read_image(image), step_mm)  # arr: (S-I z, P y, L x), ascending LPS
    found = np.flatnonzero(detections.found)
    pts = detections.points[found]
    names = [detections.names[i] for i in found]
    extent_x, extent_y, extent_z = (lo[0], hi[0]), (lo[1], hi[1]), (lo[2], hi[2])
    panels = [
        ("coronal MIP (patient right on the left)", arr.max(axis=1), extent_x, pts[:, 0]),
        ("sagittal MIP (anterior on the left)", arr.max(axis=2), extent_y, pts[:, 1]),
    ]
    width_ratios = [extent_x[1] - extent_x[0], extent_y[1] - extent_y[0]]
    fig = Figure(figsize=(14, 10), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": width_ratios})
    for ax, (label, plane, (u0, u1), u) in zip(axes, panels):
        # rows: z ascending = inferior first -> origin="lower" puts superior at the top
        ax.imshow(plane, cmap="gray", vmin=-200, vmax=1200, origin="lower", extent=(u0, u1, extent_z[0], extent_z[1]),
                  aspect="equal")
        ax.scatter(u, pts[:, 2], s=18, c="red", edgecolors="yellow", linewidths=0.5)
        for n, uu, zz in zip(names, u, pts[:, 2]):
            ax.annotate(n, (uu, zz), fontsize=5, color="cyan", xytext=(3, 2), textcoords="offset points")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("LPS mm")
    axes[0].set_ylabel("S (LPS z, mm)")
    missing = [n for n, f in zip(detections.names, detections.found) if not f]
    fig.suptitle((title or "lm-zoo detect") + f": {len(found)} of {len(detections)} landmarks found "
                 f"(score >= {detections.threshold:g}, weights {detections.weights!r})"
                 + (f"\nnot found: {', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}" if missing else ""),
                 fontsize=9)
    fig.tight_layout()
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_png(fig, path, dpi=90)  # the figure's own dpi: the same pixels as before save_png


def _lps_aligned(image: sitk.Image, step_mm: float):
    """The volume resampled onto an LPS-axis-aligned ``step_mm`` grid over its bounding box:
    (array (z, y, x), box low corner, box high corner) in LPS mm."""
    size = np.asarray(image.GetSize())
    corners = np.array([image.TransformContinuousIndexToPhysicalPoint([float((s - 1) * c) for s, c in zip(size, corner)])
                        for corner in np.ndindex(2, 2, 2)])
    lo, hi = corners.min(0), corners.max(0)
    shape = np.maximum(1, np.ceil((hi - lo) / step_mm).astype(int) + 1)
    ref = sitk.Image([int(v) for v in shape], sitk.sitkFloat32)
    ref.SetOrigin(lo.tolist())
    ref.SetSpacing([float(step_mm)] * 3)
    aligned = sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), ref, sitk.Transform(), sitk.sitkLinear, -1024.0)
    return sitk.GetArrayFromImage(aligned), lo, hi
