"""Vessel extraction and aneurysm candidate points for TOF-MRA volumes (phantom or real).

Pipeline (thresholds are relative, so the scanner's arbitrary intensity scale does not matter):

1. **Scale.** ``x = image / p99.9(image)``: in a TOF field of view arteries fill more than 0.1 % of
   the voxels, so the 99.9th percentile is bright (arterial) signal. The tissue level ``b`` is the
   mode of the histogram of x in (0.1, 1) (the commonest non-background intensity: brain; air,
   noise floor, zero fill and scalp do not move it). If ``b`` > 0.6 (``MAX_TISSUE_LEVEL``) nothing
   stands out of the tissue and the mask is empty.
2. **Tubularity.** On a ~0.9 mm isotropic working grid (``WORK_SPACING_MM``), Hessian objectness for
   bright lines (``sitk.ObjectnessMeasure``: objectDimension=1, alpha=beta=0.5, gamma=0.05 in units
   of x) of the scale-normalised (sigma^2 x) Gaussian-smoothed image at sigma = 0.7, 1.2, 2.0 mm;
   maximum over scales -> V in [0, 1]. V is zeroed within 4 mm (``EDGE_MM``) of the faces of the
   volume: a bright sheet cut by the slab's top or bottom (scalp) ends in a line-like ridge.
3. **Seeds**: V > 0.15 (``SEED_VESSELNESS``) and x_s > b + 0.25 (1 - b) (``SEED_FRACTION``), where x_s
   is x smoothed with sigma 0.5 mm against noise: bright *and* tubular. Fat, marrow, slow-flow
   veins and the scalp are not both, so they seed (almost) nothing.
4. **Growth** (hysteresis): connected regions of voxels with x_s > b + 0.15 (1 - b)
   (``LOW_FRACTION``) within 7 mm (``MAX_GROW_MM``) of a seed, kept when at least 20 %
   (``MIN_SEED_SHARE``) of their voxels are seeds. The distance limit lets the mask fill aneurysm
   domes (up to 6 mm radius, not tubular) without running far into bright tissue touching an
   artery; the seed share drops sheets and slabs grown from a few stray seeds. Holes are filled.
5. **Components**: keep connected components of >= 20 mm^3 and >= 5 % of the largest one (the
   arterial tree is one or a few large components; noise specks and isolated blobs go).

Checked on the real sample ``chris_MRA.nii.gz`` (tests/test_vessels.py): ~0.45 % of the volume,
one component holding ~90 % of the mask, nothing on the faces but the inferior one.

Candidates (:func:`candidate_points`), from the distance map of the mask (mm to its boundary):

- centreline: ridge voxels of the distance map (within 0.3 voxel of their 3x3x3 maximum), thinned
  to one per ``spacing_mm`` cube (default 2.5 mm), the one nearest the cube centre;
- blob centres: distance maxima >= 0.5 mm that are the maximum of a ~2.5 mm neighbourhood
  (aneurysm domes, bulges, bifurcations, loops), thinned to one per 1 mm cube.

``sitk.BinaryThinning`` was tried for the centreline and dropped: ITK's thinning is a 2D
algorithm, on 3D masks it left ~90 % of skeleton voxels with non-curve neighbourhoods and cost
~1 s per phantom case; the distance-map ridge is cheaper and centred. ``seed`` only shifts the
thinning grid. Points are LPS mm (origin, spacing and direction applied), deterministic.

Measured on the phantom (benchmarks/phantoms.py, 32 unseen cases): >= 95 % of aneurysms have a
candidate within their radius; ~800 candidates per case, ~7 labelled aneurysm per positive case.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lm_zoo.errors import LmZooError
from lm_zoo.io import continuous_index, index_transform, physical_points

__all__ = ["vessel_mask", "vesselness", "candidate_points", "label_candidates", "VesselError"]

WORK_SPACING_MM = 0.9
SCALES_MM = (0.7, 1.2, 2.0)
SEED_VESSELNESS = 0.15
GAMMA = 0.05
SEED_FRACTION = 0.25
LOW_FRACTION = 0.15
DENOISE_SIGMA_MM = 0.5
MAX_TISSUE_LEVEL = 0.6
MAX_GROW_MM = 7.0
MIN_SEED_SHARE = 0.2
EDGE_MM = 4.0
MIN_COMPONENT_MM3 = 20.0
MIN_COMPONENT_FRACTION = 0.05
BLOB_MIN_RADIUS_MM = 0.5
BLOB_NEIGHBOURHOOD_MM = 2.5
BLOB_CELL_MM = 1.0
RIDGE_TOLERANCE = 0.3


class VesselError(LmZooError, ValueError):
    """Bad input to vessel extraction (message names the argument)."""


def as_image(image) -> sitk.Image:
    """A 3D scalar SimpleITK image from an image, a volume file or a DICOM folder (VesselError otherwise)."""
    if isinstance(image, sitk.Image):
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise VesselError(f"image must be a 3D scalar volume, got dimension {image.GetDimension()} "
                              f"with {image.GetNumberOfComponentsPerPixel()} components")
        return image
    from lm_zoo.io import read_image

    return read_image(image)


def _scaled(image: sitk.Image):
    img = sitk.Cast(image, sitk.sitkFloat32)
    arr = sitk.GetArrayViewFromImage(img)
    top = float(np.percentile(arr, 99.9))
    if not np.isfinite(top) or top <= 0:
        raise VesselError("image has no bright voxels (99.9th percentile <= 0): not a TOF-MRA volume?")
    x = img / top
    xa = sitk.GetArrayViewFromImage(x)
    # Tissue level: the histogram mode in (0.1, 1): the commonest non-background intensity (brain),
    # unaffected by how much air, noise floor, scalp or zero fill the field of view holds.
    counts, edges = np.histogram(xa, bins=45, range=(0.1, 1.0))
    if counts.sum() == 0:
        return x, 0.0
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    i = int(np.argmax(smooth))
    return x, float(0.5 * (edges[i] + edges[i + 1]))


def _resample_iso(image: sitk.Image, spacing: float, interpolator=sitk.sitkLinear) -> sitk.Image:
    old_sp = np.asarray(image.GetSpacing())
    size = np.maximum(np.round(np.asarray(image.GetSize()) * old_sp / spacing), 1).astype(int)
    # Keep the physical extent: the first voxel centre stays where it was.
    return sitk.Resample(image, [int(s) for s in size], sitk.Transform(), interpolator, image.GetOrigin(),
                         (spacing,) * 3, image.GetDirection(), 0.0, image.GetPixelID())


def vesselness(image, scales_mm=SCALES_MM, work_spacing_mm=WORK_SPACING_MM) -> sitk.Image:
    """Multi-scale Hessian objectness for bright tubes, in [0, 1], on a ~isotropic working grid."""
    image = as_image(image)
    return _vesselness(_scaled(image)[0], scales_mm, work_spacing_mm)


def _vesselness(x: sitk.Image, scales_mm=SCALES_MM, work_spacing_mm=WORK_SPACING_MM) -> sitk.Image:
    small = _resample_iso(x, max(work_spacing_mm, min(x.GetSpacing())))
    best = None
    for s in scales_mm:
        # sigma^2 normalisation makes the Hessian (and so gamma) comparable across scales.
        g = sitk.SmoothingRecursiveGaussian(small, float(s)) * float(s * s)
        v = sitk.ObjectnessMeasure(g, alpha=0.5, beta=0.5, gamma=GAMMA, scaleObjectnessMeasure=False,
                                   objectDimension=1, brightObject=True)
        best = v if best is None else sitk.Maximum(best, v)
    return best


def vessel_mask(image, *, max_grow_mm: float = MAX_GROW_MM) -> sitk.Image:
    """uint8 mask (1 = artery) on the image grid; see the module docstring for the thresholds."""
    image = as_image(image)
    x, b = _scaled(image)
    if b > MAX_TISSUE_LEVEL:
        # The brightest voxels are barely above the tissue: no inflow contrast, so no arteries.
        return _empty_like(image)
    v = _vesselness(x)
    x = sitk.SmoothingRecursiveGaussian(x, DENOISE_SIGMA_MM)
    v_full = sitk.Resample(v, x, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    v_full = _zero_near_faces(v_full, EDGE_MM)
    xa = sitk.GetArrayViewFromImage(x)
    seeds = (sitk.GetArrayViewFromImage(v_full) > SEED_VESSELNESS) & (xa > b + SEED_FRACTION * (1 - b))
    low = xa > b + LOW_FRACTION * (1 - b)
    if not seeds.any():
        return _empty_like(image)
    seed_img = sitk.GetImageFromArray(seeds.astype(np.uint8))
    seed_img.CopyInformation(image)
    near = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(seed_img, insideIsPositive=False, squaredDistance=False,
                                     useImageSpacing=True)) <= max_grow_mm
    allowed = low & near
    labels, n = ndimage.label(allowed, structure=np.ones((3, 3, 3)))
    # Arteries are mostly seed voxels; a bright sheet or slab (scalp, marrow) grown from a few
    # stray seeds is mostly non-seed.
    size = np.bincount(labels.ravel(), minlength=n + 1)
    seeded = np.bincount(labels[seeds & allowed], minlength=n + 1)
    keep = (seeded >= MIN_SEED_SHARE * size) & (seeded > 0)
    keep[0] = False
    grown = keep[labels]
    grown = ndimage.binary_fill_holes(grown)
    mask = sitk.GetImageFromArray(grown.astype(np.uint8))
    mask.CopyInformation(image)
    return _large_components(mask)


def _zero_near_faces(image: sitk.Image, mm: float) -> sitk.Image:
    """Bright structures cut by the field of view (the scalp at the slab's top and bottom) end in
    line-like ridges that the Hessian mistakes for vessels; seeds are not taken within ``mm`` of a
    face (arteries crossing a face are reached by growth from inside)."""
    arr = sitk.GetArrayFromImage(image)
    for axis, sp in enumerate(image.GetSpacing()[::-1]):
        k = min(int(np.ceil(mm / sp)), arr.shape[axis] // 2)
        sl = [slice(None)] * 3
        sl[axis] = slice(0, k)
        arr[tuple(sl)] = 0
        sl[axis] = slice(arr.shape[axis] - k, None)
        arr[tuple(sl)] = 0
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(image)
    return out


def _empty_like(image: sitk.Image) -> sitk.Image:
    out = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    out.CopyInformation(image)
    return out


def _large_components(mask: sitk.Image) -> sitk.Image:
    voxel_mm3 = float(np.prod(mask.GetSpacing()))
    cc = sitk.RelabelComponent(sitk.ConnectedComponent(mask, True),
                               minimumObjectSize=int(np.ceil(MIN_COMPONENT_MM3 / voxel_mm3)), sortByObjectSize=True)
    ca = sitk.GetArrayViewFromImage(cc)
    sizes = np.bincount(ca.ravel())
    if sizes.size <= 1:
        return _empty_like(mask)
    keep = np.nonzero(sizes[1:] >= MIN_COMPONENT_FRACTION * sizes[1])[0] + 1
    out = sitk.GetImageFromArray(np.isin(ca, keep).astype(np.uint8))
    out.CopyInformation(mask)
    return out


def _to_lps(image: sitk.Image, idx_zyx: np.ndarray) -> np.ndarray:
    """Voxel indices (z, y, x) -> LPS mm via origin, spacing and direction."""
    if len(idx_zyx) == 0:
        return np.zeros((0, 3))
    return physical_points(image, idx_zyx[:, ::-1].astype(np.float64))


def _grid_thin(points: np.ndarray, cell_mm: float, offset: np.ndarray) -> np.ndarray:
    """One point per cubic cell (the one closest to the cell centre): even, deterministic spacing."""
    if len(points) == 0:
        return points
    cell = np.floor((points - offset) / cell_mm).astype(np.int64)
    centre = (cell + 0.5) * cell_mm + offset
    d = np.linalg.norm(points - centre, axis=1)
    order = np.lexsort((d, cell[:, 2], cell[:, 1], cell[:, 0]))
    c = cell[order]
    first = np.ones(len(order), bool)
    first[1:] = np.any(c[1:] != c[:-1], axis=1)
    return points[np.sort(order[first])]


def candidate_points(image, mask=None, seed: int = 0, spacing_mm: float = 2.5) -> np.ndarray:
    """Candidate patch centres on the vessels, (M, 3) LPS mm.

    Args:
        image: TOF volume (sitk.Image or path).
        mask: vessel mask on the same grid; None computes :func:`vessel_mask`.
        seed: shifts the thinning grid (different seeds give different but equally spaced points).
        spacing_mm: cell size for thinning the ordinary centreline points (> 0).
    """
    if not np.isfinite(spacing_mm) or spacing_mm <= 0:
        raise VesselError(f"spacing_mm must be a positive number of mm, got {spacing_mm!r}")
    image = as_image(image)
    if mask is None:
        mask = vessel_mask(image)
    elif mask.GetSize() != image.GetSize():
        raise VesselError(f"mask size {mask.GetSize()} differs from image size {image.GetSize()}")
    m = sitk.GetArrayFromImage(mask) > 0
    if not m.any():
        return np.zeros((0, 3))
    # Work in the mask's bounding box (plus a margin) to keep the filters cheap.
    nz = np.nonzero(m)
    lo = [max(int(a.min()) - 2, 0) for a in nz]
    hi = [min(int(a.max()) + 3, s) for a, s in zip(nz, m.shape)]
    sub = m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    sub_img = sitk.GetImageFromArray(sub.astype(np.uint8))
    sub_img.SetSpacing(mask.GetSpacing())
    dist = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(sub_img, insideIsPositive=True,
                                                               squaredDistance=False, useImageSpacing=True))
    dist = np.where(sub, dist, 0.0).astype(np.float32)
    local_max = ndimage.maximum_filter(dist, size=3)
    # Centreline: the ridge of the distance map (within a fraction of a voxel of the local maximum).
    ridge = sub & (dist > 0) & (dist >= local_max - RIDGE_TOLERANCE * min(mask.GetSpacing()))
    # Blob centres: distance maxima that stand above a wider neighbourhood (aneurysm domes, bulges,
    # bifurcations); a uniform tube's ridge is flat and mostly fails this.
    blob_size = np.maximum(np.round(BLOB_NEIGHBOURHOOD_MM / np.asarray(mask.GetSpacing())[::-1]), 3).astype(int)
    blobs = sub & (dist >= BLOB_MIN_RADIUS_MM) & (dist >= ndimage.maximum_filter(dist, size=tuple(blob_size)))

    offset = np.array(lo)
    grid_offset = np.random.default_rng(seed).uniform(0, spacing_mm, 3)

    def pts(a):
        return _to_lps(mask, np.argwhere(a) + offset)

    ridge_pts = _grid_thin(pts(ridge), spacing_mm, grid_offset)
    blob_pts = _grid_thin(pts(blobs), BLOB_CELL_MM, grid_offset)
    return np.concatenate([blob_pts, ridge_pts])


def label_candidates(points, aneurysms):
    """Label each point "aneurysm" if within an aneurysm's radius of its centre, else "normal_vessel".

    Returns (labels, sites): string arrays; ``sites`` is the nearest containing aneurysm's site or "".
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    labels = np.full(len(p), "normal_vessel", dtype=object)
    sites = np.full(len(p), "", dtype=object)
    best = np.full(len(p), np.inf)
    for a in aneurysms:
        d = np.linalg.norm(p - np.asarray(a.center_lps, float), axis=1)
        hit = (d <= a.radius_mm) & (d / a.radius_mm < best)
        labels[hit] = "aneurysm"
        sites[hit] = a.site
        best[hit] = d[hit] / a.radius_mm
    return labels.astype(str), sites.astype(str)


# ------------------------------------------------------------------------------ local geometry
# What a vessel point looks like within a few mm: the look-alikes of an aneurysm are where the
# tube is not a plain straight tube. One implementation serves three users: the phantom's
# hard-negative figures (benchmarks/phantoms.py), the calibration on real TOF-MRA
# (benchmarks/mra_calibration.py) and the choice of insertion sites (lm_zoo.phantoms.insertion).
POINT_KINDS = ("straight", "curve", "bifurcation", "branch_origin", "widening", "crossing", "end")
HARD_KINDS = ("curve", "bifurcation", "branch_origin", "widening", "crossing")
CURVE_DEVIATION_DEG = 40.0  # a 2-branch point bending by more than this is a kink/loop/tight curve
WIDENING_RATIO = 1.35  # local radius / radius of the tube leaving it: bulge or infundibulum
ORIGIN_RATIO = 0.6  # smallest / largest branch radius below this: a branch origin, not a bifurcation
SHELL_MIN_MM = 2.0


def distance_inside(mask: sitk.Image) -> np.ndarray:
    """Radius-like depth (mm) of each mask voxel, 0 outside: z, y, x array.

    Euclidean distance to the nearest voxel *outside* the mask, so that on a tube's axis it
    estimates the tube's radius: measured on digitised cylinders of radius 0.8-2.5 mm at 0.5 mm
    voxels, axis on, between or off voxel centres, it reads the radius -0.3..+0.2 mm. ITK's Maurer
    map measures to the nearest *contour* voxel instead and reads about one voxel less.
    """
    m = sitk.GetArrayViewFromImage(mask) > 0
    sp = np.asarray(mask.GetSpacing(), float)[::-1]
    d = ndimage.distance_transform_edt(m, sampling=sp)
    return np.where(m, d, 0.0).astype(np.float32)


def _physical_offsets(index_to_lps: np.ndarray, lo, hi) -> tuple[np.ndarray, ...]:
    """Physical offsets (LPS mm) of each voxel of the box lo..hi (z, y, x) from voxel lo: direction applied."""
    d = index_to_lps
    k, j, i = np.meshgrid(*(np.arange(b - a) for a, b in zip(lo, hi)), indexing="ij")
    return tuple(d[r, 0] * i + d[r, 1] * j + d[r, 2] * k for r in range(3))


def local_geometry(mask: sitk.Image, points, dist: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Shape of the vessel mask around each point (LPS mm), from the branches crossing a shell.

    For a point of local radius r (distance to the boundary), the mask voxels at r + max(2 mm, r)
    .. +1.5 voxels from it are split into connected pieces: each is a branch leaving the point.
    Returns arrays of length M: ``radius_mm``; ``n_branches``; ``branch_radius_mm`` (largest
    branch's mean radius, r if none); ``min_branch_ratio`` (smallest / largest branch radius);
    ``deviation_deg`` (for 2 branches: 180 minus the angle between them, 0 on a straight tube);
    ``kind`` (one of :data:`POINT_KINDS`) and ``direction`` (M, 3): unit vector away from the
    branches' mean (the outer side of a curve, the apex of a bifurcation; zeros if undefined).
    """
    p = np.asarray(points, np.float64).reshape(-1, 3)
    if dist is None:
        dist = distance_inside(mask)
    m = dist > 0
    shape = np.asarray(dist.shape)  # z, y, x
    sp = np.asarray(mask.GetSpacing())
    out = {k: np.zeros(len(p)) for k in ("radius_mm", "branch_radius_mm", "min_branch_ratio", "deviation_deg")}
    out["n_branches"] = np.zeros(len(p), int)
    out["direction"] = np.zeros((len(p), 3))
    kinds = np.full(len(p), "end", dtype=object)
    _, index_to_lps, _ = index_transform(mask)
    nearest_voxels = np.round(continuous_index(mask, p)[:, ::-1]).astype(int)  # z, y, x
    for n, point in enumerate(p):
        c = np.clip(nearest_voxels[n], 0, shape - 1)
        # Radius at the point: the largest distance within one voxel (the point may sit off the ridge).
        near = dist[tuple(slice(max(a - 1, 0), a + 2) for a in c)]
        r = float(near.max())
        shell_r = r + max(SHELL_MIN_MM, r)
        width = 1.5 * float(sp.max())
        reach = np.ceil((shell_r + width) / sp[::-1]).astype(int)
        lo, hi = np.maximum(c - reach, 0), np.minimum(c + reach + 1, shape)
        ox, oy, oz = _physical_offsets(index_to_lps, lo, hi)
        # Offsets from the point itself, in mm. SimpleITK, not lm_zoo.io.physical_points: on oblique
        # grids the two sum origin + D S index in another order and differ in the last bit (195 of
        # 462 boxes on chris_MRA, 433 of 826 on an oblique phantom), enough to move a voxel across
        # the shell's edge, i.e. to change what lm_zoo.phantoms.insertion writes.
        base = np.asarray(mask.TransformContinuousIndexToPhysicalPoint([float(v) for v in lo[::-1]])) - point
        ox, oy, oz = ox + base[0], oy + base[1], oz + base[2]
        rr = np.sqrt(ox * ox + oy * oy + oz * oz)
        box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        shell = m[box] & (rr >= shell_r) & (rr < shell_r + width)
        labels, k = ndimage.label(shell, structure=np.ones((3, 3, 3)))
        out["radius_mm"][n] = r
        if k == 0:
            out["branch_radius_mm"][n] = r
            continue
        counts = np.bincount(labels.ravel(), minlength=k + 1)[1:]
        # Pieces of a few voxels are noise on the boundary or a twig too small to matter.
        keep = np.flatnonzero(counts >= 3) + 1
        if len(keep) == 0:
            out["branch_radius_mm"][n] = r
            continue
        lab = labels.ravel()
        sel = np.isin(lab, keep)
        dirs = np.stack([np.bincount(lab[sel], weights=o.ravel()[sel], minlength=k + 1)[keep] for o in (ox, oy, oz)], 1)
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True) + 1e-12
        # A branch's radius: the ridge (maximum depth) of its cross-section in the shell.
        radii = np.asarray(ndimage.maximum(dist[box], labels, keep), float).reshape(-1)
        nb = len(keep)
        out["n_branches"][n] = nb
        out["branch_radius_mm"][n] = float(radii.max())
        out["min_branch_ratio"][n] = float(radii.min() / max(radii.max(), 1e-6))
        mean = dirs.mean(axis=0)
        if np.linalg.norm(mean) > 1e-3:
            out["direction"][n] = -mean / np.linalg.norm(mean)
        if nb == 2:
            cosang = float(np.clip(dirs[0] @ dirs[1], -1, 1))
            out["deviation_deg"][n] = 180.0 - np.degrees(np.arccos(cosang))
        kinds[n] = _point_kind(nb, out["min_branch_ratio"][n], r, radii, out["deviation_deg"][n])
    out["kind"] = kinds.astype(str)
    return out


def _point_kind(n_branches: int, min_branch_ratio: float, radius: float, radii, deviation_deg: float) -> str:
    """One of :data:`POINT_KINDS` for a point with ``n_branches`` >= 1 branches of ``radii``."""
    if n_branches >= 4:
        return "crossing"
    if n_branches == 3:
        return "branch_origin" if min_branch_ratio < ORIGIN_RATIO else "bifurcation"
    if radius > WIDENING_RATIO * max(float(np.median(radii)), 1e-6):
        return "widening"
    if n_branches == 2:
        return "curve" if deviation_deg > CURVE_DEVIATION_DEG else "straight"
    return "end"


__all__ += ["POINT_KINDS", "HARD_KINDS", "distance_inside", "local_geometry"]
