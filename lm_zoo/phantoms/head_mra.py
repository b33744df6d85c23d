"""Head TOF-MRA phantom with circle-of-Willis arteries and saccular aneurysms.

A case is a cropped field of view around the circle of Willis (nominal 80 x 70 x 45 mm, L-R x
A-P x I-S, placed with a few mm of random offset), like a clinical TOF slab:

- background: brain parenchyma (~0.25 of fresh-inflow vessel signal, smooth grey/white texture),
  dark basal cisterns, Sylvian and interhemispheric fissures, skull base (dark bone, sphenoid sinus
  air) with bright fatty marrow in the clivus, and head outline with skull and bright scalp fat
  (visible only with a larger ``fov_mm``); smooth multiplicative bias field; Rician noise;
- arteries from :mod:`lm_zoo.phantoms._vessel_tree` (radii 0.7-2.5 mm, flow-related intensity),
  rendered as a union of spheres along each centreline with a partial-volume edge one voxel wide;
- aneurysms (positive cases, 1-3 at distinct sites): a dome of *diameter* 2-12 mm (the issue's
  "2-12 mm" read as the clinical maximal diameter; ``Aneurysm.radius_mm`` is half of it, so 1-6 mm),
  skewed to small sizes (65 % within 3-7 mm, median 4.7 mm), ellipsoidal and optionally lobulated
  by 0-3 blebs (daughter sacs), joined to the parent artery by a neck narrower than the dome; 6 %
  (``FUSIFORM_FRACTION``) are fusiform instead (the parent dilated to the drawn diameter over 1.5-3
  diameters, no neck). Sites by :data:`SITES` (ACom 32 %, ICA-PCom 25 %, MCA bifurcation 20 %,
  others 23 %). Its signal is the parent's times 0.8-1.05 with slow-flow darkening towards the
  fundus, so it is no brighter than the parent artery;
- hard negatives on purpose (:mod:`lm_zoo.phantoms._vessel_tree`): bifurcations and branch origins
  of the circle of Willis at their anatomical angles plus 4-10 extra terminal branches, conical
  infundibula (<= 3 mm) at branch origins, fusiform widenings, kinks/loops, and 1-3 small arteries
  running 0.4-1.2 mm beside a larger one.

Calibration (``benchmarks/mra_calibration.py``: the real sample ``chris_MRA`` and 6 healthy
phantom cases through the same vessel mask, candidates and :func:`lm_zoo.vessels.local_geometry`;
one real subject, so these are sanity bounds, not a fit):

==========================================  =====================  ===========================
measured (same instrument)                  real TOF-MRA sample    phantom (v2, mean of 6)
==========================================  =====================  ===========================
radius at candidates p10/50/90 (mm)         1.04 / 1.33 / 2.44     0.80 / 0.99 / 2.00
candidate kinds: straight / hard / end      0.67 / 0.26 / 0.08     0.38 / 0.39 / 0.24
bend, r >= 1.5 mm arteries (median deg)     29                     15-25 (v1: 12-17)
bend, r 1-1.5 mm (median deg)               20                     16-35
wall profile, normalised, depth 0/0.5/1/1.5 0.23 / 0.37 / 0.71 /   0.35 / 0.49 / 0.76 / 0.88
mm (outside: real 0, background removed)    0.80                   (outside 0.24: brain)
vessel-interior noise / p99.9               0.041                  0.047 (v1: 0.036)
vessel voxels saturated (8-bit clipping)    3 %                    0
==========================================  =====================  ===========================

Radii: the real sample's mask keeps no vessel thinner than ~1 mm (the sample is pre-processed,
background removed, 0.52 x 0.52 x 0.65 mm), so its radius percentiles sit above the phantom's,
whose per-segment radii follow the literature (e.g. ICA 1.8-2.4 mm, vertebral 1.6-1.8, basilar
1.5-1.7, M1 1.3-1.5, A1/P1 ~1.1, M2/A2 ~1.0, PComm 0.5-0.75 mm radius; Rai et al. 2013, Kamath 1981)
and were left as they were. The phantom's field of view holds the circle of Willis, where branch
points concentrate, hence more hard and end points than the whole-brain sample. Calibrated in v2:
per-segment tortuosity (large arteries more, distal ones less), noise level; the real sample's
background tissue level is not measurable (zeroed).

Task difficulty (``benchmarks/phantoms.py``, 32 cases, 60 sampled negatives per case): v1 38.7 %
of negative candidates hard (curve, bifurcation, origin, widening, crossing), raw-patch logistic
ROC AUC 0.839 (centre intensity 0.658); v2 38.4 % hard, AUC 0.766 (centre 0.609); detection 95 %.

Scanner geometry: axis-aligned LPS (identity direction); per-case voxel size drawn from
``spacing_range`` (default 0.4-0.6 mm in-plane, 0.5-1.0 mm slices, as in the issue). The
anatomy itself is rotated (a few degrees), scaled and shifted per case.

Ground truth per aneurysm: dome centre (LPS mm), radius (mm), site (one of :data:`SITES`; side is
not encoded) and a uint8 mask of the aneurysm (dome, blebs, and neck outside the parent lumen).
The whole dome lies inside the field of view.

Intensities are integers (arbitrary scanner gain, vessels ~120-400) stored as float32; cohort files
hold them as int16. Cost: ~0.3-0.4 s CPU per case at the default voxel sizes (1-3 Mvoxel), see
``benchmarks/phantoms.py``; pass a coarser ``spacing_range`` for quicker throw-away cohorts.
"""
from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lm_zoo._atomic import atomic_path
from lm_zoo.cohorts import Aneurysm, read_aneurysm_table
from lm_zoo.errors import AneurysmTableError, CohortError
from lm_zoo.figures import new_figure, save_png
from lm_zoo.io import continuous_index
from lm_zoo.parallel import map_ordered
from lm_zoo.phantoms._cohort_files import aneurysm_rows, prepare_cohort_dir, write_text
from lm_zoo.phantoms._shapes import random_rotation
from lm_zoo.phantoms._vessel_tree import Tree, build_tree

__all__ = ["Aneurysm", "SITES", "CohortError", "AneurysmTableError", "generate_case", "write_cohort",
           "read_aneurysms", "save_montage", "case_id", "case_plan", "DEFAULT_SPACING_RANGE", "DEFAULT_FOV_MM"]

# Bump when the output of generate_case changes for reasons outside this file (e.g. _vessel_tree.py):
# dataset caches key phantom cohorts on this file's source digest.
GENERATOR_VERSION = 2  # 2: calibrated on a real TOF-MRA, more hard negatives, fusiform aneurysms

# Site name -> relative frequency: ACom 30-35 %, ICA-PCom ~25 %, MCA bifurcation ~20 %, the rest
# (ophthalmic, basilar tip, ICA terminus, pericallosal) ~20 % (e.g. Brisman et al., NEJM 2006;
# UCAS Japan, NEJM 2012).
SITES = {
    "acomm": 0.32,
    "ica_pcomm": 0.25,
    "mca_bifurcation": 0.20,
    "ica_ophthalmic": 0.06,
    "basilar_tip": 0.07,
    "ica_terminus": 0.05,
    "pericallosal": 0.05,
}
FUSIFORM_FRACTION = 0.06  # aneurysms that are fusiform (a segmental dilation) rather than saccular
DEFAULT_SPACING_RANGE = ((0.4, 0.6), (0.5, 1.0))  # (in-plane, slice) mm
DEFAULT_FOV_MM = (80.0, 70.0, 45.0)
_FOV_CENTRE = np.array([0.0, 3.0, -5.5])  # anatomy frame: box x -40..40, y -32..38, z -28..17
CSV_COLUMNS = ["case_id", "x", "y", "z", "radius_mm", "site"]


def case_id(i: int) -> str:
    return f"phantom_mra_{i:04d}"


# --------------------------------------------------------------------------------------------
# rendering helpers


class _Canvas:
    """Signed distance + intensity of the nearest object, filled by stamping spheres/ellipsoids."""

    def __init__(self, origin, spacing, size):
        self.origin = np.asarray(origin, float)
        self.spacing = np.asarray(spacing, float)
        self.size = np.asarray(size, int)  # x, y, z
        shape = tuple(self.size[::-1])
        self.sdf = np.full(shape, np.inf, np.float32)
        self.val = np.zeros(shape, np.float32)
        self.axes = [self.origin[i] + self.spacing[i] * np.arange(self.size[i]) for i in range(3)]

    def _box(self, c, reach):
        lo = np.floor((c - reach - self.origin) / self.spacing).astype(int)
        hi = np.ceil((c + reach - self.origin) / self.spacing).astype(int) + 1
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, self.size)
        if np.any(hi <= lo):
            return None
        return lo, hi

    def stamp(self, c, r, value, margin, inv_axes=None, value_fn=None):
        """Union with a ball (or an ellipsoid when ``inv_axes`` scales the offset)."""
        box = self._box(c, r * (1.3 if inv_axes is not None else 1.0) + margin)
        if box is None:
            return
        lo, hi = box
        dx = (self.axes[0][lo[0]:hi[0]] - c[0])[None, None, :]
        dy = (self.axes[1][lo[1]:hi[1]] - c[1])[None, :, None]
        dz = (self.axes[2][lo[2]:hi[2]] - c[2])[:, None, None]
        if inv_axes is None:
            d = np.sqrt(dx * dx + dy * dy + dz * dz) - r
        else:
            m = inv_axes
            ex = m[0, 0] * dx + m[0, 1] * dy + m[0, 2] * dz
            ey = m[1, 0] * dx + m[1, 1] * dy + m[1, 2] * dz
            ez = m[2, 0] * dx + m[2, 1] * dy + m[2, 2] * dz
            d = np.sqrt(ex * ex + ey * ey + ez * ez) - r
        sl = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
        cur = self.sdf[sl]
        better = d < cur
        cur[better] = d[better]
        if value_fn is not None:
            value = value_fn(dx, dy, dz)
        self.val[sl] = np.where(better, value, self.val[sl])

    def stamp_tube(self, points, radii, values, margin, stride_mm=0.35):
        # Consecutive balls overlap enough (stride << radius) that the union is a smooth tube.
        step = max(1, int(round(stride_mm / 0.25)))
        idx = np.arange(0, len(points), step)
        if idx[-1] != len(points) - 1:
            idx = np.append(idx, len(points) - 1)
        for i in idx:
            self.stamp(points[i], radii[i], values[i], margin)


def _pose(rng):
    angles = np.deg2rad(rng.uniform([-6, -8, -8], [6, 8, 8]))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    scale = rng.uniform(0.9, 1.1) * rng.uniform(0.96, 1.04, size=3)
    matrix = rz @ ry @ rx @ np.diag(scale)
    shift = rng.uniform([-20, -30, -20], [20, 30, 20])  # scanner position of the circle of Willis
    return matrix, shift


def _smooth_noise(rng, shape, coarse=(6, 7, 8)):
    from scipy.ndimage import zoom

    c = rng.normal(size=coarse)
    return zoom(c, [s / k for s, k in zip(shape, coarse)], order=1, mode="nearest")[
        : shape[0], : shape[1], : shape[2]
    ]


def _smoothstep(d, width):
    """1 inside (d < 0), 0 outside, linear ramp of ``width`` mm across the boundary."""
    return np.clip(0.5 - d / width, 0.0, 1.0)


def _ellipsoid_sdf(a, centre, semi):
    """Approximate signed distance (mm) to an axis-aligned ellipsoid in anatomy coordinates."""
    q = [(a[i] - centre[i]) / semi[i] for i in range(3)]
    k = np.sqrt(q[0] ** 2 + q[1] ** 2 + q[2] ** 2)
    return (k - 1.0) * min(semi)


def _background(a, rng, edge):
    """TOF background intensity at anatomy-frame coordinates ``a`` (tuple of 3 arrays)."""
    x, y, z = a
    brain = 0.25 * rng.uniform(0.85, 1.15)
    img = np.full(x.shape, brain, np.float32)
    img *= (1.0 + 0.06 * _smooth_noise(rng, x.shape)).astype(np.float32)
    csf = rng.uniform(0.05, 0.12)

    def blend(d, value, width=edge):
        nonlocal img
        w = _smoothstep(d, width).astype(np.float32)
        img = img * (1 - w) + np.float32(value) * w

    # Basal cisterns around the circle of Willis, Sylvian fissures along M1, interhemispheric fissure.
    blend(_ellipsoid_sdf(a, (0, 2, -2), (20, 20, 7) * rng.uniform(0.8, 1.2, 3)), csf, 2.0)
    for s in (-1, 1):
        blend(_ellipsoid_sdf(a, (s * 27, 1, 3), (13, 4, 8) * rng.uniform(0.8, 1.2, 3)), csf, 1.5)
    blend(np.maximum(np.abs(x) - rng.uniform(0.8, 1.6), np.maximum(y + 12, -z - 0)), csf, 1.0)
    # Skull base: bone (dark) below a tilted floor; sphenoid sinus air; clivus fatty marrow (bright).
    floor = z - (-24 - 0.25 * y + 0.004 * x * x)
    blend(floor, 0.04, 2.0)
    blend(_ellipsoid_sdf(a, (0, -14, -28), (11, 9, 7)), 0.01, 1.5)
    blend(_ellipsoid_sdf(a, (0, 23, -34), (6, 5, 10)), rng.uniform(0.28, 0.38), 2.0)
    for s in (-1, 1):  # cavernous sinuses: slow venous flow, mildly bright around the ICA
        blend(_ellipsoid_sdf(a, (s * 15, -4, -21), (6, 9, 5)), rng.uniform(0.25, 0.35), 2.0)
    # Head outline: skull (dark) then scalp fat (bright), only inside a wide field of view.
    head = _ellipsoid_sdf(a, (0, 8, 15), (70, 90, 68))
    blend(-(head + 11), 0.04, 1.5)
    blend(-(head + 5), rng.uniform(0.45, 0.6), 1.5)
    blend(-head, 0.0, 1.0)
    return img


def _pick_site(tree: Tree, rng, exclude) -> str | None:
    """One concrete site (e.g. ``mca_bifurcation_left``) by :data:`SITES` frequency, sides equally."""
    names = sorted(k for k in tree.sites if k not in exclude)
    if not names:
        return None
    bases = [_site_base(k) for k in names]
    w = np.array([SITES[b] / sum(1 for k in tree.sites if _site_base(k) == b) for b in bases])
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _site_base(name: str) -> str:
    for base in SITES:
        if name == base or name.startswith(base + "_"):
            return base
    raise KeyError(name)


def _place_aneurysm(tree, site, rng, to_world, matrix, radius_scale):
    """Dome + neck + blebs in scanner space; returns (Aneurysm, list of stamp specs)."""
    vname, idx, direction = tree.sites[site]
    vessel = tree.vessels[vname]
    p = to_world(vessel.points[idx])
    r_parent = vessel.radii[idx] * radius_scale
    parent_val = float(vessel.intensity[idx])
    d = direction + np.random.default_rng(rng.integers(2**32)).normal(scale=0.25, size=3)
    if idx not in (0, len(vessel.points) - 1):
        # Side-wall site: the dome grows out of the wall, so drop the component along the parent.
        t = vessel.points[min(idx + 4, len(vessel.points) - 1)] - vessel.points[max(idx - 4, 0)]
        t /= np.linalg.norm(t)
        d = d - (d @ t) * t
    d = matrix @ d
    d /= np.linalg.norm(d)
    diameter = 2.0 + 10.0 * rng.beta(1.3, 3.0)
    radius = diameter / 2
    if rng.random() < FUSIFORM_FRACTION:
        return _fusiform(vessel, idx, site, p, r_parent, parent_val, diameter, rng, to_world, radius_scale)
    neck_r = max(0.65, radius * rng.uniform(0.45, 0.8))
    neck_len = rng.uniform(0.15, 0.5) * radius
    # The dome sits outside the parent lumen (a saccular aneurysm protrudes from the wall).
    centre = p + d * (r_parent + neck_len + radius * 0.8)
    fundus_len = np.linalg.norm(centre - p) + radius
    brightness = parent_val * rng.uniform(0.8, 1.05)
    slow_flow = rng.uniform(0.0, 0.4)
    stretch = rng.uniform(0.8, 1.2, size=3)
    rot = random_rotation(rng)
    inv_axes = np.diag(1.0 / stretch) @ rot.T
    stamps = []
    # Neck: balls from the parent centre out to the dome.
    n_neck = max(2, int(np.linalg.norm(centre - p) / 0.3))
    for t in np.linspace(0, 1, n_neck):
        stamps.append((p + (centre - p) * t, neck_r, None))
    stamps.append((centre, radius, inv_axes))
    for _ in range(int(rng.choice(4, p=[0.45, 0.3, 0.15, 0.1]))):
        u = rng.normal(size=3)
        u = u / np.linalg.norm(u) + 0.8 * d
        u /= np.linalg.norm(u)
        stamps.append((centre + u * radius * 0.8, radius * rng.uniform(0.3, 0.55), None))

    def intensity_at(points_rel_p_along):
        t = np.clip(points_rel_p_along / fundus_len, 0, 1)
        return brightness * (1 - slow_flow * t)

    an = Aneurysm(center_lps=centre, radius_mm=round(float(radius), 3), site=_site_base(site))
    return an, dict(stamps=stamps, p=p, d=d, intensity_at=intensity_at, neck_reach=r_parent + neck_r)


def _fusiform(vessel, idx, site, p, r_parent, parent_val, diameter, rng, to_world, radius_scale):
    """A fusiform aneurysm: the parent itself dilated to ``diameter`` over 1.5-3 diameters of its
    length (no neck), centred on the site's vessel a little way in from a junction."""
    radius = max(diameter / 2, 1.6 * r_parent)
    half = int(rng.uniform(0.75, 1.5) * 2 * radius / 0.25)  # samples (0.25 mm) from centre to each end
    n = len(vessel.points)
    c = int(np.clip(idx, min(half, n // 2), max(n - 1 - half, n // 2)))
    lo, hi = max(c - half, 0), min(c + half, n - 1)
    centre = to_world(vessel.points[c])
    brightness = parent_val * rng.uniform(0.8, 1.0)
    stamps = []
    for j in range(lo, hi + 1, 2):
        t = (j - c) / max(half, 1)
        r = r_parent + (radius - r_parent) * np.cos(0.5 * np.pi * np.clip(t, -1, 1)) ** 2
        stamps.append((to_world(vessel.points[j]), float(r), None))
    d = to_world(vessel.points[min(c + 1, n - 1)]) - to_world(vessel.points[max(c - 1, 0)])
    d /= np.linalg.norm(d)
    slow = rng.uniform(0.0, 0.2)

    def intensity_at(along):  # slow, swirling flow darkens the dilated segment's far part
        return brightness * (1 - slow * np.clip(np.abs(along) / (half * 0.25), 0, 1))

    an = Aneurysm(center_lps=centre, radius_mm=round(float(radius), 3), site=_site_base(site))
    return an, dict(stamps=stamps, p=centre, d=d, intensity_at=intensity_at, neck_reach=0.0)


def _default_spacing(rng, spacing_range):
    (a0, a1), (s0, s1) = spacing_range
    inplane = round(float(rng.uniform(a0, a1)), 3)
    return (inplane, inplane, round(float(rng.uniform(s0, s1)), 3))


def _validate_spacing(spacing_mm):
    sp = np.asarray(spacing_mm, float).reshape(-1)
    if sp.size == 1:
        sp = np.repeat(sp, 3)
    if sp.size != 3 or not np.all(np.isfinite(sp)) or np.any(sp < 0.1) or np.any(sp > 3.0):
        raise ValueError(f"spacing_mm must be one or three voxel sizes in 0.1..3.0 mm, got {spacing_mm!r}")
    return tuple(float(v) for v in sp)


def generate_case(seed: int, *, aneurysm: bool | None = None, spacing_mm=None,
                  spacing_range=DEFAULT_SPACING_RANGE, fov_mm=DEFAULT_FOV_MM, n_aneurysms: int | None = None):
    """One phantom TOF-MRA case.

    Args:
        seed: non-negative int; the same seed (and arguments) gives the same bytes.
        aneurysm: True/False forces a positive/negative case; None draws it (probability 0.5).
        spacing_mm: voxel size (x, y, z) mm or one number; None draws it from ``spacing_range``.
        spacing_range: ((in-plane min, max), (slice min, max)) mm.
        fov_mm: field of view (x, y, z) mm around the circle of Willis.
        n_aneurysms: aneurysm count for a positive case (1-3); None draws 1 (80%), 2 (15%), 3 (5%).

    Returns:
        (image float32 sitk.Image, list[Aneurysm], uint8 sitk.Image aneurysm mask on the image grid).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if aneurysm not in (None, True, False):
        raise ValueError(f"aneurysm must be True, False or None, got {aneurysm!r}")
    fov = np.asarray(fov_mm, float)
    if fov.shape != (3,) or np.any(fov < 10) or np.any(fov > 300):
        raise ValueError(f"fov_mm must be three extents in 10..300 mm, got {fov_mm!r}")
    if n_aneurysms is not None and n_aneurysms not in (1, 2, 3):
        raise ValueError(f"n_aneurysms must be 1, 2, 3 or None, got {n_aneurysms!r}")
    rng = np.random.default_rng(int(seed))
    spacing = _default_spacing(rng, spacing_range) if spacing_mm is None else _validate_spacing(spacing_mm)
    has_aneurysm = bool(rng.random() < 0.5) if aneurysm is None else aneurysm

    tree = build_tree(rng)
    matrix, shift = _pose(rng)
    radius_scale = float(np.cbrt(abs(np.linalg.det(matrix))))

    def to_world(p):
        return p @ matrix.T + shift

    # Grid: axis-aligned box around the (posed) circle of Willis, with a few mm of random offset.
    centre = to_world(_FOV_CENTRE) + rng.uniform(-4, 4, 3)
    size = np.ceil(fov / np.asarray(spacing)).astype(int)
    origin = centre - 0.5 * (size - 1) * np.asarray(spacing)
    canvas = _Canvas(origin, spacing, size)
    edge = float(np.mean(spacing))

    bg = _background(_anatomy_coordinates(canvas, matrix, shift), rng, edge)

    # Arteries.
    margin = 1.5 * edge
    for v in tree.vessels.values():
        canvas.stamp_tube(to_world(v.points), v.radii * radius_scale, v.intensity, margin)

    aneurysms: list[Aneurysm] = []
    an_mask = np.zeros(canvas.sdf.shape, bool)
    if has_aneurysm:
        count = n_aneurysms or int(rng.choice([1, 2, 3], p=[0.8, 0.15, 0.05]))
        lo, hi = origin, origin + (size - 1) * np.asarray(spacing)
        placed = _choose_aneurysms(tree, rng, count, lo, hi, to_world, matrix, radius_scale)
        aneurysms, an_mask = _stamp_aneurysms(canvas, placed, margin)
    image = sitk.GetImageFromArray(_scanner_signal(canvas, bg, edge, rng))
    image.SetSpacing(spacing)
    image.SetOrigin(tuple(float(v) for v in origin))
    mask = sitk.GetImageFromArray(an_mask.astype(np.uint8))
    mask.CopyInformation(image)
    return image, aneurysms, mask


def _anatomy_coordinates(canvas, matrix, shift):
    """Anatomy-frame coordinates (3 float32 (z, y, x) arrays) of every voxel of ``canvas``."""
    zs, ys, xs = np.meshgrid(canvas.axes[2], canvas.axes[1], canvas.axes[0], indexing="ij")
    shape = canvas.sdf.shape
    world = np.stack([xs.ravel(), ys.ravel(), zs.ravel()]) - shift[:, None]
    del xs, ys, zs
    anat = np.linalg.solve(matrix, world).astype(np.float32)
    return tuple(c.reshape(shape) for c in anat)


def _choose_aneurysms(tree, rng, count, lo, hi, to_world, matrix, radius_scale):
    """Up to ``count`` (Aneurysm, stamp spec) at distinct sites whose dome lies in [lo, hi]."""
    placed, tried = [], set()
    while len(placed) < count:
        site = _pick_site(tree, rng, tried)
        if site is None:
            break
        tried.add(site)
        an, spec = _place_aneurysm(tree, site, rng, to_world, matrix, radius_scale)
        # The whole dome (plus 2 mm) must be in the field of view, as in a usable clinical scan.
        reach = an.radius_mm * 1.3 + 2.0
        if np.all(np.asarray(an.center_lps) - reach > lo) and np.all(np.asarray(an.center_lps) + reach < hi):
            placed.append((an, spec))
    return placed


def _stamp_aneurysms(canvas, placed, margin):
    """Union the aneurysms into ``canvas``; returns (aneurysms, their mask)."""
    vessel_sdf = canvas.sdf.copy()
    an_mask = np.zeros(canvas.sdf.shape, bool)
    aneurysms = []
    for an, spec in placed:
        an_canvas = _Canvas(canvas.origin, canvas.spacing, canvas.size)
        p, d = spec["p"], spec["d"]
        for c, r, inv in spec["stamps"]:
            def along(dx, dy, dz, c=c):
                proj = (dx + (c[0] - p[0])) * d[0] + (dy + (c[1] - p[1])) * d[1] + (dz + (c[2] - p[2])) * d[2]
                return spec["intensity_at"](proj)
            an_canvas.stamp(c, r, None, margin, inv_axes=inv, value_fn=along)
        inside = an_canvas.sdf < 0
        # The mask leaves out the parent lumen at the neck, not other arteries the dome touches.
        ax = canvas.axes
        near_neck = ((ax[0][None, None, :] - p[0]) ** 2 + (ax[1][None, :, None] - p[1]) ** 2
                     + (ax[2][:, None, None] - p[2]) ** 2) <= spec["neck_reach"] ** 2
        an_mask |= inside & ~((vessel_sdf < 0) & near_neck)
        better = an_canvas.sdf < canvas.sdf
        canvas.sdf[better] = an_canvas.sdf[better]
        canvas.val[better] = an_canvas.val[better]
        aneurysms.append(an)
    return aneurysms, an_mask


def _scanner_signal(canvas, bg, edge, rng):
    """The TOF image (float32 integers) from the vessel canvas over background ``bg``."""
    shape = canvas.sdf.shape
    # Laminar profile: centre of the lumen a little brighter than the wall.
    w = _smoothstep(canvas.sdf, edge).astype(np.float32)
    lumen = canvas.val * (0.85 + 0.15 * np.clip(-canvas.sdf / 1.5, 0, 1))
    img = bg * (1 - w) + lumen * w

    # Bias field (smooth, +-15 %), Rician noise, arbitrary scanner gain.
    zz, yy, xx = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    c = rng.uniform(-0.1, 0.1, 6).astype(np.float32)
    bias = np.exp(c[0] * zz[:, None, None] + c[1] * yy[None, :, None] + c[2] * xx[None, None, :]
                  + c[3] * zz[:, None, None] ** 2 + c[4] * yy[None, :, None] ** 2 + c[5] * xx[None, None, :] ** 2)
    img = img * bias
    # Noise: the real sample's vessel-interior noise is 0.041 of its 99.9th percentile
    # (benchmarks/mra_calibration.py); 0.015-0.04 gave the phantom 0.036, 0.02-0.045 gives ~0.04.
    sigma = np.float32(rng.uniform(0.02, 0.045))
    noise_rng = np.random.default_rng(rng.integers(2**63))
    n1 = noise_rng.standard_normal(shape, dtype=np.float32) * sigma
    n2 = noise_rng.standard_normal(shape, dtype=np.float32) * sigma
    img = np.sqrt((img + n1) ** 2 + n2 ** 2) * np.float32(rng.uniform(120, 400))
    # Integer-valued like a scanner's output, so the int16 file holds exactly these values.
    img = np.minimum(np.rint(img), np.iinfo(np.int16).max)
    return img.astype(np.float32)


# --------------------------------------------------------------------------------------------
# cohort files


def case_plan(seed: int, i: int, aneurysm_fraction: float) -> tuple[int, bool]:
    """(case seed, has aneurysm) for case ``i``: depends only on (seed, i, fraction).

    Positives follow a low-discrepancy rule (case i is positive when floor((i+1) f + u) >
    floor(i f + u), u drawn from ``seed``), so every run of consecutive cases holds the fraction
    ``f`` to within one case, whatever the cohort size.
    """
    u = np.random.default_rng(np.random.SeedSequence([seed, 2**31])).random()
    positive = np.floor((i + 1) * aneurysm_fraction + u) > np.floor(i * aneurysm_fraction + u)
    return _case_seed(seed, i), bool(positive)


def _case_seed(seed: int, i: int) -> int:
    """Seed of MRA case ``i`` (:func:`lm_zoo.seeds.case_seed`, 32 bits; the torso phantom uses 63:
    each keeps the cases its cohorts have always had)."""
    from lm_zoo.seeds import case_seed

    return case_seed(seed, i)


def write_cohort(out_dir, n_cases: int, seed: int = 0, aneurysm_fraction: float = 0.5, overwrite: bool = False,
                 progress: bool = True, spacing_range=DEFAULT_SPACING_RANGE, montage_cases: int = 16,
                 workers: int = 1) -> list[str]:
    """Write ``n_cases`` phantom TOF-MRA cases like a real cohort.

    Layout: ``images/<case_id>.nii.gz`` (int16: the integer values :func:`generate_case` returns),
    ``masks/<case_id>.nii.gz`` (uint8 aneurysm mask),
    ``aneurysms.csv`` (case_id,x,y,z,radius_mm,site; LPS mm; one row per aneurysm), ``cases.txt``
    and ``montage.png`` (axial MIPs of the first ``montage_cases`` cases, aneurysms circled).
    Case ``i`` depends only on (seed, i, aneurysm_fraction, spacing_range), so ``workers`` > 1
    (processes) gives the same bytes. Each file is written
    under a temporary name and renamed, so an interruption never leaves a half-written case.

    Returns the case ids.
    """
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)) or n_cases <= 0:
        raise CohortError(f"n_cases must be a positive int, got {n_cases!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CohortError(f"seed must be a non-negative int, got {seed!r}")
    if not 0.0 <= float(aneurysm_fraction) <= 1.0:
        raise CohortError(f"aneurysm_fraction must be in [0, 1], got {aneurysm_fraction!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise CohortError(f"workers must be a positive int, got {workers!r}")
    ids = [case_id(i) for i in range(n_cases)]
    out = prepare_cohort_dir(out_dir, overwrite, ("images", "masks"), remove=partial(_remove_stale_cases, keep=set(ids)))
    write_one = partial(_write_case, str(out), seed=int(seed), aneurysm_fraction=float(aneurysm_fraction),
                        spacing_range=spacing_range, montage_cases=montage_cases)
    results = list(map_ordered(write_one, range(n_cases), workers=workers, desc="head-mra phantom", progress=progress))
    rows = [row for case_rows, _ in results for row in case_rows]
    previews = [preview for _, preview in results if preview is not None]

    with atomic_path(out / "aneurysms.csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(CSV_COLUMNS)
            w.writerows(rows)
    write_text(out / "cases.txt", "".join(f"{c}\n" for c in ids))
    if previews:
        save_montage(previews, out / "montage.png")
    return ids


def _remove_stale_cases(out: Path, keep: set) -> None:
    """Delete the case files of an earlier, larger cohort in ``out`` (the ids not in ``keep``)."""
    for folder in (out / "images", out / "masks"):
        for f in folder.glob("phantom_mra_*.nii.gz"):
            if f.name[: -len(".nii.gz")] not in keep:
                f.unlink()


def _write_case(out: str, i: int, *, seed: int, aneurysm_fraction: float, spacing_range, montage_cases: int):
    """Generate and write case ``i``; returns (CSV rows, montage preview if ``i < montage_cases``, else None)."""
    out = Path(out)
    preview = i < montage_cases
    cid = case_id(i)
    cseed, positive = case_plan(seed, i, aneurysm_fraction)
    image, aneurysms, mask = generate_case(cseed, aneurysm=positive, spacing_range=spacing_range)
    for img, folder in ((sitk.Cast(image, sitk.sitkInt16), out / "images"), (mask, out / "masks")):
        with atomic_path(folder / f"{cid}.nii.gz") as tmp:
            sitk.WriteImage(img, str(tmp), True)
    rows = aneurysm_rows(cid, aneurysms)
    geometry = (image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    return rows, ((cid, _axial_mip(image), geometry, aneurysms) if preview else None)


def _axial_mip(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayViewFromImage(image).max(axis=0)


def save_montage(previews, path) -> None:
    """PNG grid of axial MIPs (anterior up, patient left on the right as radiologists view it)
    with each aneurysm circled at its radius (+2 mm so small ones stay visible)."""
    from matplotlib.patches import Circle

    n = len(previews)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = new_figure(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (cid, mip, geometry, aneurysms) in zip(axes.ravel(), previews):
        image = sitk.Image(1, 1, 1, sitk.sitkUInt8)  # only its geometry: physical point -> index
        image.SetSpacing(geometry[0])
        image.SetOrigin(geometry[1])
        image.SetDirection(geometry[2])
        sx, sy = image.GetSpacing()[:2]
        ny, nx = mip.shape
        # LPS x grows to patient left: columns already run right->left of the patient; rows run A->P.
        ax.imshow(mip, cmap="gray", extent=(-0.5 * sx, (nx - 0.5) * sx, (ny - 0.5) * sy, -0.5 * sy),
                  vmin=float(np.percentile(mip, 1)), vmax=float(np.percentile(mip, 99.9)))
        for a, (ci, cj, _) in zip(aneurysms, continuous_index(image, [a.center_lps for a in aneurysms])):
            ax.add_patch(Circle((ci * sx, cj * sy), a.radius_mm + 2.0, fill=False, color="red", lw=1.2))
            ax.text(ci * sx, cj * sy - a.radius_mm - 3, a.site, color="red", fontsize=6, ha="center")
        ax.set_title(f"{cid} ({len(aneurysms)} aneurysm{'s' if len(aneurysms) != 1 else ''})", fontsize=7)
    fig.suptitle("phantom head TOF-MRA: axial MIPs (anterior up, patient right on the left)", fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=90)


# The one reader of aneurysms.csv (RAS header, optional site), under the name this module exported.
read_aneurysms = read_aneurysm_table
