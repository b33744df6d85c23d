"""Saccular aneurysms inserted into a real (healthy) TOF-MRA volume.

Aneurysm-annotated MRA is scarce; healthy TOF-MRA is plentiful (IXI alone has hundreds of
subjects). :func:`insert_aneurysms` turns a healthy volume into a positive case whose aneurysms
look like the image's own arteries:

1. **Vessel tree**: :func:`lm_zoo.vessels.vessel_mask` (unless given), the radius-like depth map
   :func:`lm_zoo.vessels.distance_inside` and the candidate points of the detection pipeline; each
   point is described by :func:`lm_zoo.vessels.local_geometry`.
2. **Sites** (realistic: where haemodynamic stress is highest): bifurcations and branch origins (dome
   along the continuation of the parent, into the apex), outer sides of curves, and, rarely, side
   walls of straight segments. Host radius >= 0.8 mm (circle-of-Willis-size arteries); the dome must
   lie in the volume (4 mm from every face) and must not run into another artery.
3. **Shape**: a neck from the host wall (narrower than the dome), an ellipsoidal dome (diameter
   drawn log-normal, median 5 mm, 90 % within 3-8 mm as in unruptured-aneurysm series), lobulated
   (a second lobe, 20 %) or with a daughter sac (bleb, 30 %).
4. **Intensity**: the *host's* profile across its wall, measured around the site: median image value
   per 0.2 mm bin of signed depth (mm inside the vessel boundary, negative outside), so the dome has
   the host's centre brightness, partial-volume edge and surround; mild slow-flow darkening towards
   the fundus (0-15 %); plus Gaussian noise of the image's own level (:func:`noise_sigma`), then
   clipped to the image's value range and rounded for integer volumes (an 8-bit, saturated sample
   stays 8-bit and saturated). A voxel only changes where the aneurysm is brighter than the image.

The aneurysm table rows follow ``aneurysms.csv`` (case_id,x,y,z,radius_mm,site; LPS mm): ``site`` is
the kind of site (``bifurcation``, ``outer_curve``, ``side_wall``) because a real volume's arteries
are not named.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lm_zoo import vessels
from lm_zoo.errors import LmZooError
from lm_zoo.io import continuous_index, index_transform
from lm_zoo.phantoms._cohort_files import aneurysm_rows, prepare_cohort_dir, write_text
from lm_zoo.phantoms._shapes import random_rotation
from lm_zoo.phantoms.head_mra import Aneurysm

__all__ = ["insert_aneurysms", "InsertionError", "INSERTION_SITES", "noise_sigma", "signed_depth",
           "depth_profile", "aneurysm_rows"]

# Site kind -> relative weight, and which local_geometry kinds host it.
INSERTION_SITES = {"bifurcation": 0.6, "outer_curve": 0.3, "side_wall": 0.1}
_HOST_KINDS = {"bifurcation": ("bifurcation", "branch_origin"), "outer_curve": ("curve",),
               "side_wall": ("straight",)}
MIN_HOST_RADIUS_MM = 0.8
FACE_MARGIN_MM = 4.0
PROFILE_BIN_MM = 0.2
PROFILE_OUTSIDE_MM = 2.0
NOISE_DEPTH_MM = 1.2
HOST_REGION_MM = 6.0  # the host's profile is measured within this distance of the site


class InsertionError(LmZooError, ValueError):
    """Bad argument to :func:`insert_aneurysms`, or no usable site (message says which)."""


@dataclass
class _Dome:
    sdf: np.ndarray  # signed distance (mm, negative inside) on the box
    along: np.ndarray  # 0 at the neck .. 1 at the fundus
    box: tuple  # z, y, x slices


def signed_depth(mask: sitk.Image, depth: np.ndarray | None = None) -> np.ndarray:
    """mm inside the vessel boundary (positive, :func:`lm_zoo.vessels.distance_inside`) or outside it
    (negative: minus the distance to the nearest vessel voxel); z, y, x array."""
    m = sitk.GetArrayViewFromImage(mask) > 0
    if depth is None:
        depth = vessels.distance_inside(mask)
    sp = np.asarray(mask.GetSpacing(), float)[::-1]
    outside = ndimage.distance_transform_edt(~m, sampling=sp)
    return np.where(m, depth, -np.maximum(outside, 1e-3)).astype(np.float32)


def depth_profile(values: np.ndarray, depth: np.ndarray, where: np.ndarray, lo: float = -PROFILE_OUTSIDE_MM,
                  hi: float | None = None, bin_mm: float = PROFILE_BIN_MM):
    """Median of ``values`` per bin of signed depth in [lo, hi] over voxels ``where``.

    Returns (bin centres, medians, counts); empty bins carry the nearest filled bin's median.
    """
    d = depth[where]
    v = values[where].astype(np.float64)
    if hi is None:
        hi = float(d.max()) if d.size else 0.0
    edges = np.arange(lo, max(hi, lo + bin_mm) + bin_mm, bin_mm)
    centres = 0.5 * (edges[1:] + edges[:-1])
    k = np.clip(np.digitize(d, edges) - 1, 0, len(centres) - 1)
    keep = (d >= lo) & (d <= edges[-1])
    med = np.full(len(centres), np.nan)
    counts = np.bincount(k[keep], minlength=len(centres))
    order = np.argsort(k[keep], kind="stable")
    ks, vs = k[keep][order], v[keep][order]
    starts = np.searchsorted(ks, np.arange(len(centres)))
    ends = np.searchsorted(ks, np.arange(len(centres)), side="right")
    for b in range(len(centres)):
        if ends[b] > starts[b]:
            med[b] = np.median(vs[starts[b]:ends[b]])
    filled = np.flatnonzero(~np.isnan(med))
    if filled.size == 0:
        return centres, np.zeros(len(centres)), counts
    nearest = filled[np.abs(np.arange(len(centres))[:, None] - filled[None, :]).argmin(axis=1)]
    return centres, med[nearest], counts


def noise_sigma(values: np.ndarray, where: np.ndarray, saturated: float | None = None) -> float:
    """Noise level from neighbour differences along x: 1.4826 MAD / sqrt(2) over voxel pairs both in
    ``where`` (e.g. the vessel interior, where the signal is smooth) and below ``saturated``."""
    a = values.astype(np.float64)
    ok = where[..., 1:] & where[..., :-1]
    if saturated is not None:
        ok &= (a[..., 1:] < saturated) & (a[..., :-1] < saturated)
    diff = (a[..., 1:] - a[..., :-1])[ok]
    if diff.size < 20:
        return 0.0
    return float(1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2.0))


def _box_points(image: sitk.Image, centre, reach_mm: float):
    """Slices (z, y, x) of the voxel box within ``reach_mm`` of ``centre`` and the LPS coordinates
    (3 arrays) of its voxels; None if the box is empty."""
    sp = np.asarray(image.GetSpacing())[::-1]
    c = continuous_index(image, [centre])[0][::-1]
    size = np.asarray(image.GetSize())[::-1]
    lo = np.maximum(np.floor(c - reach_mm / sp).astype(int), 0)
    hi = np.minimum(np.ceil(c + reach_mm / sp).astype(int) + 1, size)
    if np.any(hi <= lo):
        return None
    k, j, i = np.meshgrid(*(np.arange(a, b, dtype=np.float64) for a, b in zip(lo, hi)), indexing="ij")
    o, d, _ = index_transform(image)
    xyz = tuple(o[r] + d[r, 0] * i + d[r, 1] * j + d[r, 2] * k for r in range(3))
    return tuple(slice(a, b) for a, b in zip(lo, hi)), xyz


def _segment_sdf(xyz, a, b, r):
    ab = b - a
    t = ((xyz[0] - a[0]) * ab[0] + (xyz[1] - a[1]) * ab[1] + (xyz[2] - a[2]) * ab[2]) / max(ab @ ab, 1e-9)
    t = np.clip(t, 0, 1)
    return np.sqrt(sum((xyz[q] - (a[q] + t * ab[q])) ** 2 for q in range(3))) - r


def _ellipsoid_sdf(xyz, c, semi, rot):
    """Approximate signed distance to an ellipsoid (semi-axes ``semi`` along the columns of ``rot``)."""
    off = [xyz[q] - c[q] for q in range(3)]
    k = np.sqrt(sum(((off[0] * rot[0, a] + off[1] * rot[1, a] + off[2] * rot[2, a]) / semi[a]) ** 2
                    for a in range(3)))
    return (k - 1.0) * float(min(semi))


def _draw_diameter(rng) -> float:
    # Unruptured aneurysms: median ~5 mm, most 3-7 mm (e.g. UCAS Japan 2012, ISUIA 2003).
    return float(np.clip(np.exp(rng.normal(np.log(5.0), 0.3)), 2.5, 12.0))


def _dome(image, wall_centre, direction, r_host, diameter, rng, margin_mm: float):
    """Neck + dome (+ lobe or bleb) signed distance on the box around the aneurysm."""
    radius = diameter / 2
    neck_r = max(0.6 * r_host, radius * rng.uniform(0.45, 0.75), 0.6)
    neck_len = rng.uniform(0.1, 0.4) * radius
    p = wall_centre
    centre = p + direction * (r_host + neck_len + 0.8 * radius)
    stretch = rng.uniform(0.85, 1.15, size=3)
    stretch *= 1.0 / np.cbrt(np.prod(stretch))  # same volume as the sphere of the drawn size
    rot = random_rotation(rng)
    reach = np.linalg.norm(centre - p) + 1.4 * radius + margin_mm
    found = _box_points(image, p, reach)
    if found is None:
        return None, centre, radius
    box, xyz = found
    sdf = np.minimum(_segment_sdf(xyz, p, centre, neck_r), _ellipsoid_sdf(xyz, centre, radius * stretch, rot))
    roll = rng.random()
    if roll < 0.3:  # daughter sac (bleb) on the dome, towards the fundus side
        u = rng.normal(size=3)
        u = u / np.linalg.norm(u) + direction
        u /= np.linalg.norm(u)
        rb = radius * rng.uniform(0.3, 0.45)
        cb = centre + u * (radius * 0.95)
        sdf = np.minimum(sdf, np.sqrt(sum((xyz[q] - cb[q]) ** 2 for q in range(3))) - rb)
    elif roll < 0.5:  # lobulated: a second lobe beside the first
        u = rng.normal(size=3)
        u -= (u @ direction) * direction
        u /= np.linalg.norm(u)
        rl = radius * rng.uniform(0.55, 0.75)
        cl = centre + u * radius * 0.7 + direction * 0.2 * radius
        sdf = np.minimum(sdf, np.sqrt(sum((xyz[q] - cl[q]) ** 2 for q in range(3))) - rl)
    fundus = np.linalg.norm(centre - p) + radius
    along = np.clip(sum((xyz[q] - p[q]) * direction[q] for q in range(3)) / fundus, 0, 1)
    return _Dome(sdf.astype(np.float32), along.astype(np.float32), box), centre, radius


def _choose_sites(geo, points, kinds_wanted, image, mask_arr, n, rng):
    """Candidate indices per site kind, in a random order weighted by :data:`INSERTION_SITES`."""
    size_mm = (np.asarray(image.GetSize()) - 1) * np.asarray(image.GetSpacing())
    idx = continuous_index(image, points) * np.asarray(image.GetSpacing())
    inside = np.all((idx > FACE_MARGIN_MM + 6) & (idx < size_mm - FACE_MARGIN_MM - 6), axis=1)
    ok = (geo["radius_mm"] >= MIN_HOST_RADIUS_MM) & inside & (np.linalg.norm(geo["direction"], axis=1) > 0.5)
    pools = {k: [int(i) for i in rng.permutation(np.flatnonzero(ok & np.isin(geo["kind"], _HOST_KINDS[k])))]
             for k in kinds_wanted}
    return pools


def insert_aneurysms(image, *, vessel_mask=None, n: int = 1, sites=None, seed: int = 0, max_tries: int = 60):
    """Insert ``n`` saccular aneurysms into a TOF-MRA volume; returns (new image, list of Aneurysm).

    Args:
        image: healthy TOF-MRA (sitk.Image or path); any pixel type (the output keeps it).
        vessel_mask: artery mask on the image grid (uint8); None runs :func:`lm_zoo.vessels.vessel_mask`.
        n: number of aneurysms (>= 0; 0 returns a copy and an empty list).
        sites: None (all kinds by :data:`INSERTION_SITES` weight), a sequence of site kinds from
            :data:`INSERTION_SITES`, or an (m, 3) array of LPS points on vessels to use in order.
        seed: everything random (sites, shape, size, noise) derives from it: same inputs, same output.

    Raises InsertionError when fewer than ``n`` usable sites exist.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InsertionError(f"n must be a non-negative int, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InsertionError(f"seed must be an int, got {seed!r}")
    image = vessels.as_image(image)
    if n == 0:
        return sitk.Image(image), []
    if vessel_mask is None:
        vessel_mask = vessels.vessel_mask(image)
    elif vessel_mask.GetSize() != image.GetSize():
        raise InsertionError(f"vessel_mask size {vessel_mask.GetSize()} differs from image size {image.GetSize()}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 16]))
    arr = sitk.GetArrayFromImage(image)
    values = arr.astype(np.float32)
    mask_arr = sitk.GetArrayViewFromImage(vessel_mask) > 0
    if not mask_arr.any():
        raise InsertionError("no vessels found in the image: nowhere to insert an aneurysm")
    depth = vessels.distance_inside(vessel_mask)
    host = _Host(image, values, mask_arr, signed_depth(vessel_mask, depth), _noise_level(values, mask_arr, depth),
                 float(values.min()), float(values.max()), values.copy(), np.zeros(mask_arr.shape, bool))
    explicit, kinds = _requested_sites(sites)
    points, geo, order = _site_order(host, vessel_mask, depth, explicit, kinds, n, rng, max_tries)
    placed: list[Aneurysm] = []
    for kind, i in order:
        if len(placed) == n:
            break
        an = _grow(host, kind, points[i], float(geo["radius_mm"][i]), geo["direction"][i], rng, explicit is not None)
        if an is not None:
            placed.append(an)
    if len(placed) < n:
        raise InsertionError(f"only {len(placed)} of {n} aneurysms found a usable site (host radius >= "
                             f"{MIN_HOST_RADIUS_MM} mm, dome inside the volume and clear of other arteries)")
    out = host.out
    if np.issubdtype(arr.dtype, np.integer):
        out = np.rint(out)
    result = sitk.GetImageFromArray(out.astype(arr.dtype))
    result.CopyInformation(image)
    return result, placed


@dataclass
class _Host:
    """The volume aneurysms grow into: its values, vessels, signed depth, noise level and value
    range, the output being written (``out``) and the voxels already used (``taken``)."""
    image: sitk.Image
    values: np.ndarray
    mask: np.ndarray
    sdepth: np.ndarray
    sigma: float
    vmin: float
    vmax: float
    out: np.ndarray
    taken: np.ndarray


def _noise_level(values, mask_arr, depth) -> float:
    """:func:`noise_sigma` of the deep vessel interior, where the signal is flat (nearer the wall
    the steep profile inflates neighbour differences: on the real sample 25 at > 0.5 mm vs 11 at
    > 1.2 mm); a saturated image's clipped voxels left out."""
    vmax = float(values.max())
    saturated = vmax if np.mean(values[mask_arr] >= vmax) > 0.01 else None
    deep = depth > NOISE_DEPTH_MM
    return noise_sigma(values, deep if deep.sum() >= 200 else depth > 0.5 * NOISE_DEPTH_MM, saturated)


def _requested_sites(sites):
    """(explicit (m, 3) LPS points or None, site kinds) from the ``sites`` argument."""
    if sites is None:
        return None, list(INSERTION_SITES)
    if isinstance(sites, np.ndarray) or (len(sites) and not isinstance(sites[0], str)):
        return np.asarray(sites, float).reshape(-1, 3), []
    kinds = [str(s) for s in sites]
    unknown = sorted(set(kinds) - set(INSERTION_SITES))
    if unknown:
        raise InsertionError(f"sites {unknown} not in {sorted(INSERTION_SITES)}")
    return None, kinds


def _site_order(host, vessel_mask, depth, explicit, kinds, n, rng, max_tries):
    """(points, their local geometry, [(site kind, point index)] in the order to try)."""
    if explicit is not None:
        geo = vessels.local_geometry(vessel_mask, explicit, depth)
        return explicit, geo, [(str(_site_of(k)), i) for i, k in enumerate(geo["kind"])]
    points = vessels.candidate_points(host.image, vessel_mask, seed=int(rng.integers(2**31)))
    geo = vessels.local_geometry(vessel_mask, points, depth)
    pools = _choose_sites(geo, points, kinds, host.image, host.mask, n, rng)
    order = []
    for _ in range(max_tries):
        live = [k for k in kinds if pools[k]]
        if not live:
            break
        w = np.array([INSERTION_SITES[k] for k in live])
        k = live[int(rng.choice(len(live), p=w / w.sum()))]
        order.append((k, pools[k].pop(0)))
    return points, geo, order


def _grow(host: _Host, kind, p, radius_mm, direction, rng, explicit: bool):
    """Grow one aneurysm at vessel point ``p`` into ``host.out``; the Aneurysm, or None where the
    site does not take one (an explicit site raises InsertionError instead)."""
    image = host.image
    r_host = max(radius_mm, 0.5)
    if np.linalg.norm(direction) < 0.5:
        if explicit:
            raise InsertionError(f"site {np.round(p, 1).tolist()} (LPS mm): no vessel branches around it")
        return None
    direction = direction + rng.normal(scale=0.15, size=3)
    direction /= np.linalg.norm(direction)
    diameter = _draw_diameter(rng)
    dome, centre, radius = _dome(image, p, direction, r_host, diameter, rng, PROFILE_OUTSIDE_MM + 1.0)
    if dome is None:
        return None
    inside = dome.sdf < 0
    # Not into another artery (or an earlier aneurysm): the dome beyond the neck must be free.
    far = inside & (dome.along > 0.35)
    hit = (host.mask[dome.box] | host.taken[dome.box])[far]
    if not explicit and (hit.size == 0 or hit.mean() > 0.05):
        return None
    size_mm = (np.asarray(image.GetSize()) - 1) * np.asarray(image.GetSpacing())
    ci = continuous_index(image, [centre])[0] * np.asarray(image.GetSpacing())
    if np.any(ci - radius * 1.3 < FACE_MARGIN_MM) or np.any(ci + radius * 1.3 > size_mm - FACE_MARGIN_MM):
        if explicit:
            raise InsertionError(f"site {np.round(p, 1).tolist()} (LPS mm): the dome would leave the volume")
        return None
    # The host's own profile across its wall, around the site.
    hbox, hxyz = _box_points(image, p, HOST_REGION_MM)
    near = np.sqrt(sum((hxyz[q] - p[q]) ** 2 for q in range(3))) <= HOST_REGION_MM
    region = near & (host.sdepth[hbox] >= -PROFILE_OUTSIDE_MM) & ~host.taken[hbox]
    centres_d, med, _ = depth_profile(host.values[hbox], host.sdepth[hbox], region, hi=max(r_host, 0.3))
    ad = -dome.sdf
    synth = np.interp(ad, centres_d, med).astype(np.float32)
    interior = ad > 0
    synth[interior] *= (1.0 - rng.uniform(0.0, 0.15) * dome.along[interior])
    noise_rng = np.random.default_rng(rng.integers(2**63))
    noisy = synth + noise_rng.normal(scale=host.sigma, size=synth.shape).astype(np.float32)
    cur = host.out[dome.box]
    change = (ad > -PROFILE_OUTSIDE_MM) & (synth > cur)
    cur[change] = np.clip(noisy[change], host.vmin, host.vmax)
    host.taken[dome.box] |= ad > -1.0
    return Aneurysm(center_lps=centre, radius_mm=round(float(radius), 3), site=kind)


def _site_of(kind: str) -> str:
    for site, kinds in _HOST_KINDS.items():
        if kind in kinds:
            return site
    return "side_wall"


# ------------------------------------------------------------------------------ cohorts
HEALTHY_LAYOUT = (
    "images/<case_id>.<nii.gz|nii|mha|mhd|nrrd|nhdr> (or images/<case_id>/ holding one DICOM series): "
    "healthy TOF-MRA volumes (no aneurysm), optional cases.txt"
)
COUNT_PROBABILITIES = {1: 0.8, 2: 0.15, 3: 0.05}  # aneurysms per positive case (multiple in ~20 %)


def healthy_cases(source_dir) -> dict[str, str]:
    """{case_id: image path} of a healthy cohort folder (``cases.txt`` selects, when present)."""
    from lm_zoo import cohorts

    root = cohorts.check_root(source_dir, HEALTHY_LAYOUT)
    _refuse_annotations(root)
    images = cohorts.find_images(root / "images", HEALTHY_LAYOUT)
    cases_path = root / "cases.txt"
    if cases_path.exists():
        listed = cohorts.read_case_list(cases_path)
        missing = sorted(set(listed) - set(images))
        if missing:
            raise cohorts.CohortError(f"{cases_path}: case(s) {missing} have no image in {root / 'images'}")
        images = {c: images[c] for c in listed}
    return dict(sorted(images.items()))


def _refuse_annotations(root) -> None:
    """An annotated cohort given as healthy: its aneurysms would be ignored (unlabelled aneurysms
    among the normal-vessel candidates) and new ones inserted beside them, so it is refused."""
    from lm_zoo import cohorts

    table, masks = root / "aneurysms.csv", root / "masks"
    has_masks = masks.is_dir() and any(not p.name.startswith(".") for p in masks.iterdir())  # an empty one is no annotation
    found = table if table.exists() else masks if has_masks else None
    if found is not None:
        raise cohorts.CohortError(
            f"{found}: the inserted config expects HEALTHY TOF-MRAs (images/ and optional cases.txt only) and "
            f"would ignore these aneurysm annotations; for an annotated cohort build mra_aneurysm_patches/manual "
            f"(it reads aneurysms.csv or masks/), or move {found.name} out of {root} to insert aneurysms")


def source_digest(source_dir) -> str:
    """Digest of a healthy cohort's volumes (names and bytes) and case list: the cache key of its
    inserted cohort, so that a changed or added volume is never served from an old cache."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256()
    for cid, path in healthy_cases(source_dir).items():
        p = Path(path)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        if p.suffix.lower() in (".mhd", ".nhdr"):
            files += sorted(f for f in p.parent.glob(p.name.split(".")[0] + ".*") if f != p)
        for f in files:
            digest.update(cid.encode() + b"\0" + f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def case_insertion_plan(seed: int, case_ids, aneurysm_fraction: float) -> dict[str, int]:
    """{case_id: number of aneurysms to insert}: positives by :func:`head_mra.case_plan`'s
    low-discrepancy rule over the sorted ids (the fraction holds to within one case), the count per
    positive from :data:`COUNT_PROBABILITIES` drawn with the case's own seed."""
    from lm_zoo import cohorts
    from lm_zoo.phantoms.head_mra import case_plan

    plan = {}
    counts, probs = zip(*COUNT_PROBABILITIES.items())
    for i, cid in enumerate(sorted(case_ids)):
        positive = case_plan(seed, i, aneurysm_fraction)[1]
        rng = np.random.default_rng(cohorts.case_seed(seed, cid))
        plan[cid] = int(rng.choice(counts, p=probs)) if positive else 0
    return plan


def write_cohort(out_dir, n_cases: int, seed: int = 0, *, source_dir, source_digest: str = "",
                 aneurysm_fraction: float = 0.5, progress: bool = True, overwrite: bool = False) -> list[str]:
    """Write the healthy cohort ``source_dir`` with aneurysms inserted as an aneurysm cohort.

    Layout written (the one :func:`lm_zoo.cohorts.read_aneurysm_cohort` reads): ``images/<case>.nii.gz``
    (same pixel type as the source), ``aneurysms.csv`` (LPS mm; sites ``bifurcation``/``outer_curve``/
    ``side_wall``), ``cases.txt`` and ``provenance.txt`` (``user+inserted``). Case c gets
    :func:`case_insertion_plan`'s count, inserted with seed ``cohorts.case_seed(seed, c)``; where a
    volume has fewer usable sites it gets as many as fit (possibly none: said on stderr). Case
    aneurysm-free in the plan are copied unchanged (re-encoded). ``n_cases`` must equal the source's
    number of cases (it is part of the cache key); ``source_digest`` only keys the cache.
    """
    import csv
    import io
    import sys

    from tqdm.auto import tqdm

    from lm_zoo import cohorts
    from lm_zoo._atomic import atomic_path
    from lm_zoo.io import read_image
    from lm_zoo.phantoms.head_mra import CSV_COLUMNS

    del source_digest
    cases = healthy_cases(source_dir)
    if n_cases != len(cases):
        raise cohorts.CohortError(f"{source_dir}: holds {len(cases)} cases, expected {n_cases}")
    out = prepare_cohort_dir(out_dir, overwrite, ("images",))
    plan = case_insertion_plan(seed, cases, aneurysm_fraction)
    rows = []
    for cid, path in tqdm(cases.items(), desc="inserting aneurysms", unit="case", disable=not progress):
        try:
            image = read_image(path)
        except (ValueError, FileNotFoundError) as err:
            raise cohorts.CohortError(f"case {cid!r}: cannot read volume {path}: {err}") from None
        placed = []
        if plan[cid]:
            mask = vessels.vessel_mask(image)
            for n in range(plan[cid], 0, -1):
                try:
                    image_out, placed = insert_aneurysms(image, vessel_mask=mask, n=n,
                                                         seed=cohorts.case_seed(seed, cid))
                    image = image_out
                    break
                except InsertionError as err:
                    print(f"case {cid!r}: {err}", file=sys.stderr)
        rows += aneurysm_rows(cid, placed)
        with atomic_path(out / "images" / f"{cid}.nii.gz") as tmp:
            sitk.WriteImage(image, str(tmp), True)
    table = io.StringIO()
    w = csv.writer(table, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    w.writerows(rows)
    write_text(out / "aneurysms.csv", table.getvalue())
    write_text(out / "cases.txt", "".join(f"{c}\n" for c in cases))
    write_text(out / "provenance.txt", f"user+inserted: healthy TOF-MRA from {source_dir}, aneurysms inserted by "
                f"lm_zoo.phantoms.insert_aneurysms (seed {seed}, aneurysm fraction {aneurysm_fraction})\n")
    return list(cases)


__all__ += ["write_cohort", "healthy_cases", "source_digest", "case_insertion_plan", "HEALTHY_LAYOUT"]
