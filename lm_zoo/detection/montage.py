"""The picture of a detection: coronal and sagittal MIPs of the body with the found landmarks
labelled beside the image (leader lines to the points), and the found / not found / out-of-view
lists; the scan's and the weights' names in the title.

Only the body is projected (:func:`body_mask`): in a MIP the CT table, a bright slab under the
patient, outshines the points, and air around the body is empty space. The panels are cropped
to the body and sized in inches from its extent, so the figure has no margins beyond the label
columns.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from lm_zoo.io import read_image

if TYPE_CHECKING:
    from lm_zoo.detection.detector import Detections

__all__ = ["save_detection_montage", "detection_figure", "body_mask", "place_labels"]

_AIR_HU = -500.0  # the body threshold of the search (SearchParams.body_threshold_hu)
# A CT table (carbon-fibre top, its rails) touches the patient, if at all, through a mattress a few
# mm thick or at a few points: an opening of this radius cuts such links and keeps the trunk and limbs.
_OPEN_MM = 6.0
_MASK_MM = 4.0  # grid of the body mask
_WINDOW_HU = (-200.0, 1200.0)  # soft tissue grey, bone and contrast bright
_FONT_PT = 7.0
_LINE = 1.3  # label line height / font size
_PANEL_HEIGHT_IN = 7.5
_HEADER_IN = 0.5  # the title and the panels' names
_PANELS_WIDTH_IN = 12.0  # at most, both panels (a thin slab would otherwise be metres wide)
_MIN_LIST_PT = 5.5
_LIST_IN = 2.3  # the status lists
_DARK = "#101010"


def body_mask(volume: np.ndarray, spacing_mm: float, threshold_hu: float = _AIR_HU) -> np.ndarray:
    """The body of a (z, y, x) HU volume on an isotropic ``spacing_mm`` grid: voxels above
    ``threshold_hu``, opened (radius :data:`_OPEN_MM`) to cut what touches the body only through
    thin links, the largest connected part, its thin parts given back (the opened-away voxels
    within the radius of it) and its holes filled slice by slice (lungs, bowel gas). A CT table is
    another part and is left out."""
    from scipy import ndimage

    above = np.asarray(volume) > threshold_hu
    r = max(1, int(round(_OPEN_MM / float(spacing_mm))))
    zz, yy, xx = np.ogrid[-r:r + 1, -r:r + 1, -r:r + 1]
    ball = zz ** 2 + yy ** 2 + xx ** 2 <= r * r
    opened = ndimage.binary_opening(above, structure=ball)
    labels, n = ndimage.label(opened)
    if n == 0:
        return np.zeros_like(above)
    largest = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    mask = above & ndimage.binary_dilation(largest, structure=ball)
    labels, n = ndimage.label(mask)  # the give-back may touch other parts' rims: keep the body's
    mask = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    for k in range(mask.shape[0]):
        mask[k] = ndimage.binary_fill_holes(mask[k])
    return mask


def place_labels(targets, gap: float, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Label positions along one column, as close to ``targets`` as possible and at least ``gap``
    apart (greedy: upward from the lowest, then pushed down from ``hi``); within [``lo``, ``hi``]
    when they fit there, else spread evenly about the middle. Returns positions in input order."""
    targets = np.asarray(targets, float)
    order = np.argsort(targets, kind="stable")
    pos = targets[order].copy()
    n = len(pos)
    if n == 0:
        return pos
    lo = pos[0] if lo is None else float(lo)
    hi = pos[-1] if hi is None else float(hi)
    if (n - 1) * gap > hi - lo:  # too many for the column: centre the stack on it
        lo = (lo + hi) / 2 - (n - 1) * gap / 2
        hi = lo + (n - 1) * gap
    pos = np.clip(pos, lo, hi)
    for i in range(1, n):
        pos[i] = max(pos[i], pos[i - 1] + gap)
    if pos[-1] > hi:
        pos[-1] = hi
        for i in range(n - 2, -1, -1):
            pos[i] = min(pos[i], pos[i + 1] - gap)
    out = np.empty(n)
    out[order] = pos
    return out


def save_detection_montage(image, detections: Detections, path, title: str | None = None, step_mm: float = 2.0):
    """PNG of :func:`detection_figure` (``title``: the scan's name), written atomically."""
    import os
    from pathlib import Path

    from lm_zoo.figures import save_png

    fig, _ = detection_figure(image, detections, title, step_mm)
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_png(fig, path, dpi=110, facecolor=fig.get_facecolor())


def detection_figure(image, detections: Detections, title: str | None = None, step_mm: float = 2.0):
    """(matplotlib Figure, the label Text artists): a coronal and a sagittal maximum-intensity
    projection of the body with the found landmarks labelled, and the status lists.

    The volume is resampled onto an LPS-aligned ``step_mm`` grid first, so the projections are
    true coronal (along P) and sagittal (along L) whatever the file's direction cosines; patient
    right is on the left of the coronal panel, anterior on the left of the sagittal one,
    superior is up."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    arr, lo, hi = _body_volume(read_image(image), step_mm)
    found = np.flatnonzero(detections.found)
    pts, names = detections.points[found], [detections.names[i] for i in found]
    panels = [("coronal (patient right on the left)", arr.max(axis=1), (lo[0], hi[0]), pts[:, 0]),
              ("sagittal (anterior on the left)", arr.max(axis=2), (lo[1], hi[1]), pts[:, 1])]
    widths_mm = [u1 - u0 + step_mm for _, _, (u0, u1), _ in panels]
    scale = min(_PANEL_HEIGHT_IN / (hi[2] - lo[2] + step_mm), _PANELS_WIDTH_IN / sum(widths_mm))  # inches per mm
    line_in = _FONT_PT * _LINE / 72
    # tall enough for the longest label column and for the lists at >= _MIN_LIST_PT
    per_side = max([np.count_nonzero(u < (u0 + u1) / 2) for _, _, (u0, u1), u in panels]
                   + [np.count_nonzero(u >= (u0 + u1) / 2) for _, _, (u0, u1), u in panels])
    panel_h = max((hi[2] - lo[2] + step_mm) * scale, (per_side + 1) * line_in,
                  (len(detections) + 3) * _MIN_LIST_PT * _LINE / 72)
    # a label column as wide as the longest name (DejaVu Sans: ~0.6 em per character)
    gutter_in = 0.25 + 0.6 * _FONT_PT / 72 * max([len(n) for n in names] + [8])
    fig_w = sum(widths_mm) * scale + 2 * gutter_in * len(panels) + _LIST_IN
    fig_h = panel_h + _HEADER_IN
    fig = Figure(figsize=(fig_w, fig_h), facecolor=_DARK)
    FigureCanvasAgg(fig)
    labels, x = [], 0.0
    for (label, plane, (u0, u1), u), width in zip(panels, widths_mm):
        ax = fig.add_axes((x / fig_w, 0.0, (width * scale + 2 * gutter_in) / fig_w, panel_h / fig_h))
        ax.set_facecolor(_DARK)
        box = (u0 - step_mm / 2, u1 + step_mm / 2, lo[2] - step_mm / 2, hi[2] + step_mm / 2)
        ax.imshow(plane, cmap="gray", vmin=_WINDOW_HU[0], vmax=_WINDOW_HU[1], origin="lower", aspect="equal",
                  extent=box, interpolation="bilinear")
        ax.set_xlim(box[0] - gutter_in / scale, box[1] + gutter_in / scale)
        middle, half = (box[2] + box[3]) / 2, panel_h / scale / 2
        ax.set_ylim(middle - half, middle + half)
        ax.set_axis_off()
        ax.annotate(label, ((box[0] + box[1]) / 2, box[3]), xytext=(0, 3), textcoords="offset points", color="0.75",
                    fontsize=_FONT_PT, ha="center", va="bottom", annotation_clip=False)
        labels += _labelled_points(ax, u, pts[:, 2], names, box[:2], ax.get_ylim(), line_in / scale)
        x += width * scale + 2 * gutter_in
    _status_lists(fig, detections, x / fig_w, panel_h, fig_h)
    fig.suptitle(_title(detections, title), color="white", fontsize=9, x=0.005, y=1 - 0.08 / fig_h, ha="left",
                 va="top")
    return fig, labels


def _body_volume(image: sitk.Image, step_mm: float):
    """The scan on an LPS-aligned ``step_mm`` grid, -1024 outside the body, cut to the body:
    (array (z, y, x), low corner, high corner) in LPS mm."""
    arr, lo, _ = _lps_aligned(image, step_mm)
    # the body on a ~4 mm copy (morphology on the full grid takes seconds); its 4 mm steps at the
    # skin show only air, which is black inside the mask as outside it
    f = max(1, int(round(_MASK_MM / step_mm)))
    mask = body_mask(arr[::f, ::f, ::f], step_mm * f)
    mask = mask.repeat(f, 0).repeat(f, 1).repeat(f, 2)[:arr.shape[0], :arr.shape[1], :arr.shape[2]]
    arr, lo = _crop(np.where(mask, arr, -1024.0), mask, lo, step_mm)
    return arr, lo, lo + (np.asarray(arr.shape[::-1]) - 1) * step_mm


def _labelled_points(ax, u, z, names, u_range, z_range, gap):
    """Points on one panel, their names in columns beside it (left half of the points to the left),
    each with a leader line to its point. Returns the Text artists."""
    ax.scatter(u, z, s=14, c="#ff3b3b", edgecolors="yellow", linewidths=0.6, zorder=3)
    middle = (u_range[0] + u_range[1]) / 2
    texts = []
    for left in (True, False):
        idx = np.flatnonzero((u < middle) == left)
        ys = place_labels(z[idx], gap, z_range[0] + gap / 2, z_range[1] - gap / 2)
        edge = u_range[0] if left else u_range[1]
        for i, y in zip(idx, ys):
            ax.plot([edge, u[i]], [y, z[i]], color="#ffd54a", linewidth=0.5, alpha=0.8, zorder=2)
            texts.append(ax.annotate(names[i], (edge, y), xytext=(-3 if left else 3, 0), textcoords="offset points",
                                     fontsize=_FONT_PT, color="#ffd54a", va="center", ha="right" if left else "left"))
    return texts


def _status_lists(fig, detections, x0: float, height_in: float, fig_h: float) -> None:
    """Found (with scores), not found and out-of-view names in one column at ``x0`` (figure fraction)."""
    groups = [("found", "#7bd88f"), ("not_found", "#ff8a65"), ("out_of_view", "#9e9e9e")]
    lines = []
    for status, colour in groups:
        rows = [(n, s) for n, s, st in zip(detections.names, detections.scores, detections.status) if st == status]
        lines.append((f"{status.replace('_', ' ')} ({len(rows)})", "white", "bold"))
        lines += [(f"  {n}" + (f"  {s:.2f}" if status == "found" else ""), colour, "normal") for n, s in rows]
    size = min(_FONT_PT, height_in * 72 / (_LINE * max(len(lines), 1)))
    step = size * _LINE / 72 / fig_h
    y = 1 - _HEADER_IN / fig_h
    for text, colour, weight in lines:
        fig.text(x0 + 0.1 / fig.get_figwidth(), y, text, fontsize=size, color=colour, fontweight=weight, va="top",
                 family="monospace")
        y -= step


def _title(detections, title) -> str:
    counts = detections.counts()
    return (f"{title or 'scan'}  |  weights {detections.weights!r}  |  {counts['found']} of {len(detections)} found, "
            f"{counts['not_found']} not found, {counts['out_of_view']} out of view  (score >= {detections.threshold:g})")


def _crop(arr: np.ndarray, mask: np.ndarray, lo: np.ndarray, step_mm: float, pad: int = 2):
    """The volume cut to the body's bounding box plus ``pad`` voxels; its new low corner (LPS mm)."""
    if not mask.any():
        return arr, lo
    zyx = np.argwhere(mask)
    a = np.maximum(zyx.min(0) - pad, 0)
    b = np.minimum(zyx.max(0) + pad + 1, arr.shape)
    return arr[a[0]:b[0], a[1]:b[1], a[2]:b[2]], lo + a[::-1] * step_mm


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
