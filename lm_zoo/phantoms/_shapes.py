"""Solid primitives and a painter for geometry phantoms drawn in anatomy space.

A phantom is a list of (shape, value) pairs painted in order onto a volume whose voxels carry
their anatomy-space coordinates (three float32 arrays X, Y, Z, already warped by pose and
deformation). Each shape reports an anatomy-space bounding box so that it is evaluated only on
the sub-block of voxels that can reach it; this keeps a 10-million-voxel torso around a second.

Ellipsoids and cylinders are affine images of the unit sphere / unit cylinder
(``x = centre + M @ u``), so any rotation or anisotropic scaling of a shape stays exact.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "Ellipsoid", "Cylinder", "Capsule", "Section", "Intersect", "Difference", "HalfSpace",
    "tube", "rotation", "random_rotation", "ellipsoid_extreme", "Painter",
]

_INF = 1e9


def rotation(rx_deg=0.0, ry_deg=0.0, rz_deg=0.0) -> np.ndarray:
    """Rotation matrix applying rx about x, then ry about y, then rz about z (degrees)."""
    ax, ay, az = np.deg2rad([rx_deg, ry_deg, rz_deg])
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rotation(rng) -> np.ndarray:
    """A uniformly random rotation (or reflection) matrix: Q of the QR of a Gaussian matrix."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def ellipsoid_extreme(centre, matrix, direction) -> np.ndarray:
    """Surface point of the ellipsoid ``centre + M u (|u| = 1)`` furthest along ``direction``."""
    m = np.asarray(matrix, float)
    d = np.asarray(direction, float)
    g = m.T @ d
    return np.asarray(centre, float) + m @ (g / np.linalg.norm(g))


@njit(inline="always")
def _offset(x, y, z, i, j, k, c):
    """Voxel (i, j, k)'s anatomy point minus the shape's reference point ``c``."""
    return x[i, j, k] - c[0], y[i, j, k] - c[1], z[i, j, k] - c[2]


@njit(cache=True, nogil=True)
def _quadric_kernel(x, y, z, c, inv, cylinder, out):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for k in range(x.shape[2]):
                dx, dy, dz = _offset(x, y, z, i, j, k, c)
                u = inv[0, 0] * dx + inv[0, 1] * dy + inv[0, 2] * dz
                v = inv[1, 0] * dx + inv[1, 1] * dy + inv[1, 2] * dz
                w = inv[2, 0] * dx + inv[2, 1] * dy + inv[2, 2] * dz
                if cylinder:
                    out[i, j, k] = u * u + v * v <= 1.0 and abs(w) <= 1.0
                else:
                    out[i, j, k] = u * u + v * v + w * w <= 1.0


@njit(cache=True, nogil=True)
def _capsule_kernel(x, y, z, p0, v, r0, dr, out):
    vv = max(v[0] * v[0] + v[1] * v[1] + v[2] * v[2], 1e-9)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for k in range(x.shape[2]):
                dx, dy, dz = _offset(x, y, z, i, j, k, p0)
                t = (dx * v[0] + dy * v[1] + dz * v[2]) / vv
                t = min(max(t, 0.0), 1.0)
                ex = dx - t * v[0]
                ey = dy - t * v[1]
                ez = dz - t * v[2]
                r = r0 + t * dr
                out[i, j, k] = ex * ex + ey * ey + ez * ez <= r * r


class Shape:
    def bbox(self):
        raise NotImplementedError

    def mask(self, x, y, z):
        raise NotImplementedError

    def block_mask(self, painter, sl):
        """Mask on the voxel block ``sl`` of ``painter``; composite and cached shapes override it."""
        return self.mask(painter.x[sl], painter.y[sl], painter.z[sl])


class _Affine(Shape):
    def __init__(self, centre, semi, rot=None):
        self.centre = np.asarray(centre, float)
        r = np.eye(3) if rot is None else np.asarray(rot, float)
        self.matrix = r * np.asarray(semi, float)[None, :]
        self.inverse = np.linalg.inv(self.matrix)

    _cylinder = False

    def mask(self, x, y, z):
        out = np.empty(x.shape, bool)
        _quadric_kernel(x, y, z, self.centre.astype(np.float32), self.inverse.astype(np.float32), self._cylinder, out)
        return out


class Ellipsoid(_Affine):
    """``centre + rot @ diag(semi) @ u`` for |u| <= 1."""

    def bbox(self):
        half = np.sqrt((self.matrix ** 2).sum(axis=1))
        return self.centre - half, self.centre + half

    def extreme(self, direction):
        return ellipsoid_extreme(self.centre, self.matrix, direction)

    def point(self, u):
        """The point at local coordinates u (|u| = 1 is the surface)."""
        return self.centre + self.matrix @ np.asarray(u, float)


class Cylinder(_Affine):
    """Elliptic cylinder: local axes 0, 1 span the cross-section, local axis 2 the height
    (``semi[2]`` is half the height)."""

    def bbox(self):
        m = self.matrix
        half = np.sqrt(m[:, 0] ** 2 + m[:, 1] ** 2) + np.abs(m[:, 2])
        return self.centre - half, self.centre + half

    _cylinder = True


class Capsule(Shape):
    """Segment p0-p1 swept by a sphere whose radius goes linearly from r0 to r1."""

    def __init__(self, p0, p1, r0, r1):
        self.p0, self.p1 = np.asarray(p0, float), np.asarray(p1, float)
        self.r0, self.r1 = float(r0), float(r1)

    def bbox(self):
        r = max(self.r0, self.r1)
        return np.minimum(self.p0, self.p1) - r, np.maximum(self.p0, self.p1) + r

    def mask(self, x, y, z):
        out = np.empty(x.shape, bool)
        _capsule_kernel(x, y, z, self.p0.astype(np.float32), (self.p1 - self.p0).astype(np.float32),
                        np.float32(self.r0), np.float32(self.r1 - self.r0), out)
        return out


def tube(points, radii) -> list[Capsule]:
    """A tube along a polyline as a list of capsules (painted one by one: painting is a union)."""
    points = np.asarray(points, float)
    radii = np.broadcast_to(np.asarray(radii, float), (len(points),))
    return [Capsule(points[i], points[i + 1], radii[i], radii[i + 1]) for i in range(len(points) - 1)]


@njit(cache=True, nogil=True)
def _section_kernel(x, y, z, z0, a_inv, ba_inv, bp_inv, yc, zlo, zhi, out):
    n = a_inv.shape[0]
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for k in range(x.shape[2]):
                zz = z[i, j, k]
                if zz < zlo or zz > zhi:
                    out[i, j, k] = False
                    continue
                t = int(zz - z0 + 0.5)
                t = min(max(t, 0), n - 1)
                dy = y[i, j, k] - yc[t]
                v = dy * (ba_inv[t] if dy < 0 else bp_inv[t])
                w = x[i, j, k] * a_inv[t]
                out[i, j, k] = w * w + v * v <= 1.0


class Section(Shape):
    """A body-like solid: at height z an ellipse of half-width ``a(z)``, anterior half-depth
    ``b_ant(z)`` and posterior half-depth ``b_post(z)`` about the centre ``(0, yc(z))``, minus an
    inward ``offset`` mm; tabulated every 1 mm in z and looked up, not interpolated per voxel.

    Sections are large (the whole body), so a painter computes each one once and reuses it for
    every intersection with it.
    """

    def __init__(self, z_nodes, a, b_ant, b_post, yc, offset=0.0, z_range=None):
        z_nodes = np.asarray(z_nodes, float)
        self.z0 = float(z_nodes[0])
        zs = np.arange(z_nodes[0], z_nodes[-1] + 1.0)
        self.a, self.b_ant, self.b_post, self.yc = (
            np.maximum(np.interp(zs, z_nodes, t) - off, 1.0).astype(np.float32)
            if off is not None else np.interp(zs, z_nodes, t).astype(np.float32)
            for t, off in ((a, offset), (b_ant, offset), (b_post, offset), (yc, None))
        )
        self.z_range = (-np.inf, np.inf) if z_range is None else tuple(z_range)

    def bbox(self):
        zlo, zhi = max(self.z_range[0], self.z0), min(self.z_range[1], self.z0 + len(self.a) - 1)
        return (np.array([-self.a.max(), (self.yc - self.b_ant).min(), zlo]),
                np.array([self.a.max(), (self.yc + self.b_post).max(), zhi]))

    def mask(self, x, y, z):
        out = np.empty(x.shape, bool)
        _section_kernel(x, y, z, np.float32(self.z0), 1 / self.a, 1 / self.b_ant, 1 / self.b_post, self.yc,
                        np.float32(self.z_range[0]), np.float32(self.z_range[1]), out)
        return out

    def block_mask(self, painter, sl):
        return painter.full_mask(self)[sl]


class HalfSpace(Shape):
    """Points with ``(p - point) . normal >= 0``; only useful inside :class:`Intersect`."""

    def __init__(self, point, normal):
        self.point, self.normal = np.asarray(point, float), np.asarray(normal, float)

    def bbox(self):
        return np.full(3, -_INF), np.full(3, _INF)

    def mask(self, x, y, z):
        p, n = self.point, self.normal.astype(np.float32)
        return (x - np.float32(p[0])) * n[0] + (y - np.float32(p[1])) * n[1] + (z - np.float32(p[2])) * n[2] >= 0


class Intersect(Shape):
    def __init__(self, *shapes):
        self.shapes = shapes

    def bbox(self):
        boxes = [s.bbox() for s in self.shapes]
        return np.max([b[0] for b in boxes], axis=0), np.min([b[1] for b in boxes], axis=0)

    def mask(self, x, y, z):
        m = self.shapes[0].mask(x, y, z)
        for s in self.shapes[1:]:
            m &= s.mask(x, y, z)
        return m

    def block_mask(self, painter, sl):
        m = self.shapes[0].block_mask(painter, sl).copy()
        for s in self.shapes[1:]:
            m &= s.block_mask(painter, sl)
        return m


class Difference(Shape):
    def __init__(self, base, *holes):
        self.base, self.holes = base, holes

    def bbox(self):
        return self.base.bbox()

    def mask(self, x, y, z):
        m = self.base.mask(x, y, z)
        for h in self.holes:
            m &= ~h.mask(x, y, z)
        return m

    def block_mask(self, painter, sl):
        m = self.base.block_mask(painter, sl).copy()
        for h in self.holes:
            m &= ~h.block_mask(painter, sl)
        return m


class Painter:
    """Paints shapes onto ``volume`` (z, y, x) whose voxels sit at anatomy coordinates X, Y, Z.

    ``to_index(lo, hi)`` maps an anatomy-space box to a conservative voxel box
    ``(lo_zyx, hi_zyx)`` (inclusive-exclusive), the caller's knowledge of pose and deformation.
    """

    def __init__(self, volume, x, y, z, to_index):
        self.volume, self.x, self.y, self.z = volume, x, y, z
        self.to_index = to_index
        self._full = {}

    def full_mask(self, shape):
        """``shape``'s mask over the whole volume, computed once."""
        key = id(shape)
        if key not in self._full:
            self._full[key] = (shape, shape.mask(self.x, self.y, self.z))
        return self._full[key][1]

    def paint(self, shapes, value):
        if isinstance(shapes, Shape):
            shapes = [shapes]
        for shape in shapes:
            lo, hi = shape.bbox()
            if np.any(lo > hi):
                continue
            ilo, ihi = self.to_index(lo, hi)
            if np.any(ihi <= ilo):
                continue
            sl = tuple(slice(a, b) for a, b in zip(ilo, ihi))
            m = shape.block_mask(self, sl)
            np.copyto(self.volume[sl], np.float32(value), where=m)
