"""Thorax rules: sternum, lung apices, carina, 12th-rib tips, heart apex."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from lm_zoo.segmentation.errors import Skip
from lm_zoo.segmentation.grid import DIRECTION
from lm_zoo.segmentation.shapes import cap_point, column_ends, dome_apex, principal_axes, unit
from lm_zoo.segmentation.structures import Structures

__all__ = ["sternum_top", "sternum_bottom", "sternal_angle", "lung_apex", "carina", "rib12_tip", "heart_apex"]


def sternum_top(seg: Structures):
    return cap_point(seg.need("sternum", "S"), DIRECTION["S"])


def sternum_bottom(seg: Structures):
    return cap_point(seg.need("sternum", "I"), DIRECTION["I"])


def sternal_angle(seg: Structures):
    st = seg.need("sternum")
    c, axes, _ = principal_axes(st.points)
    axis = axes[0] if axes[0][2] > 0 else -axes[0]
    s = (st.points - c) @ axis
    top, bottom = s.max(), s.min()
    step = max(2.0, 2 * st.grid.half_voxel(axis))
    levels = np.arange(top - 0.55 * (top - bottom), top - 0.10 * (top - bottom), step)
    if len(levels) < 3:
        raise Skip("sternum: too short to find the manubriosternal joint")
    counts = np.array([np.count_nonzero(np.abs(s - t) <= step / 2) for t in levels])
    counts = ndimage.uniform_filter1d(counts.astype(float), 3, mode="nearest")
    t = levels[int(np.argmin(counts))]
    return st.points[np.abs(s - t) <= step].mean(axis=0)


def lung_apex(seg: Structures, side):
    return dome_apex(seg.need(f"lung_upper_lobe_{side}", "S"), DIRECTION["S"])


def carina(seg: Structures):
    trachea = seg.need("trachea", "I")
    z = trachea.zyx[:, 0]
    up_axis_high = seg.grid.faces[(0, 1)] == "S"
    levels = sorted(set(z.tolist()), reverse=up_axis_high)  # from superior to inferior
    mask, lo = trachea.crop(pad=0)
    last = None
    for k in levels:
        section = mask[k - lo[0]]
        labels, n = ndimage.label(section, structure=np.ones((3, 3), bool))
        if n >= 2:
            sizes = np.bincount(labels.ravel())[1:]
            if np.sort(sizes)[-2] >= 0.15 * sizes.sum():
                break  # split into two bronchi: the carina is the slice above
        last = k
    if last is None:
        raise Skip("trachea: no cross-section above the split")
    # the lumen's end: centroid of the last 6 mm (a tilted end plane makes single slices
    # lopsided), at the mean height of the end surface
    n = int(np.ceil(6.0 / seg.grid.spacing[2]))
    above = (z - last) * (1 if up_axis_high else -1)
    slab = trachea.subset((above >= 0) & (above <= n))
    centre = slab.centroid
    bottom = column_ends(slab, unit(DIRECTION["I"]))
    return np.array([centre[0], centre[1], bottom])


def rib12_tip(seg: Structures, side):
    rib = seg.need(f"rib_{side}_12")
    if seg.has("vertebrae_T12"):
        anchor = seg.region("vertebrae_T12").centroid
    else:
        # the rib's most medial voxels are its vertebral end
        medial = np.array(DIRECTION["L" if side == "right" else "R"], float)
        s = rib.points @ medial
        anchor = rib.points[s >= s.max() - 5].mean(axis=0)
    dist = np.linalg.norm(rib.points - anchor, axis=1)
    cap = rib.points[dist >= dist.max() - 4.0]
    return cap.mean(axis=0)


def heart_apex(seg: Structures):
    heart = seg.need("heart")
    c, axes, _ = principal_axes(heart.points)
    axis = axes[0] if axes[0] @ unit([1, -1, -1]) > 0 else -axes[0]
    r = heart.points - c
    side = r @ axis > 0
    dist = np.linalg.norm(r, axis=1) * side
    tip = heart.points[dist >= dist.max() - 3.0].mean(axis=0)
    return tip + 0.1 * (c - tip)
