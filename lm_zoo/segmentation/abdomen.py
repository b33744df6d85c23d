"""Abdomen rules: gastro-oesophageal junction, liver, spleen and kidney points."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from lm_zoo.segmentation.errors import Skip
from lm_zoo.segmentation.grid import ALL_FACES, DIRECTION
from lm_zoo.segmentation.masks import dilate_contact, geodesic
from lm_zoo.segmentation.shapes import along_axis, dome_apex, hull_vertices, principal_axes, unit
from lm_zoo.segmentation.structures import Structures

__all__ = ["gej", "liver_dome", "liver_tip", "spleen_pole", "kidney_pole", "kidney_hilum"]


def gej(seg: Structures):
    eso = seg.region("esophagus")
    contact = dilate_contact(eso, seg.region("stomach"))
    if len(contact) == 0:
        raise Skip("esophagus does not touch the stomach")
    # the distal end: contact voxels farthest along the oesophagus from its superior end,
    # within the oesophagus piece that reaches the stomach (overlapping labels can cut it)
    mask, lo = eso.crop()
    pieces, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    piece = pieces[tuple((eso.zyx - lo).T)]
    touching = pieces[tuple((contact.zyx - lo).T)]
    sizes = np.bincount(piece)
    best = max(set(touching.tolist()), key=lambda p: sizes[p])
    h = eso.points[:, 2]
    top = (piece == best) & (h >= h[piece == best].max() - 3.0)
    dist = geodesic(eso, top)
    lookup = dict(zip(map(tuple, eso.zyx.tolist()), dist))
    along = np.array([lookup[tuple(v)] for v in contact.zyx.tolist()])
    ok = np.isfinite(along)
    if not ok.any():
        raise Skip("esophagus: no path from its top to the stomach")
    return contact.points[ok][along[ok] >= along[ok].max() - 10.0].mean(axis=0)


def liver_dome(seg: Structures):
    return dome_apex(seg.need("liver", "S"), DIRECTION["S"])


def liver_tip(seg: Structures):
    liver = seg.need("liver", "IAR")
    d = unit([-0.3, -0.35, -1.0])
    tip = dome_apex(liver, d)
    return tip + 0.1 * (liver.centroid - tip)


def spleen_pole(seg: Structures, superior: bool):
    spleen = seg.need("spleen", "SI")
    _, axes, _ = principal_axes(spleen.points)
    axis = axes[int(np.argmax(np.abs(axes[:, 2])))]
    axis = axis if axis[2] > 0 else -axis
    return along_axis(spleen, axis if superior else -axis, 0.88)


def kidney_pole(seg: Structures, side, upper: bool):
    kidney = seg.need(f"kidney_{side}", ALL_FACES)
    _, axes, _ = principal_axes(kidney.points)
    axis = axes[0] if axes[0][2] > 0 else -axes[0]
    return along_axis(kidney, axis if upper else -axis, 0.92)


def kidney_hilum(seg: Structures, side):
    from scipy.spatial import Delaunay

    kidney = seg.need(f"kidney_{side}", ALL_FACES)
    mask, lo = kidney.crop()
    filled = ndimage.binary_fill_holes(mask)
    pts = np.argwhere(mask).astype(float)
    try:
        hull = Delaunay(pts[hull_vertices(pts)])
    except Exception:  # noqa: BLE001 - degenerate (flat) masks
        raise Skip(f"kidney_{side}: degenerate mask") from None
    grid = np.argwhere(np.ones(mask.shape, bool)).astype(float)
    inside = (hull.find_simplex(grid) >= 0).reshape(mask.shape)
    sinus = (inside | filled) & ~mask
    sinus = ndimage.binary_opening(sinus, structure=ndimage.generate_binary_structure(3, 1))
    labels, n = ndimage.label(sinus)
    if n == 0:
        raise Skip(f"kidney_{side}: no renal sinus (concavity) found")
    medial = np.array(DIRECTION["L" if side == "right" else "R"], float)
    best, best_score = None, -np.inf
    sizes = np.bincount(labels.ravel())[1:]
    for lab in np.argsort(sizes)[::-1][:3] + 1:
        comp = seg.grid.to_lps(np.argwhere(labels == lab) + lo)
        score = len(comp) * (1.0 if (comp.mean(axis=0) - kidney.centroid) @ medial > 0 else 0.1)
        if score > best_score:
            best, best_score = comp, score
    return best.mean(axis=0)
