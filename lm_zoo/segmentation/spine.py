"""Spine rules: vertebral bodies (their centroids) and the sacral promontory."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from lm_zoo.segmentation.errors import Skip
from lm_zoo.segmentation.grid import DIRECTION, Region
from lm_zoo.segmentation.masks import intersection, largest_component, within
from lm_zoo.segmentation.shapes import cap_point, principal_axes, unit
from lm_zoo.segmentation.structures import Structures

__all__ = ["vertebral_body", "body_anterior_to_canal", "vertebra", "sacral_promontory"]


def vertebral_body(seg: Structures, level: str) -> Region:
    """Body of ``vertebrae_<level>`` (level like 'L1', 'S1')."""
    name = f"vertebrae_{level}"
    if level in seg.bodies:
        if seg.bodies[level] is None:
            raise Skip(f"{name}: no vertebral body found")
        return seg.bodies[level]
    vertebra = seg.need(name)
    body = None
    if seg.has("vertebrae_body"):
        overlap = intersection(vertebra, seg.region("vertebrae_body"))
        if len(overlap) > 0.2 * len(vertebra):
            body = largest_component(overlap)
    if body is None:
        body = body_anterior_to_canal(seg, vertebra)
    seg.bodies[level] = body
    if body is None:
        raise Skip(f"{name}: no vertebral body found")
    return body


def body_anterior_to_canal(seg: Structures, vertebra: Region) -> Region | None:
    """The vertebra's voxels in front of its spinal canal (the body), largest compact part.

    The canal is the spinal_cord label within 3 mm of the vertebra (the part its ring
    encloses), else the holes of the ring slice by slice; "in front" is the patient's
    anterior direction perpendicular to the canal's local axis.
    """
    pts = vertebra.points
    canal = None
    if seg.has("spinal_cord"):
        near = within(seg.region("spinal_cord"), vertebra, 3.0)
        if len(near) >= 3:
            canal = near.points
    if canal is None:  # the vertebral foramen: holes of the ring, slice by slice
        mask, lo = vertebra.crop()
        holes = np.zeros_like(mask)
        for k in range(mask.shape[0]):
            holes[k] = ndimage.binary_fill_holes(mask[k]) & ~mask[k]
        if holes.sum() >= 3:
            canal = seg.grid.to_lps(np.argwhere(holes) + lo)
    anterior = np.array(DIRECTION["A"], float)
    if canal is None:
        s = pts @ anterior
        # no canal found: keep the anterior 60% of the vertebra's depth
        keep = s >= s.max() - 0.6 * (s.max() - s.min())
    else:
        centre = canal.mean(axis=0)
        axis = np.array([0.0, 0.0, 1.0])
        if len(canal) >= 10:
            _, axes, values = principal_axes(canal)
            if values[0] > 2.0 * max(values[1], 1e-9):
                axis = axes[0]
        anterior = unit(anterior - (anterior @ axis) * axis)
        edge = ((canal - centre) @ anterior).max() + seg.grid.half_voxel(anterior)
        keep = (pts - centre) @ anterior > edge + 1.0
    if keep.sum() < 0.1 * len(pts):
        return None
    body = vertebra.subset(keep)
    # drop pedicle stubs: an opening by one voxel, then the largest component
    mask, lo = body.crop()
    opened = ndimage.binary_opening(mask, structure=ndimage.generate_binary_structure(3, 1))
    if opened.sum() > 0.5 * mask.sum():
        idx = body.zyx - lo
        body = body.subset(opened[idx[:, 0], idx[:, 1], idx[:, 2]])
    return largest_component(body)


def vertebra(seg: Structures, v: str) -> np.ndarray:
    return vertebral_body(seg, v.upper()).centroid


def sacral_promontory(seg: Structures) -> np.ndarray:
    if seg.has("vertebrae_S1"):
        body = vertebral_body(seg, "S1")
    else:
        body = body_anterior_to_canal(seg, seg.need("sacrum", "S"))
        if body is None:
            raise Skip("sacrum: no S1 body found")
    c, axes, _ = principal_axes(body.points)
    lateral = axes[0]  # the S1 body is widest from side to side
    d = np.add(DIRECTION["A"], DIRECTION["S"]).astype(float)
    d = unit(d - (d @ lateral) * lateral)
    mid = body.subset(np.abs((body.points - c) @ lateral) <= max(3.0, 2 * seg.grid.half_voxel(lateral)))
    return cap_point(mid if len(mid) >= 3 else body, d, depth=3.0, inside=4.0)
