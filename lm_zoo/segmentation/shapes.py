"""Points and axes of one voxel region: caps, principal axes, dome apices, sphere fits."""
from __future__ import annotations

import numpy as np

from lm_zoo.segmentation.grid import Region

__all__ = ["unit", "cap_point", "principal_axes", "along_axis", "dome_apex", "column_ends", "fit_sphere",
           "hull_vertices"]


def unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def cap_point(region: Region, d, depth: float = 3.0, inside: float = 0.0) -> np.ndarray:
    """Cap of ``region`` along unit ``d``: cap centroid put on the surface, then ``inside`` mm back."""
    d = unit(d)
    s = region.points @ d
    top = s.max()
    cap = region.points[s >= top - depth].mean(axis=0)
    surface = top + region.grid.half_voxel(d)
    return cap + (surface - cap @ d - inside) * d


def principal_axes(points: np.ndarray):
    centroid = points.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov((points - centroid).T))
    order = np.argsort(values)[::-1]
    return centroid, vectors[:, order].T, values[order]


def along_axis(region: Region, axis, fraction: float) -> np.ndarray:
    """Point ``fraction`` of the way from the centroid to the surface tip along unit ``axis``."""
    c = region.centroid
    s = (region.points - c) @ axis
    return c + fraction * (s.max() + region.grid.half_voxel(axis)) * axis


def dome_apex(region: Region, d, depth: float = 8.0, radius: float = 45.0) -> np.ndarray:
    """Apex of the mask's surface along unit ``d``: a quadratic fitted to the surface heights
    (the highest voxel per column along ``d``) within ``depth`` mm of the top and ``radius`` mm
    of the highest column (one lobe, not a second one of similar height), put on the surface.
    Falls back to the cap centroid when the fit is not a dome."""
    d = unit(d)
    e1 = unit(np.cross(d, [1.0, 0, 0] if abs(d[0]) < 0.9 else [0, 1.0, 0]))
    e2 = np.cross(d, e1)
    h = region.points @ d
    u, v = region.points @ e1, region.points @ e2
    step = float(region.grid.spacing.min())
    keys = np.stack([np.round(u / step), np.round(v / step)], axis=1).astype(np.int64)
    order = np.lexsort((-h, keys[:, 1], keys[:, 0]))
    keys, h_sorted = keys[order], h[order]
    first = np.r_[True, np.any(np.diff(keys, axis=0) != 0, axis=1)]
    cu, cv, ch = keys[first, 0] * step, keys[first, 1] * step, h_sorted[first]
    top = ch.max()
    highest = int(np.argmax(ch))
    sel = (ch >= top - depth) & ((cu - cu[highest]) ** 2 + (cv - cv[highest]) ** 2 <= radius ** 2)
    fallback = cap_point(region, d)
    if sel.sum() < 12:
        return fallback
    a = np.c_[np.ones(sel.sum()), cu[sel], cv[sel], cu[sel] ** 2, cu[sel] * cv[sel], cv[sel] ** 2]
    c, *_ = np.linalg.lstsq(a, ch[sel], rcond=None)
    hess = np.array([[2 * c[3], c[4]], [c[4], 2 * c[5]]])
    if np.any(np.linalg.eigvalsh(hess) >= 0):
        return fallback
    uv = np.linalg.solve(hess, -c[1:3])
    # the apex must lie over the mask's top part
    if np.min((cu[sel] - uv[0]) ** 2 + (cv[sel] - uv[1]) ** 2) > (3 * step) ** 2:
        return fallback
    height = c[0] + c[1] * uv[0] + c[2] * uv[1] + c[3] * uv[0] ** 2 + c[4] * uv[0] * uv[1] + c[5] * uv[1] ** 2
    return uv[0] * e1 + uv[1] * e2 + (height + region.grid.half_voxel(d)) * d


def column_ends(region: Region, d) -> float:
    """Mean height along ``d`` of the region's end surface: per column, the farthest voxel
    along ``d`` (plus half a voxel); returned as an LPS coordinate along d's dominant axis."""
    d = unit(d)
    h = region.points @ d
    keys = region.zyx[:, 1:] if abs(d[2]) > 0.7 else region.zyx[:, [0, 2]]
    order = np.lexsort((-h, keys[:, 1], keys[:, 0]))
    k, hs = keys[order], h[order]
    first = np.r_[True, np.any(np.diff(k, axis=0) != 0, axis=1)]
    end = hs[first].mean() + region.grid.half_voxel(d)
    return float(end * d[int(np.argmax(np.abs(d)))])


def fit_sphere(points: np.ndarray):
    """Least-squares sphere through ``points``: (centre, radius)."""
    a = np.c_[2 * points, np.ones(len(points))]
    b = (points ** 2).sum(axis=1)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre = sol[:3]
    return centre, float(np.sqrt(max(sol[3] + centre @ centre, 0.0)))


def hull_vertices(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull

    return ConvexHull(points).vertices
