"""The reference voxel grid and the voxel regions the rules work on.

Indices are (z, y, x) array order; points are voxel centres in LPS mm. Direction letters name
the patient directions (L, R, P, A, S, I) as LPS unit vectors.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

__all__ = ["DIRECTION", "ALL_FACES", "Grid", "Region"]


DIRECTION = {"L": (1, 0, 0), "R": (-1, 0, 0), "P": (0, 1, 0), "A": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1)}


ALL_FACES = "LRPASI"


class Grid:
    """Index <-> LPS geometry of the reference grid; indices are (z, y, x) array order."""

    def __init__(self, image: sitk.Image):
        self.image = image
        self.shape = tuple(reversed(image.GetSize()))
        self.origin = np.asarray(image.GetOrigin(), float)
        self.spacing = np.asarray(image.GetSpacing(), float)
        self.matrix = np.asarray(image.GetDirection(), float).reshape(3, 3) * self.spacing  # ijk -> LPS
        # outward direction letter of each face: (zyx axis, 0 | 1) -> letter
        self.faces = {}
        direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
        for a in range(3):
            column = direction[:, 2 - a]
            axis = int(np.argmax(np.abs(column)))
            plus = "LPS"[axis] if column[axis] > 0 else "RAI"[axis]
            minus = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}[plus]
            self.faces[(a, 1)], self.faces[(a, 0)] = plus, minus

    def to_lps(self, zyx) -> np.ndarray:
        zyx = np.asarray(zyx, float).reshape(-1, 3)
        return self.origin + zyx[:, ::-1] @ self.matrix.T

    def to_zyx(self, points) -> np.ndarray:
        points = np.asarray(points, float).reshape(-1, 3)
        return np.linalg.solve(self.matrix, (points - self.origin).T).T[:, ::-1]

    def half_voxel(self, d) -> float:
        """Half the voxel step along unit direction ``d`` (largest index-axis projection)."""
        return 0.5 * float(np.max(np.abs(np.asarray(d) @ self.matrix)))

    def touched(self, zyx: np.ndarray, letters: str) -> list[str]:
        out = []
        for (a, end), letter in self.faces.items():
            if letter in letters and len(zyx) and (zyx[:, a].min() == 0 if end == 0 else zyx[:, a].max() == self.shape[a] - 1):
                out.append(letter)
        return sorted(out)


class Region:
    """Voxels of one structure (or part of it): (z, y, x) indices plus their LPS points."""

    def __init__(self, grid: Grid, zyx: np.ndarray, name: str):
        self.grid, self.zyx, self.name = grid, np.asarray(zyx, np.int64).reshape(-1, 3), name
        self.points = grid.to_lps(self.zyx)

    def __len__(self):
        return len(self.zyx)

    def subset(self, keep, name=None) -> "Region":
        return Region(self.grid, self.zyx[keep], name or self.name)

    @property
    def centroid(self) -> np.ndarray:
        return self.points.mean(axis=0)

    def crop(self, pad: int = 1):
        """(bool mask, zyx offset) of the region's bounding box grown by ``pad`` voxels."""
        lo = self.zyx.min(axis=0) - pad
        hi = self.zyx.max(axis=0) + pad + 1
        mask = np.zeros(hi - lo, bool)
        idx = self.zyx - lo
        mask[idx[:, 0], idx[:, 1], idx[:, 2]] = True
        return mask, lo
