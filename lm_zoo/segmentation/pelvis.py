"""Pelvis rules: iliac crests, ASIS, femoral heads (sphere fit), pubic symphysis."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from lm_zoo.segmentation.errors import Skip
from lm_zoo.segmentation.grid import DIRECTION, Region
from lm_zoo.segmentation.masks import largest_component, surface_voxels
from lm_zoo.segmentation.shapes import cap_point, fit_sphere
from lm_zoo.segmentation.structures import Structures

__all__ = ["iliac_crest", "asis", "femoral_head", "pubic_symphysis"]


def iliac_crest(seg: Structures, side):
    return cap_point(seg.need(f"hip_{side}", "S"), DIRECTION["S"], inside=3.0)


def asis(seg: Structures, side):
    hip = seg.need(f"hip_{side}", "SA" + ("R" if side == "right" else "L"))
    z = hip.points[:, 2]
    upper = hip.subset(z >= (z.min() + z.max()) / 2)
    lateral = -1.0 if side == "right" else 1.0
    return cap_point(upper, [0.35 * lateral, -1.0, 0.15], inside=3.0)


def femoral_head(seg: Structures, side):
    femur = seg.need(f"femur_{side}", "S" + ("R" if side == "right" else "L") + "AP")
    top = cap_point(femur, DIRECTION["S"])
    surface = surface_voxels(femur).points
    pts = surface[np.linalg.norm(surface - top, axis=1) <= 32.0]
    if len(pts) < 20:
        raise Skip(f"femur_{side}: too few surface voxels near its top for a sphere fit")
    centre, radius = fit_sphere(pts)
    for _ in range(4):
        d = np.linalg.norm(pts - centre, axis=1)
        inliers = np.abs(d - radius) <= max(2.5, 1.5 * seg.grid.spacing.max())
        if inliers.sum() < 20:
            break
        centre, radius = fit_sphere(pts[inliers])
    if not 12.0 <= radius <= 40.0:
        raise Skip(f"femur_{side}: sphere fit radius {radius:.1f} mm is implausible for a femoral head")
    # the head must lie inside the scan: its lowest point above the inferior border
    bottom = seg.grid.to_lps(np.array([[0, 0, 0], np.array(seg.grid.shape) - 1]))[:, 2]
    if centre[2] - radius < bottom.min():
        raise Skip(f"femur_{side}: femoral head is cut by the field of view")
    return centre


def pubic_symphysis(seg: Structures):
    left, right = seg.region("hip_left"), seg.region("hip_right")
    zone = []
    for a, b in ((left, right), (right, left)):
        mask, lo = b.crop(pad=8)
        dist = ndimage.distance_transform_edt(~mask, sampling=seg.grid.spacing[::-1])
        idx = a.zyx - lo
        ok = np.all((idx >= 0) & (idx < mask.shape), axis=1)
        near = np.zeros(len(a), bool)
        near[ok] = dist[idx[ok, 0], idx[ok, 1], idx[ok, 2]] <= 8.0
        zone.append(a.zyx[near])
    if min(len(z_) for z_ in zone) < 3:
        raise Skip("hip_left/hip_right do not meet at a symphysis")
    caps = []
    for zyx, side in zip(zone, ("left", "right")):
        region = largest_component(Region(seg.grid, zyx, f"hip_{side}"))
        region = seg.need(f"hip_{side} (symphysis part)", "SI", region=region)
        caps.append(cap_point(region, DIRECTION["S"]))
    return np.mean(caps, axis=0)
