"""Voxel-set operations between regions: contact, overlap, distance, components, surface, paths."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from lm_zoo.segmentation.grid import Region

__all__ = ["dilate_contact", "intersection", "within", "geodesic", "outside", "largest_component", "surface_voxels"]


def dilate_contact(a: Region, b: Region) -> Region:
    """Voxels of ``a`` face-, edge- or corner-adjacent to (or overlapping) ``b``."""
    lo = np.minimum(a.zyx.min(axis=0), b.zyx.min(axis=0)) - 1
    hi = np.maximum(a.zyx.max(axis=0), b.zyx.max(axis=0)) + 2
    mb = np.zeros(hi - lo, bool)
    ib = b.zyx - lo
    mb[ib[:, 0], ib[:, 1], ib[:, 2]] = True
    mb = ndimage.binary_dilation(mb, structure=np.ones((3, 3, 3), bool))
    ia = a.zyx - lo
    return a.subset(mb[ia[:, 0], ia[:, 1], ia[:, 2]])


def intersection(a: Region, b: Region) -> Region:
    """Voxels of ``a`` that are also in ``b``."""
    mask, lo = b.crop()
    idx = a.zyx - lo
    ok = np.all((idx >= 0) & (idx < mask.shape), axis=1)
    keep = np.zeros(len(a), bool)
    keep[ok] = mask[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
    return a.subset(keep)


def within(a: Region, b: Region, mm: float) -> Region:
    """Voxels of ``a`` within ``mm`` of ``b``."""
    pad = int(np.ceil(mm / a.grid.spacing.min())) + 1
    mask, lo = b.crop(pad=pad)
    dist = ndimage.distance_transform_edt(~mask, sampling=a.grid.spacing[::-1])
    idx = a.zyx - lo
    ok = np.all((idx >= 0) & (idx < mask.shape), axis=1)
    keep = np.zeros(len(a), bool)
    keep[ok] = dist[idx[ok, 0], idx[ok, 1], idx[ok, 2]] <= mm
    return a.subset(keep)


def geodesic(region: Region, sources: np.ndarray) -> np.ndarray:
    """Shortest path length (mm) inside the region from the ``sources`` voxels, per voxel
    (26-neighbour steps; inf where unreachable)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    mask, lo = region.crop()
    index = np.full(mask.shape, -1, np.int64)
    idx = region.zyx - lo
    index[idx[:, 0], idx[:, 1], idx[:, 2]] = np.arange(len(region))
    rows, cols, lengths = [], [], []
    spacing = region.grid.spacing[::-1]
    for dz in (0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dz, dy, dx) <= (0, 0, 0):
                    continue
                shifted = idx + [dz, dy, dx]
                ok = np.all((shifted >= 0) & (shifted < mask.shape), axis=1)
                target = np.full(len(idx), -1)
                target[ok] = index[shifted[ok, 0], shifted[ok, 1], shifted[ok, 2]]
                ok = target >= 0
                rows.append(np.flatnonzero(ok))
                cols.append(target[ok])
                lengths.append(np.full(ok.sum(), float(np.linalg.norm(np.array([dz, dy, dx]) * spacing))))
    rows, cols, lengths = np.concatenate(rows), np.concatenate(cols), np.concatenate(lengths)
    graph = coo_matrix((lengths, (rows, cols)), shape=(len(region), len(region))).tocsr()
    dist = dijkstra(graph, directed=False, indices=np.flatnonzero(sources), min_only=True)
    return dist


def outside(a: Region, b: Region) -> Region:
    """Voxels of ``a`` not in ``b`` (a subtask's branch mask may overlap the total map's aorta)."""
    inside = intersection(a, b)
    if len(inside) == 0:
        return a
    mask, lo = inside.crop()
    idx = a.zyx - lo
    ok = np.all((idx >= 0) & (idx < mask.shape), axis=1)
    drop = np.zeros(len(a), bool)
    drop[ok] = mask[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
    return a.subset(~drop)


def largest_component(region: Region) -> Region:
    mask, lo = region.crop()
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return region
    sizes = np.bincount(labels.ravel())[1:]
    keep = labels == (np.argmax(sizes) + 1)
    idx = region.zyx - lo
    return region.subset(keep[idx[:, 0], idx[:, 1], idx[:, 2]])


def surface_voxels(region: Region) -> Region:
    mask, lo = region.crop()
    inner = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1))
    idx = region.zyx - lo
    return region.subset(~inner[idx[:, 0], idx[:, 1], idx[:, 2]])
