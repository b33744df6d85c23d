"""Numba kernel: sample regular 2D grids of continuous voxel indices from a 3D volume.

Matches SimpleITK's ``Resample`` with a linear or nearest-neighbour interpolator (checked against
SimpleITK 2.5 / ITK 5.4): a continuous index ``x`` along an axis of ``n`` voxels is inside when
``-0.5 <= x < n - 0.5``; inside that range linear interpolation clamps the neighbour indices to
``[0, n-1]`` (edge values extend over the outer half voxel), nearest rounds half up
(``floor(x + 0.5)``). Outside, the default value is written.

Two compiled drivers share one per-plane function: a parallel one (all cores) and a serial one
for small jobs and for processes forked after the parallel one ran (numba's OpenMP threading
layer is not fork-safe and terminates such a child). A lock serialises callers from several
Python threads: not every numba threading layer is thread-safe, and one call already uses every
core.
"""
from __future__ import annotations

import math
import os
import threading

from numba import njit, prange


@njit(cache=True, inline="always")
def _clamp(i, n):
    if i < 0:
        return 0
    if i > n - 1:
        return n - 1
    return i


@njit(cache=True, inline="always")
def _fill_plane(volume, corners, steps, size, default_value, nearest, out, p, c):
    """``out[p, v, u, c]`` = ``volume`` at index ``corners[p, c] + u*steps[p, c, 0] + v*steps[p, c, 1]``."""
    nz, ny, nx = volume.shape
    ci, cj, ck = corners[p, c, 0], corners[p, c, 1], corners[p, c, 2]
    ui, uj, uk = steps[p, c, 0, 0], steps[p, c, 0, 1], steps[p, c, 0, 2]
    vi, vj, vk = steps[p, c, 1, 0], steps[p, c, 1, 1], steps[p, c, 1, 2]
    for v in range(size):
        for u in range(size):
            x = ci + u * ui + v * vi
            y = cj + u * uj + v * vj
            z = ck + u * uk + v * vk
            if not (-0.5 <= x < nx - 0.5 and -0.5 <= y < ny - 0.5 and -0.5 <= z < nz - 0.5):
                out[p, v, u, c] = default_value
                continue
            if nearest:
                out[p, v, u, c] = volume[int(math.floor(z + 0.5)), int(math.floor(y + 0.5)), int(math.floor(x + 0.5))]
                continue
            x0f = math.floor(x)
            y0f = math.floor(y)
            z0f = math.floor(z)
            fx = x - x0f
            fy = y - y0f
            fz = z - z0f
            x0 = _clamp(int(x0f), nx)
            y0 = _clamp(int(y0f), ny)
            z0 = _clamp(int(z0f), nz)
            x1 = _clamp(int(x0f) + 1, nx)
            y1 = _clamp(int(y0f) + 1, ny)
            z1 = _clamp(int(z0f) + 1, nz)
            c00 = volume[z0, y0, x0] * (1.0 - fx) + volume[z0, y0, x1] * fx
            c01 = volume[z0, y1, x0] * (1.0 - fx) + volume[z0, y1, x1] * fx
            c10 = volume[z1, y0, x0] * (1.0 - fx) + volume[z1, y0, x1] * fx
            c11 = volume[z1, y1, x0] * (1.0 - fx) + volume[z1, y1, x1] * fx
            c0 = c00 * (1.0 - fy) + c01 * fy
            c1 = c10 * (1.0 - fy) + c11 * fy
            out[p, v, u, c] = c0 * (1.0 - fz) + c1 * fz


@njit(parallel=True, cache=True, nogil=True)
def _sample_parallel(volume, corners, steps, size, default_value, nearest, out):
    n_planes = corners.shape[1]
    for task in prange(corners.shape[0] * n_planes):
        _fill_plane(volume, corners, steps, size, default_value, nearest, out, task // n_planes, task % n_planes)


@njit(cache=True, nogil=True)
def _sample_serial(volume, corners, steps, size, default_value, nearest, out):
    n_planes = corners.shape[1]
    for task in range(corners.shape[0] * n_planes):
        _fill_plane(volume, corners, steps, size, default_value, nearest, out, task // n_planes, task % n_planes)


_lock = threading.Lock()
_parallel_used_in = None  # pid of the process that started the parallel thread pool
# below this many planes, waking the thread pool costs more than it saves
_MIN_PARALLEL_PLANES = 16


def sample_grids(volume, corners, steps, size, default_value, nearest, out):
    """Fill ``out[n, v, u, c]`` with ``volume`` sampled at ``corners[n, c] + u*steps[n, c, 0] + v*steps[n, c, 1]``.

    volume: (nz, ny, nx) any real dtype; corners: (N, C, 3) float64 continuous index (i, j, k) =
    (x, y, z) of pixel (u=0, v=0); steps: (N, C, 2, 3) float64 index change per pixel along u and
    v; out: (N, size, size, C) float32, returned.
    """
    global _parallel_used_in
    planes = corners.shape[0] * corners.shape[1]
    forked = _parallel_used_in is not None and _parallel_used_in != os.getpid()
    with _lock:
        if planes < _MIN_PARALLEL_PLANES or forked:
            _sample_serial(volume, corners, steps, size, default_value, nearest, out)
        else:
            _parallel_used_in = os.getpid()
            _sample_parallel(volume, corners, steps, size, default_value, nearest, out)
    return out
