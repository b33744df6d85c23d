"""Deterministic torso CT phantom (chest-abdomen-pelvis) with 60 named anatomical landmarks.

Anatomy is built from geometry in :mod:`lm_zoo.phantoms.torso_anatomy` (body wall and fat,
lungs with airways and vessel trees, heart, aorta with arch, visceral, renal and iliac branches,
IVC, liver, spleen, stomach, pancreas, kidneys, bowel, spine C7-L5 with discs and canal, sacrum,
ribs, sternum, clavicles, scapulae, pelvis and femora). A case is that anatomy seen through:

- a smooth non-rigid deformation: ``x = R (p - c) + a + d(u)`` maps a physical point ``p`` (LPS mm)
  to anatomy space, with a small rigid pose ``R`` and a low-frequency displacement ``d`` (sum of
  separable cosines of the grid-aligned coordinates ``u = D^T (p - c)``, |d| up to ~12 mm,
  Lipschitz constant <= 0.6 so the map is invertible). Voxels sample the anatomy at ``x``;
  landmarks are mapped the other way by fixed-point iteration, so they move with the anatomy;
- a scanner grid: per-case spacing, direction cosines (identity or a few degrees oblique), origin,
  in-plane field of view and scan range;
- CT physics light: tissue textures (trabecular bone: ~1 mm grain, s.d. 30-70 HU; organ and
  muscle parenchyma: ~3 mm grain, s.d. 3-9 HU), a smooth low-contrast texture (~6 HU), partial-
  volume / PSF Gaussian blur (sigma^2 = PSF^2 + (0.4 voxel)^2) and noise (6-30 HU after blur;
  added before the blur, so it is correlated like CT noise: neighbour correlation ~0.4 at ~1.5 mm),
  rounded to int16 HU. Phases: non-contrast, arterial, portal-venous.

Calibration against the shared real CTs (measured 2026-12-02 with ``/tmp`` scripts on
``shared/data``; medians and IQR of eroded label masks; example_ct is a non-contrast 3 mm scan):

==============================  ==========================================  =========================
tissue                          real (data)                                 phantom (non-contrast)
==============================  ==========================================  =========================
liver                           47 (38..55) example_ct                      42..65
spleen                          35 (27..43) example_ct                      35..55
kidney                          14..20 (3..29) example_ct (3 mm PV)         20..40
aorta / IVC (no contrast)       44 (35..52) / 42 (34..51) example_ct        35..50
psoas muscle                    52 (39..63) example_ct                      35..60
fat                             -97 (-110..-77) example_ct; -113/-107 lung1/2  -120..-85
lung parenchyma                 -871 (-899..-833) lung1; -839 lung2          -890..-820
lumbar vertebra interior        108 (87..129) example_ct                    cancellous 100..260 + texture
lumbar vertebra outer layer     251 (192..345), p90 483 example_ct (3 mm)   shell 1.5 mm at 0.7 x (700..1200)
bone > 300 HU                   p50 429-440, p90 741-764 lung1/2 (0.6 mm)   -
noise s.d.                      11.6 (liver, 3 mm, lag-1 corr ~0);          6..30
                                6-9 HU (fat/muscle, 0.6 mm in-plane,
                                corr 0.8 / 0.5 / 0.2 at lags 0.6/1.2/1.8 mm,
                                0.1-0.2 between 5 mm slices) lung1/2
==============================  ==========================================  =========================

Nothing marks a landmark in the image: each is a point of the drawn anatomy (an organ's extreme
point, a vessel's branching point, a bone centre), and many share their local intensity (18
vertebral bodies, a dozen points in contrast-filled arteries).

Landmark sets (``LANDMARKS``, ``LM60``, ``LM20``) are the vocabulary of :mod:`lm_zoo.anatomy`,
re-exported here; this module draws them.

Default spacing ("cohort" resolution) is about 1.5 mm in-plane with 1.5-3 mm slices, for
dataset-building speed; ``resolution="clinical"`` draws 0.6-1 mm in-plane and 1-5 mm slices.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from numba import njit
from scipy import ndimage

from lm_zoo._atomic import atomic_path
from lm_zoo.anatomy import LANDMARKS, LM20, LM60, VERTEBRAE
from lm_zoo.errors import CohortError
from lm_zoo.figures import new_figure, save_png
from lm_zoo.io import continuous_index
from lm_zoo.parallel import map_ordered
from lm_zoo.phantoms._cohort_files import prepare_cohort_dir, write_text
from lm_zoo.phantoms._shapes import Painter, rotation
from lm_zoo.phantoms.torso_anatomy import PHASES, TEXTURE_BONE, TEXTURE_ORGAN, build_anatomy

__all__ = [
    "LANDMARKS", "LM60", "LM20", "CohortError", "case_id", "case_seed", "generate_case",
    "write_cohort", "save_case_montage", "RESOLUTIONS",
]

# (in-plane range, slice range) in mm
RESOLUTIONS = {"cohort": ((1.4, 1.6), (1.5, 3.0)), "clinical": ((0.6, 1.0), (1.0, 5.0))}
_MAX_HU, _MIN_HU = 3071, -1024


def case_id(i: int) -> str:
    return f"phantom_ct_{int(i):04d}"


def case_seed(seed: int, i: int) -> int:
    """Seed of case ``i`` of a cohort drawn with ``seed``: independent of the cohort size."""
    from lm_zoo.seeds import case_seed as _seed

    return _seed(seed, i, bits=63)


@dataclass
class _Geometry:
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    size: tuple            # (nx, ny, nz)
    pose: np.ndarray       # R
    p_centre: np.ndarray   # c
    a_centre: np.ndarray   # a
    deform: np.ndarray     # (3 components, K terms, 7): amp, wx, px, wy, py, wz, pz

    def displacement(self, u):
        """d(u) for grid-aligned mm coordinates u = D^T (p - c), (N, 3)."""
        u = np.atleast_2d(u)
        out = np.zeros_like(u)
        for c in range(3):
            for amp, wx, px, wy, py, wz, pz in self.deform[c]:
                out[:, c] += amp * np.cos(wx * u[:, 0] + px) * np.cos(wy * u[:, 1] + py) * np.cos(wz * u[:, 2] + pz)
        return out

    def to_anatomy(self, p):
        p = np.atleast_2d(np.asarray(p, float))
        u = (p - self.p_centre) @ self.direction
        return (p - self.p_centre) @ self.pose.T + self.a_centre + self.displacement(u)

    def to_physical(self, x, iterations=60):
        """Inverse of :meth:`to_anatomy` by fixed-point iteration (d is a contraction)."""
        x = np.atleast_2d(np.asarray(x, float))
        p = self.p_centre + (x - self.a_centre) @ self.pose
        for _ in range(iterations):
            u = (p - self.p_centre) @ self.direction
            p_new = self.p_centre + (x - self.displacement(u) - self.a_centre) @ self.pose
            if np.max(np.abs(p_new - p)) < 1e-9:
                return p_new
            p = p_new
        return p

    def max_displacement(self):
        return np.abs(self.deform[:, :, 0]).sum(axis=1)

    def coordinates(self):
        """Anatomy coordinates X, Y, Z of every voxel, float32 (z, y, x) arrays.

        The map is affine in the voxel index plus separable cosine terms, so each component is
        a sum of outer products of 1-D tables, fused into one pass by :func:`_coords_kernel`.
        """
        nx, ny, nz = self.size
        idx = [np.arange(n, dtype=np.float64) for n in (nx, ny, nz)]
        offset = (self.origin - self.p_centre) @ self.direction
        u = [idx[a] * self.spacing[a] + offset[a] for a in range(3)]
        A = self.pose @ self.direction @ np.diag(self.spacing)
        b = self.pose @ (self.origin - self.p_centre) + self.a_centre
        K = self.deform.shape[1]
        zy = np.empty((3, nz, ny), np.float32)
        xi = np.empty((3, nx), np.float32)
        fzy = np.empty((3, K, nz, ny), np.float32)
        fx = np.empty((3, K, nx), np.float32)
        for c in range(3):
            zy[c] = (A[c, 2] * idx[2] + b[c])[:, None] + (A[c, 1] * idx[1])[None, :]
            xi[c] = A[c, 0] * idx[0]
            for k, (amp, wx, px, wy, py, wz, pz) in enumerate(self.deform[c]):
                fzy[c, k] = (amp * np.cos(wz * u[2] + pz))[:, None] * np.cos(wy * u[1] + py)[None, :]
                fx[c, k] = np.cos(wx * u[0] + px)
        out = np.empty((3, nz, ny, nx), np.float32)
        _coords_kernel(zy, xi, fzy, fx, out)
        return out[0], out[1], out[2]

    def box_to_index(self, lo, hi):
        """Conservative voxel box (z, y, x order) holding every voxel whose anatomy point can lie in [lo, hi]."""
        if not hasattr(self, "_box_cache"):
            self._box_cache = (
                self.max_displacement() + 1.0,
                (self.pose @ self.direction) / self.spacing,
                ((self.p_centre - self.origin) @ self.direction) / self.spacing,
                np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], bool),
                np.array(self.size),
            )
        pad, m, shift, corner_sel, size = self._box_cache
        lo = np.clip(np.asarray(lo, float) - pad, -1e5, 1e5)
        hi = np.clip(np.asarray(hi, float) + pad, -1e5, 1e5)
        ijk = (np.where(corner_sel, hi, lo) - self.a_centre) @ m + shift
        ilo = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 1, 0, size)
        ihi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 2, 0, size)
        return ilo[::-1], ihi[::-1]


@njit(cache=True, nogil=True)
def _coords_kernel(zy, xi, fzy, fx, out):
    K = fzy.shape[1]
    for c in range(out.shape[0]):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                base = zy[c, i, j]
                for k in range(out.shape[3]):
                    v = base + xi[c, k]
                    for t in range(K):
                        v += fzy[c, t, i, j] * fx[c, t, k]
                    out[c, i, j, k] = v


def _draw_spacing(rng, resolution, spacing_mm):
    if spacing_mm is not None:
        s = np.broadcast_to(np.asarray(spacing_mm, float), (3,)).copy() if np.ndim(spacing_mm) == 0 else np.asarray(spacing_mm, float)
        if s.shape != (3,) or not np.all(np.isfinite(s)) or np.any(s < 0.3) or np.any(s > 10):
            raise ValueError(f"spacing_mm must be one number or (x, y, z), each in 0.3..10 mm; got {spacing_mm!r}")
        rng.random(2)  # keep the stream aligned with drawn spacings
        return s
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {sorted(RESOLUTIONS)}, got {resolution!r}")
    (a0, a1), (z0, z1) = RESOLUTIONS[resolution]
    inplane, slice_ = rng.uniform(a0, a1), rng.uniform(z0, z1)
    return np.array([inplane, inplane, slice_])


def _draw_geometry(rng, anatomy, spacing):
    u = rng.uniform
    oblique = rng.random() < 0.5
    direction = rotation(u(-2, 2), u(-2, 2), u(-4, 4)) if oblique else np.eye(3)
    pose = rotation(u(-5, 5), u(-5, 5), u(-7, 7))
    lo, hi = anatomy.extent
    lo, hi = lo.copy(), hi.copy()
    lo[2], hi[2] = anatomy.scan_z
    a_box_centre = (lo + hi) / 2
    a_centre = a_box_centre + np.array([u(-15, 15), u(-15, 15), 0])
    p_centre = np.array([u(-30, 30), u(-30, 30), u(-400, 100)])
    # deformation: K separable cosine terms per component, wavelengths 150-500 mm
    K = 3
    deform = np.zeros((3, K, 7))
    for c in range(3):
        for k in range(K):
            w = 2 * np.pi / rng.uniform(150, 500, 3)
            deform[c, k] = [rng.normal(0, 8.0), w[0], u(0, 2 * np.pi), w[1], u(0, 2 * np.pi), w[2], u(0, 2 * np.pi)]
    # keep (a bound on) the Lipschitz constant of d below 0.6: invertible, fixed point converges
    lip = np.sqrt(sum((np.abs(deform[c, :, 0]) * np.linalg.norm(deform[c, :, 1::2], axis=1)).sum() ** 2 for c in range(3)))
    if lip > 0.6:
        deform[:, :, 0] *= 0.6 / lip
    margin = np.array([u(8, 25), u(8, 25), 0.0])
    corners = np.array([[(lo, hi)[i][0], (lo, hi)[j][1], (lo, hi)[k][2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    g = ((corners - a_centre) @ pose) @ direction  # grid-axis offsets from p_centre
    half = np.maximum(np.abs(g.min(axis=0)), np.abs(g.max(axis=0))) + margin
    half[:2] += np.abs(deform[:2, :, 0]).sum(axis=1)
    size = np.ceil(2 * half / spacing).astype(int) + 1
    origin = p_centre - direction @ (spacing * (size - 1) / 2)
    return _Geometry(origin, spacing, direction, tuple(int(s) for s in size), pose, p_centre, a_centre, deform)


def _add_table(volume, spacing, value):
    """The patient table: a 10 mm slab 3 mm below the lowest body voxel, in scanner axes (the
    table does not turn with the patient)."""
    rows = np.flatnonzero((volume > -500).any(axis=(0, 2)))
    if rows.size == 0:
        return
    j0 = rows.max() + 1 + int(np.ceil(3.0 / spacing[1]))
    j1 = min(j0 + int(np.ceil(10.0 / spacing[1])), volume.shape[1])
    nx = volume.shape[2]
    half = min(nx // 2, int(210 / spacing[0]))
    block = volume[:, j0:j1, nx // 2 - half:nx // 2 + half]
    np.copyto(block, np.float32(value), where=block < -900)


def _add_texture(volume, buffer, spacing, rng):
    """Smooth random intensity variation (s.d. ~6 HU, 15-60 mm wavelengths): tissue is not flat.
    A sum of separable cosine products, like the deformation, computed into ``buffer``."""
    nz, ny, nx = volume.shape
    K = 4
    amp = rng.normal(0, 6.0 / np.sqrt(K / 8), K)  # E[cos^2]^3 = 1/8 per term
    w = 2 * np.pi / rng.uniform(15, 60, (K, 3))
    ph = rng.uniform(0, 2 * np.pi, (K, 3))
    axes = [np.arange(n) * s for n, s in zip((nx, ny, nz), spacing)]
    fzy = np.empty((1, K, nz, ny), np.float32)
    fx = np.empty((1, K, nx), np.float32)
    for k in range(K):
        fzy[0, k] = (amp[k] * np.cos(w[k, 2] * axes[2] + ph[k, 2]))[:, None] * np.cos(w[k, 1] * axes[1] + ph[k, 1])[None, :]
        fx[0, k] = np.cos(w[k, 0] * axes[0] + ph[k, 0])
    _coords_kernel(np.zeros((1, nz, ny), np.float32), np.zeros((1, nx), np.float32), fzy, fx, buffer[None])
    volume += buffer


def _blur_and_noise(volume, buffer, spacing, rng, noise_sd):
    """Partial-volume/PSF Gaussian blur plus noise of s.d. ``noise_sd`` HU, in place.

    The noise is uniform random bytes added *before* the blur and scaled by the blur's noise
    gain: cheaper than Gaussian draws, slightly correlated like CT noise, and near-Gaussian
    after the blur averages ~15 voxels. ``buffer`` (same shape, float32) is scratch space.
    """
    psf = rng.uniform(0.5, 0.8)
    sigma_mm = np.sqrt(psf ** 2 + (np.array([0.4, 0.4, 0.4]) * spacing) ** 2)
    sigma = (sigma_mm / spacing)[::-1]  # z, y, x
    if noise_sd > 0:
        impulse = np.zeros((9, 9, 9), np.float32)
        impulse[4, 4, 4] = 1
        gain = float(np.sqrt((ndimage.gaussian_filter(impulse, sigma, truncate=3.0) ** 2).sum()))
        noise = np.frombuffer(rng.bytes(volume.size), np.uint8).reshape(volume.shape)
        uniform_sd = np.sqrt((256 ** 2 - 1) / 12)
        np.multiply(noise, np.float32(noise_sd / gain / uniform_sd), out=buffer)
        volume += buffer
        volume -= np.float32(127.5 * noise_sd / gain / uniform_sd)
    ndimage.gaussian_filter1d(volume, sigma[2], axis=2, truncate=3.0, output=buffer)
    ndimage.gaussian_filter1d(buffer, sigma[1], axis=1, truncate=3.0, output=volume)
    ndimage.gaussian_filter1d(volume, sigma[0], axis=0, truncate=3.0, output=buffer)
    return buffer


def _phase(contrast, rng):
    """Contrast phase from the ``contrast`` argument; None draws none / arterial / portal-venous
    with probabilities 0.3 / 0.3 / 0.4 (portal-venous is the commonest clinical torso protocol)."""
    draw = rng.random()  # always drawn: the stream does not depend on the argument
    if contrast is None:
        return "none" if draw < 0.3 else ("arterial" if draw < 0.6 else "portal")
    return {True: "arterial", False: "none"}.get(contrast, contrast)


def _case_parts(seed, spacing_mm=None, resolution="cohort", contrast=None, deform=True):
    """(anatomy, geometry, noise rng) of a case: independent streams, so that the spacing or
    the phase never changes the anatomy, pose or deformation."""
    anat_ss, geo_ss, spacing_ss, noise_ss, phase_ss = np.random.SeedSequence(int(seed)).spawn(5)
    spacing = _draw_spacing(np.random.default_rng(spacing_ss), resolution, spacing_mm)
    phase = _phase(contrast, np.random.default_rng(phase_ss))
    anatomy = build_anatomy(np.random.default_rng(anat_ss), phase=phase)
    geo = _draw_geometry(np.random.default_rng(geo_ss), anatomy, spacing)
    if not deform:
        geo.deform[:, :, 0] = 0.0
    return anatomy, geo, np.random.default_rng(noise_ss)


def _texture_tile(rng, n: int, sigma: float) -> np.ndarray:
    """(n, n, n) periodic Gaussian-filtered white noise with unit s.d. (a texture to look up)."""
    tile = ndimage.gaussian_filter(rng.standard_normal((n, n, n)).astype(np.float32), sigma, mode="wrap")
    return tile / tile.std()


# (tile voxel in mm, filter sigma in tile voxels, s.d. range in HU): trabecular bone is fine and
# strong (real cancellous bone at ~1.5 mm voxels: s.d. 30-70 HU), organ parenchyma coarse and weak.
_TEXTURES = {TEXTURE_BONE: (1.0, 1.0, (30.0, 70.0)), TEXTURE_ORGAN: (2.0, 1.5, (3.0, 9.0))}
_TILE = 48


def _apply_texture(volume, x, y, z, rng, enabled: bool):
    """Decode the texture codes painted by the anatomy (``value + TEXTURE_*``) and, when
    ``enabled``, add the texture, looked up by anatomy coordinates (it moves with the anatomy)."""
    flat = np.flatnonzero(volume.ravel() > 5000)
    tiles = {code: (_texture_tile(rng, _TILE, sig), mm, rng.uniform(*sd)) for code, (mm, sig, sd) in _TEXTURES.items()}
    if flat.size == 0:
        return
    v = volume.ravel()[flat]
    code = np.rint(v * 1e-4) * 1e4
    v -= code
    if enabled:
        for c, (tile, mm, sd) in tiles.items():
            sel = code == c
            f = flat[sel]
            ijk = [np.floor(a.ravel()[f] / mm).astype(np.int64) % _TILE for a in (z, y, x)]
            v[sel] += np.float32(sd) * tile[ijk[0], ijk[1], ijk[2]]
    volume.ravel()[flat] = v


def _rasterise_structures(anatomy, x, y, z, to_index, geo) -> dict:
    """TotalSegmentator-compatible label maps {task: SimpleITK UInt8 image} of the anatomy's
    ``structures`` (ids and names of :mod:`lm_zoo.totalsegmentator`), on the case's grid."""
    from lm_zoo.totalsegmentator import KNOWN_STRUCTURES, TASKS

    scratch = np.zeros(x.shape, np.float32)
    maps = {}
    for task, classes in TASKS.items():
        ids = {name: i for i, name in classes.items()}
        names = [n for n in anatomy.structures if KNOWN_STRUCTURES.get(n) == task and n in ids]
        if not names:
            continue
        scratch[:] = 0
        painter = Painter(scratch, x, y, z, to_index)
        for name in names:
            painter.paint(anatomy.structures[name], ids[name])
        image = sitk.GetImageFromArray(scratch.astype(np.uint8))
        image.SetSpacing([float(s) for s in geo.spacing])
        image.SetOrigin([float(o) for o in geo.origin])
        image.SetDirection([float(d) for d in geo.direction.ravel()])
        maps[task] = image
    return maps


def generate_case(seed: int, *, spacing_mm=None, resolution: str = "cohort", deform: bool = True,
                  noise: bool = True, contrast: bool | str | None = None, with_segmentation: bool = False):
    """One torso CT phantom case.

    Args:
        seed: non-negative int; the same seed and arguments give the same bytes.
        spacing_mm: voxel size, one number or (x, y, z) mm; None draws it from ``resolution``.
            The anatomy, pose and deformation do not depend on it.
        resolution: "cohort" (~1.5 mm in-plane, 1.5-3 mm slices) or "clinical" (0.6-1 mm, 1-5 mm).
        deform: apply the smooth non-rigid deformation (False: pose only; for tests).
        noise: add CT noise (6-30 HU s.d.), the smooth texture (~6 HU) and the tissue textures
            (trabecular bone, organ parenchyma); False gives flat tissue values.
        contrast: True / "arterial" arterial phase, "portal" portal-venous phase, False / "none"
            non-contrast; None draws it (0.3 none, 0.3 arterial, 0.4 portal-venous). Only tissue
            values change with it.
        with_segmentation: also return the anatomy as TotalSegmentator-compatible label maps.

    Returns:
        (SimpleITK.Image int16 HU, lm_zoo.landmarks.Landmarks with the names of ``LM60`` in LPS mm),
        plus, with ``with_segmentation``, a dict {task: UInt8 label image on the CT grid}: ``"total"``
        (TotalSegmentator v2 ids) and the subtasks ``vertebrae_body``, ``renal_arteries``,
        ``aorta_annulus``, ``pulmonary_artery_landmarks`` (drawn from the same shapes as the CT),
        which :func:`lm_zoo.landmarks.landmarks_from_segmentation` accepts as is.
    """
    from lm_zoo.landmarks import Landmarks

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not (contrast is None or isinstance(contrast, bool) or contrast in PHASES):
        raise ValueError(f"contrast must be True (arterial), False (none), None (drawn) or one of {PHASES}, got {contrast!r}")
    anatomy, geo, noise_rng = _case_parts(seed, spacing_mm, resolution, contrast, deform)
    spacing = geo.spacing

    x, y, z = geo.coordinates()
    volume = np.full(x.shape, -1000.0, np.float32)
    painter = Painter(volume, x, y, z, geo.box_to_index)
    for shapes, value in anatomy.paints:
        painter.paint(shapes, value)
    _apply_texture(volume, x, y, z, noise_rng, noise)
    segmentation = _rasterise_structures(anatomy, x, y, z, geo.box_to_index, geo) if with_segmentation else None
    del y, z, painter
    _add_table(volume, spacing, anatomy.table_hu)

    noise_sd = noise_rng.uniform(6, 30)
    if noise:
        _add_texture(volume, x, spacing, noise_rng)
    volume = _blur_and_noise(volume, x, spacing, noise_rng, noise_sd if noise else 0.0)
    np.rint(volume, out=volume)
    np.clip(volume, _MIN_HU, _MAX_HU, out=volume)

    image = sitk.GetImageFromArray(volume.astype(np.int16))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in geo.origin])
    image.SetDirection([float(d) for d in geo.direction.ravel()])

    names = [n for n in LM60 if n in anatomy.landmarks]
    missing = sorted(set(LM60) - set(names))
    if missing:  # a programming error in the anatomy, not a user error
        raise RuntimeError(f"torso phantom seed {seed}: landmarks not defined: {missing}")
    points = geo.to_physical(np.array([anatomy.landmarks[n] for n in names]))
    if with_segmentation:
        return image, Landmarks(names, points), segmentation
    return image, Landmarks(names, points)


# ---------------------------------------------------------------- pictures

def save_case_montage(image, landmarks, path, title: str | None = None, names: bool = True):
    """PNG of a coronal and a sagittal plane through the landmarks' median point, an axial plane
    at the renal hila (or the median landmark) and a coronal bone MIP, each with every landmark
    projected onto it (filled: within 15 mm of the plane). Planes follow the voxel axes."""
    arr = sitk.GetArrayViewFromImage(image)
    sx, sy, sz = image.GetSpacing()
    idx = continuous_index(image, landmarks.points)
    med = np.median(idx, axis=0)
    nz, ny, nx = arr.shape
    jy, ix = int(np.clip(round(med[1]), 0, ny - 1)), int(np.clip(round(med[0]), 0, nx - 1))
    hila = [i for i, n in enumerate(landmarks.names) if n.endswith("_hilum")]
    kz = int(np.clip(round(np.median(idx[hila, 2]) if hila else med[2]), 0, nz - 1))
    panels = [
        ("coronal", arr[:, jy, :], idx[:, 0], idx[:, 2], np.abs(idx[:, 1] - jy) * sy, (0, nx * sx)),
        ("sagittal", arr[:, :, ix], idx[:, 1], idx[:, 2], np.abs(idx[:, 0] - ix) * sx, (0, ny * sy)),
        ("coronal bone MIP", arr.max(axis=1), idx[:, 0], idx[:, 2], np.zeros(len(idx)), (0, nx * sx)),
    ]
    fig, axes = new_figure(1, 4, figsize=(22, 10), gridspec_kw={"width_ratios": [1, 1, 1.3, 1]})
    axial = axes[2]
    axes = [axes[0], axes[1], axes[3]]
    axial.imshow(arr[kz], cmap="gray", vmin=-1000, vmax=500, extent=(0, nx * sx, ny * sy, 0))
    near = np.abs(idx[:, 2] - kz) * sz < 15
    axial.scatter(idx[near, 0] * sx, idx[near, 1] * sy, s=22, c="red", edgecolors="yellow", linewidths=0.5)
    for n, xx, yy in zip(np.array(landmarks.names)[near], idx[near, 0] * sx, idx[near, 1] * sy):
        axial.annotate(n, (xx, yy), fontsize=6, color="cyan", xytext=(3, 2), textcoords="offset points")
    axial.set_title("axial (patient left on the right, anterior up)")
    axial.set_xlabel("mm (voxel axis)")
    for ax, (label, plane, cu, cv, dist, (u0, u1)) in zip(axes, panels):
        window = (-200, 1200) if "MIP" in label else (-1000, 500)
        # rows are z (inferior first): flip so that superior is up; columns along the plane
        ax.imshow(plane[::-1], cmap="gray", vmin=window[0], vmax=window[1], extent=(u0, u1, 0, nz * sz), aspect="equal")
        spacing_u = sx if label != "sagittal" else sy
        xs, zs = cu * spacing_u, cv * sz
        near = dist < 15
        ax.scatter(xs[near], zs[near], s=22, c="red", edgecolors="yellow", linewidths=0.5)
        ax.scatter(xs[~near], zs[~near], s=22, facecolors="none", edgecolors="orange", linewidths=0.8)
        if names and label == "coronal":
            for n, xx, zz in zip(landmarks.names, xs, zs):
                ax.annotate(n, (xx, zz), fontsize=5, color="cyan", xytext=(3, 2), textcoords="offset points")
        ax.set_title(label)
        ax.set_xlabel("mm (voxel axis)")
    fig.suptitle(title or "torso CT phantom (synthetic data)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_png(fig, path, dpi=80)


# ---------------------------------------------------------------- cohorts

def _remove_cohort_files(out_dir: Path):
    """Delete the files an earlier torso cohort wrote in ``out_dir`` (and nothing else)."""
    for sub, pattern in (("images", "phantom_ct_*.nii.gz"), ("landmarks", "phantom_ct_*.csv"), ("montages", "phantom_ct_*.png"),
                         ("segmentations", "phantom_ct_*.nii.gz")):
        for f in (out_dir / sub).glob(pattern):
            f.unlink()
    for name in ("cases.txt", "landmark_definitions.csv"):
        (out_dir / name).unlink(missing_ok=True)


def _write_case(out_dir: str, i: int, *, seed: int, kwargs: dict, n_montage: int, segmentation: bool = False) -> str:
    """Generate and write case ``i`` (a montage when ``i < n_montage``); returns its id."""
    from lm_zoo.landmarks import write_landmarks

    out = Path(out_dir)
    cid = case_id(i)
    montage = i < n_montage
    if segmentation:
        image, landmarks, seg = generate_case(case_seed(seed, i), with_segmentation=True, **kwargs)
    else:
        image, landmarks = generate_case(case_seed(seed, i), **kwargs)
    img_path = out / "images" / f"{cid}.nii.gz"
    seg_path = out / "segmentations" / f"{cid}.nii.gz"
    try:
        with atomic_path(img_path) as tmp:
            sitk.WriteImage(image, str(tmp), True)
            if segmentation:
                seg_path.parent.mkdir(exist_ok=True)
                with atomic_path(seg_path) as seg_tmp:
                    sitk.WriteImage(seg["total"], str(seg_tmp), True)
            write_landmarks(out / "landmarks" / f"{cid}.csv", landmarks)
    except BaseException:
        (out / "landmarks" / f"{cid}.csv").unlink(missing_ok=True)
        seg_path.unlink(missing_ok=True)
        raise
    if montage:
        save_case_montage(image, landmarks, out / "montages" / f"{cid}.png", title=f"{cid} (synthetic torso CT phantom)")
    return cid


def write_cohort(out_dir, n_cases: int, seed: int = 0, overwrite: bool = False, progress: bool = True, *,
                 spacing_mm=None, resolution: str = "cohort", montage: int | bool = True, workers: int = 1,
                 segmentations: bool = False) -> list[str]:
    """Write ``n_cases`` phantom cases like a real cohort and return their case ids.

    Layout: ``images/<case_id>.nii.gz`` (int16 HU), ``landmarks/<case_id>.csv`` (LPS mm, via
    :func:`lm_zoo.landmarks.write_landmarks`), ``cases.txt`` (ids, one a line, written last),
    ``landmark_definitions.csv`` and ``montages/<case_id>.png`` for the first ``montage`` cases
    (True: 3). With ``segmentations``, also ``segmentations/<case_id>.nii.gz``: the case's anatomy
    as a TotalSegmentator ``total`` label map (v2 ids, see :mod:`lm_zoo.totalsegmentator`) on the
    CT grid, ready for :func:`lm_zoo.landmarks.landmarks_from_segmentation`. Case ``i`` has seed :func:`case_seed` ``(seed, i)``, so it is the same whatever
    ``n_cases``. Each file is written under a temporary name and moved into place; a failed case
    leaves neither of its files.

    Raises:
        CohortError (ValueError): n_cases <= 0, an unwritable folder, or a non-empty folder
        without ``overwrite``.
    """
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)) or n_cases <= 0:
        raise CohortError(f"n_cases must be a positive int, got {n_cases!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CohortError(f"seed must be a non-negative int, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise CohortError(f"workers must be a positive int, got {workers!r}")
    if resolution not in RESOLUTIONS:
        raise CohortError(f"resolution must be one of {sorted(RESOLUTIONS)}, got {resolution!r}")
    if spacing_mm is not None:
        _draw_spacing(np.random.default_rng(0), resolution, spacing_mm)  # validate early
    n_montage = 3 if montage is True else int(montage)
    out = prepare_cohort_dir(out_dir, overwrite, ("images", "landmarks"), remove=_remove_cohort_files)
    kwargs = dict(spacing_mm=spacing_mm, resolution=resolution)
    write_one = partial(_write_case, str(out), seed=seed, kwargs=kwargs, n_montage=n_montage, segmentation=segmentations)
    ids = list(map_ordered(write_one, range(n_cases), workers=workers, desc="torso CT phantom", progress=progress))
    write_text(out / "landmark_definitions.csv", "name,definition\n" + "".join(f'{n},"{d}"\n' for n, d in LANDMARKS))
    write_text(out / "cases.txt", "".join(f"{c}\n" for c in ids))
    return ids
