"""Vessel rules: aortic root, arch and hiatus, branch origins (where a branch touches the aorta), bifurcation."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from lm_zoo.segmentation.errors import Skip
from lm_zoo.segmentation.grid import DIRECTION, Region
from lm_zoo.segmentation.masks import dilate_contact, outside
from lm_zoo.segmentation.shapes import cap_point, unit
from lm_zoo.segmentation.spine import vertebra
from lm_zoo.segmentation.structures import Structures

__all__ = ["origin", "renal_origin", "aortic_root", "arch_top", "aortic_hiatus", "aortic_bifurcation"]


def origin(seg: Structures, branch: str, branch_region: Region | None = None) -> np.ndarray:
    aorta = seg.region("aorta") if seg.has("aorta") else None
    if aorta is None:
        raise Skip("aorta is absent")
    b = outside(branch_region if branch_region is not None else seg.region(branch), aorta)
    contact = dilate_contact(b, aorta)
    if len(contact) == 0:
        raise Skip(f"{branch} does not touch the aorta")
    return contact.centroid


def renal_origin(seg: Structures, side):
    aorta = seg.region("aorta")
    renal = outside(seg.region("renal_arteries"), aorta)
    contact = dilate_contact(renal, aorta)
    if len(contact) == 0:
        raise Skip("renal_arteries does not touch the aorta")
    # split at the aorta's axis near the contacts (x grows to the patient's left)
    near = aorta.points[np.abs(aorta.points[:, 2] - contact.points[:, 2].mean()) < 15]
    x0 = (near if len(near) else aorta.points)[:, 0].mean()
    keep = contact.points[:, 0] < x0 if side == "right" else contact.points[:, 0] > x0
    if not keep.any():
        raise Skip(f"renal_arteries: no {side} renal artery touches the aorta")
    return contact.points[keep].mean(axis=0)


def aortic_root(seg: Structures):
    if seg.has("annulus_proper"):
        return seg.region("annulus_proper").centroid
    contact = dilate_contact(seg.region("aorta"), seg.region("heart"))
    if len(contact) == 0:
        raise Skip("aorta does not touch the heart")
    return contact.centroid


def arch_top(seg: Structures):
    aorta = seg.need("aorta", "S")
    up = unit(DIRECTION["S"])
    cap = cap_point(aorta, up)
    mask, lo = aorta.crop()
    dist = ndimage.distance_transform_edt(mask, sampling=seg.grid.spacing[::-1])
    # the column under the cap: voxels within a voxel of the vertical line through it
    r = (aorta.points - cap)
    r -= np.outer(r @ up, up)
    column = np.linalg.norm(r, axis=1) <= 1.5 * seg.grid.spacing.max()
    idx = aorta.zyx[column] - lo
    best = np.argmax(dist[idx[:, 0], idx[:, 1], idx[:, 2]])
    return aorta.points[column][best]


def aortic_hiatus(seg: Structures):
    t12 = vertebra(seg, "t12")
    aorta = seg.region("aorta")
    step = max(seg.grid.spacing[2], 1.5)
    section = aorta.points[np.abs(aorta.points[:, 2] - t12[2]) <= step / 2]
    if len(section) < 3:
        section = aorta.points[np.abs(aorta.points[:, 2] - t12[2]) <= step]
    if len(section) < 3:
        raise Skip("aorta does not reach the height of T12")
    c = section.mean(axis=0)
    return np.array([c[0], c[1], t12[2]])


def aortic_bifurcation(seg: Structures):
    aorta = seg.need("aorta", "I")
    iliac = [seg.region(n) for n in ("iliac_artery_left", "iliac_artery_right") if seg.has(n)]
    if len(iliac) < 2:
        raise Skip("iliac_artery_left/right absent")
    contact = [dilate_contact(aorta, i) for i in iliac]
    if not all(len(c) for c in contact):
        raise Skip("aorta does not touch both iliac arteries")
    zyx = np.unique(np.concatenate([c.zyx for c in contact]), axis=0)
    return Region(seg.grid, zyx, "aorta").centroid
