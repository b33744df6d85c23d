"""Landmarks of the package's table derived from a TotalSegmentator segmentation.

:func:`landmarks_from_segmentation` turns TotalSegmentator output (a multi-label ``total`` map,
a folder of per-structure masks, or a dict of task maps) into the named LPS mm points of
:data:`lm_zoo.anatomy.LANDMARKS`, using the table's own definition of each point.
Class names and ids come from :mod:`lm_zoo.totalsegmentator`.

Every rule works on voxel centres in physical space (LPS mm) and is one line in :data:`RULES`
(landmark -> structures -> rule). "Cap" means the voxels within a few mm of a mask's extreme
along a direction; a cap's point is the cap centroid moved onto the mask surface (half a voxel
beyond the extreme voxel centre). "Just inside" points and "on the wall" points follow the
table's wording. A structure cut by the field of view (its mask reaching the first/last voxel
plane on a side the landmark depends on) yields no landmark and one warning naming it.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lm_zoo.anatomy import LM60, VERTEBRAE
from lm_zoo.errors import LmZooError
from lm_zoo.totalsegmentator import KNOWN_STRUCTURES, SUBTASKS, TASKS, TOTAL

__all__ = ["landmarks_from_segmentation", "SegmentationError", "SegmentationWarning", "RULES", "STRUCTURE_FILE_SUFFIXES"]

STRUCTURE_FILE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".nrrd")
_GRID_TOLERANCE = 1e-3  # mm / direction cosine: same grid


class SegmentationError(LmZooError, ValueError):
    """A segmentation that cannot be turned into landmarks (names the file or folder)."""


class SegmentationWarning(UserWarning):
    """A structure skipped (cut by the field of view, implausible) or labels not understood."""



# landmark -> (TotalSegmentator structures, rule). Documentation and the order of computation.
RULES: dict[str, tuple[str, str]] = {
    **{f"vertebra_{v}": (f"vertebrae_{v.upper()} (+ vertebrae_body, spinal_cord)",
                         "centroid of the vertebral body: vertebrae_body ∩ vertebra when present, else the "
                         "vertebra's voxels in front of its spinal canal (spinal_cord within 3 mm of the "
                         "vertebra, else the hole in the ring), opened, largest component") for v in VERTEBRAE},
    "sternal_notch": ("sternum", "superior cap of the sternum (midpoint of the manubrium's superior border)"),
    "sternal_angle": ("sternum", "centroid of the narrowest cross-section (along the sternum's long axis) between "
                                 "10% and 55% of its length from the top: the manubriosternal waist"),
    "xiphoid_tip": ("sternum", "inferior cap of the sternum"),
    "lung_apex_right": ("lung_upper_lobe_right", "apex of a quadratic fitted to the upper lobe's top surface"),
    "lung_apex_left": ("lung_upper_lobe_left", "apex of a quadratic fitted to the upper lobe's top surface"),
    "carina": ("trachea", "inferior end of the tracheal lumen: centroid of its last 6 mm above the end (or "
                          "above where it splits in two), at the mean height of the end surface"),
    "rib12_tip_right": ("rib_right_12", "cap of the 12th rib farthest from its vertebral end (the T12/spine end)"),
    "rib12_tip_left": ("rib_left_12", "cap of the 12th rib farthest from its vertebral end (the T12/spine end)"),
    "heart_apex": ("heart", "tip = heart voxels farthest from the centroid on the left-anterior-inferior end "
                            "of the principal axis; the point 10% of the way back to the centroid"),
    "aortic_root": ("aorta_annulus: annulus_proper, else aorta + heart",
                    "centroid of the aortic annulus mask; else centroid of the aorta voxels touching the heart"),
    "aortic_arch_top": ("aorta", "centreline below the aorta's superior cap: the voxel of largest wall distance "
                                 "in the column under the cap"),
    "brachiocephalic_trunk_origin": ("brachiocephalic_trunk + aorta", "centroid of the branch voxels touching the aorta"),
    "left_common_carotid_origin": ("common_carotid_artery_left + aorta", "centroid of the branch voxels touching the aorta"),
    "left_subclavian_artery_origin": ("subclavian_artery_left + aorta", "centroid of the branch voxels touching the aorta"),
    "pulmonary_trunk_bifurcation": ("pulmonary_artery_landmarks: pul_bifurcation", "centroid of the pul_bifurcation mask"),
    "aortic_hiatus": ("aorta + vertebrae_T12", "centroid of the aorta's axial cross-section at the height of the "
                                               "T12 body centre"),
    "celiac_trunk_origin": ("renal_arteries: celiac_trunk + aorta", "centroid of the branch voxels touching the aorta"),
    "sma_origin": ("renal_arteries: superior_mesenteric_artery + aorta", "centroid of the branch voxels touching the aorta"),
    "right_renal_artery_origin": ("renal_arteries: renal_arteries + aorta",
                                  "centroid of the renal-artery voxels touching the aorta on its right side"),
    "left_renal_artery_origin": ("renal_arteries: renal_arteries + aorta",
                                 "centroid of the renal-artery voxels touching the aorta on its left side"),
    "aortic_bifurcation": ("aorta + iliac_artery_left/right", "centroid of the aorta voxels touching the iliac arteries "
                                                              "(the aorta's inferior end)"),
    "right_iliac_bifurcation": ("-", "not derivable from 'total': the internal iliac artery is not labelled"),
    "left_iliac_bifurcation": ("-", "not derivable from 'total': the internal iliac artery is not labelled"),
    "gastroesophageal_junction": ("esophagus + stomach", "centroid of the oesophagus voxels touching the stomach "
                                                         "within 10 mm (along the oesophagus) of its distal end"),
    "liver_dome": ("liver", "apex of a quadratic fitted to the liver's top surface (one lobe)"),
    "liver_inferior_tip": ("liver", "apex of the liver surface along (0.3 R, 0.35 A, 1 I), moved 10% of its "
                                    "distance to the liver centroid inwards"),
    "spleen_superior_pole": ("spleen", "88% of the way from the centroid to the tip along the principal axis "
                                       "closest to superior (the upper end)"),
    "spleen_inferior_tip": ("spleen", "88% of the way from the centroid to the tip along that axis (the lower end)"),
    **{f"kidney_{s}_{p}_pole": (f"kidney_{s}", f"92% of the way from the centroid to the {p} tip along the long "
                                                "(principal) axis") for s in ("right", "left") for p in ("upper", "lower")},
    "kidney_right_hilum": ("kidney_right", "centroid of the renal sinus: the largest component of the kidney's "
                                           "convex hull (filled) minus the kidney, on its medial side"),
    "kidney_left_hilum": ("kidney_left", "centroid of the renal sinus: the largest component of the kidney's "
                                         "convex hull (filled) minus the kidney, on its medial side"),
    "sacral_promontory": ("vertebrae_S1 (else sacrum) + spinal_cord", "S1 body (as for vertebrae): cap of its "
                                                                     "midsagittal slab along anterior+superior, 4 mm inside"),
    "iliac_crest_top_right": ("hip_right", "superior cap of the hip bone, 3 mm inside"),
    "iliac_crest_top_left": ("hip_left", "superior cap of the hip bone, 3 mm inside"),
    "asis_right": ("hip_right", "cap of the upper half of the hip bone along (0.35 lateral, 1 A, 0.15 S), 3 mm inside"),
    "asis_left": ("hip_left", "cap of the upper half of the hip bone along (0.35 lateral, 1 A, 0.15 S), 3 mm inside"),
    "femoral_head_right": ("femur_right", "centre of a sphere fitted (least squares, trimmed) to the surface of the "
                                          "femur within 32 mm of its top"),
    "femoral_head_left": ("femur_left", "centre of a sphere fitted (least squares, trimmed) to the surface of the "
                                        "femur within 32 mm of its top"),
    "pubic_symphysis": ("hip_left + hip_right", "mean of the superior caps of each hip bone's voxels within 8 mm "
                                                "of the other one (the symphysis)"),
}

_DIRECTION = {"L": (1, 0, 0), "R": (-1, 0, 0), "P": (0, 1, 0), "A": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1)}
_ALL = "LRPASI"


class _Grid:
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


class _Region:
    """Voxels of one structure (or part of it): (z, y, x) indices plus their LPS points."""

    def __init__(self, grid: _Grid, zyx: np.ndarray, name: str):
        self.grid, self.zyx, self.name = grid, np.asarray(zyx, np.int64).reshape(-1, 3), name
        self.points = grid.to_lps(self.zyx)

    def __len__(self):
        return len(self.zyx)

    def subset(self, keep, name=None) -> "_Region":
        return _Region(self.grid, self.zyx[keep], name or self.name)

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


class _Skip(Exception):
    """A landmark that the present structures cannot define; the message goes into a warning."""


# ------------------------------------------------------------------------------------ reading
def _is_label_pixel(image: sitk.Image, source: str) -> np.ndarray:
    array = sitk.GetArrayFromImage(image)
    if image.GetNumberOfComponentsPerPixel() != 1 or image.GetDimension() != 3:
        raise SegmentationError(f"{source}: a segmentation must be a 3D scalar label image, got "
                                f"{image.GetDimension()}D with {image.GetNumberOfComponentsPerPixel()} components")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise SegmentationError(f"{source}: label image holds non-integer values (pixel type "
                                    f"{image.GetPixelIDTypeAsString()}); a segmentation must hold integer labels")
        array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise SegmentationError(f"{source}: label image holds negative values (min {array.min()})")
    return array


def _read(path: Path) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise SegmentationError(f"{path}: SimpleITK cannot read this segmentation ({str(err).strip().splitlines()[0]})") from None


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=_GRID_TOLERANCE)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=_GRID_TOLERANCE)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=_GRID_TOLERANCE))


def _grid_text(image: sitk.Image) -> str:
    return (f"size {image.GetSize()}, spacing {tuple(round(s, 4) for s in image.GetSpacing())}, origin "
            f"{tuple(round(o, 3) for o in image.GetOrigin())}, direction {tuple(round(d, 3) for d in image.GetDirection())}")


def _decode(array: np.ndarray, classes: dict[int, str], source: str, structures: dict) -> None:
    """Split a multi-label array into structure index arrays (non-empty only)."""
    objects = ndimage.find_objects(array)
    unknown = []
    for label, box in enumerate(objects, start=1):
        if box is None:
            continue
        if label not in classes:
            unknown.append(label)
            continue
        zyx = np.argwhere(array[box] == label) + [s.start for s in box]
        if len(zyx):
            structures[classes[label]] = zyx
    if unknown:
        warnings.warn(f"{source}: label id(s) {unknown[:20]}{' ...' if len(unknown) > 20 else ''} are not in "
                      "TotalSegmentator's class map for this task; ignored", SegmentationWarning, stacklevel=4)


def _structure_stem(path: Path) -> str | None:
    name = path.name
    for suffix in STRUCTURE_FILE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


def _load(segmentation, image):
    """(reference grid, {structure: zyx indices}, source text)."""
    structures: dict[str, np.ndarray] = {}
    reference: sitk.Image | None = None
    reference_source = None

    def add_image(img: sitk.Image, source: str, classes: dict[int, str] | None, single: str | None = None):
        nonlocal reference, reference_source
        if reference is None:
            reference, reference_source = img, source
        elif not _same_grid(reference, img):
            raise SegmentationError(f"{source}: on a different voxel grid ({_grid_text(img)}) than {reference_source} "
                                    f"({_grid_text(reference)}); resample it (nearest neighbour) first")
        array = _is_label_pixel(img, source)
        if single is not None:
            if single in SUBTASKS and array.max() > 1:  # a subtask written as one multi-label file
                _decode(array, SUBTASKS[single], source, structures)
                return
            zyx = np.argwhere(array > 0)
            if len(zyx):
                structures[single] = zyx
            return
        _decode(array, classes, source, structures)

    if isinstance(segmentation, Mapping):
        source = "segmentation dict"
        for key, value in segmentation.items():
            where = f"segmentation[{key!r}]" if isinstance(value, sitk.Image) else str(value)
            img = value if isinstance(value, sitk.Image) else _read(Path(os.fspath(value)))
            if key in TASKS and not (key in KNOWN_STRUCTURES and key in SUBTASKS and sitk.GetArrayViewFromImage(img).max() <= 1):
                add_image(img, where, TASKS[key])
            elif key in KNOWN_STRUCTURES:
                add_image(img, where, None, single=key)
            else:
                raise SegmentationError(f"{where}: key {key!r} is neither a TotalSegmentator task ({sorted(TASKS)}) "
                                        "nor a structure name")
    elif isinstance(segmentation, sitk.Image):
        source = "segmentation image"
        add_image(segmentation, source, TOTAL)
    else:
        path = Path(os.fspath(segmentation))
        source = str(path)
        if not path.exists():
            raise FileNotFoundError(f"segmentation not found: {path}")
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and _structure_stem(p) in KNOWN_STRUCTURES)
            if not files:
                raise SegmentationError(f"{path}: folder holds no mask named like a TotalSegmentator structure "
                                        f"(e.g. aorta.nii.gz, vertebrae_L1.nii.gz, kidney_left.nii.gz)")
            for f in files:
                add_image(_read(f), str(f), None, single=_structure_stem(f))
        else:
            add_image(_read(path), str(path), TOTAL)
    if image is not None:
        from lm_zoo.io import read_image

        ref_image = read_image(image)
        if not _same_grid(reference, ref_image):
            raise SegmentationError(f"{reference_source}: segmentation grid ({_grid_text(reference)}) differs from the "
                                    f"image's ({_grid_text(ref_image)}); resample the segmentation onto the image "
                                    "(nearest neighbour) first")
    return _Grid(reference), structures, source


# ------------------------------------------------------------------------------------ geometry
def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _cap_point(region: _Region, d, depth: float = 3.0, inside: float = 0.0) -> np.ndarray:
    """Cap of ``region`` along unit ``d``: cap centroid put on the surface, then ``inside`` mm back."""
    d = _unit(d)
    s = region.points @ d
    top = s.max()
    cap = region.points[s >= top - depth].mean(axis=0)
    surface = top + region.grid.half_voxel(d)
    return cap + (surface - cap @ d - inside) * d


def _principal_axes(points: np.ndarray):
    centroid = points.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov((points - centroid).T))
    order = np.argsort(values)[::-1]
    return centroid, vectors[:, order].T, values[order]


def _along_axis(region: _Region, axis, fraction: float) -> np.ndarray:
    """Point ``fraction`` of the way from the centroid to the surface tip along unit ``axis``."""
    c = region.centroid
    s = (region.points - c) @ axis
    return c + fraction * (s.max() + region.grid.half_voxel(axis)) * axis


def _dilate_contact(a: _Region, b: _Region) -> _Region:
    """Voxels of ``a`` face-, edge- or corner-adjacent to (or overlapping) ``b``."""
    lo = np.minimum(a.zyx.min(axis=0), b.zyx.min(axis=0)) - 1
    hi = np.maximum(a.zyx.max(axis=0), b.zyx.max(axis=0)) + 2
    mb = np.zeros(hi - lo, bool)
    ib = b.zyx - lo
    mb[ib[:, 0], ib[:, 1], ib[:, 2]] = True
    mb = ndimage.binary_dilation(mb, structure=np.ones((3, 3, 3), bool))
    ia = a.zyx - lo
    return a.subset(mb[ia[:, 0], ia[:, 1], ia[:, 2]])


def _intersection(a: _Region, b: _Region) -> _Region:
    """Voxels of ``a`` that are also in ``b``."""
    mask, lo = b.crop()
    idx = a.zyx - lo
    ok = np.all((idx >= 0) & (idx < mask.shape), axis=1)
    keep = np.zeros(len(a), bool)
    keep[ok] = mask[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
    return a.subset(keep)


def _within(a: _Region, b: _Region, mm: float) -> _Region:
    """Voxels of ``a`` within ``mm`` of ``b``."""
    pad = int(np.ceil(mm / a.grid.spacing.min())) + 1
    mask, lo = b.crop(pad=pad)
    dist = ndimage.distance_transform_edt(~mask, sampling=a.grid.spacing[::-1])
    idx = a.zyx - lo
    ok = np.all((idx >= 0) & (idx < mask.shape), axis=1)
    keep = np.zeros(len(a), bool)
    keep[ok] = dist[idx[ok, 0], idx[ok, 1], idx[ok, 2]] <= mm
    return a.subset(keep)


def _dome_apex(region: _Region, d, depth: float = 8.0, radius: float = 45.0) -> np.ndarray:
    """Apex of the mask's surface along unit ``d``: a quadratic fitted to the surface heights
    (the highest voxel per column along ``d``) within ``depth`` mm of the top and ``radius`` mm
    of the highest column (one lobe, not a second one of similar height), put on the surface.
    Falls back to the cap centroid when the fit is not a dome."""
    d = _unit(d)
    e1 = _unit(np.cross(d, [1.0, 0, 0] if abs(d[0]) < 0.9 else [0, 1.0, 0]))
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
    fallback = _cap_point(region, d)
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


def _column_ends(region: _Region, d) -> float:
    """Mean height along ``d`` of the region's end surface: per column, the farthest voxel
    along ``d`` (plus half a voxel); returned as an LPS coordinate along d's dominant axis."""
    d = _unit(d)
    h = region.points @ d
    keys = region.zyx[:, 1:] if abs(d[2]) > 0.7 else region.zyx[:, [0, 2]]
    order = np.lexsort((-h, keys[:, 1], keys[:, 0]))
    k, hs = keys[order], h[order]
    first = np.r_[True, np.any(np.diff(k, axis=0) != 0, axis=1)]
    end = hs[first].mean() + region.grid.half_voxel(d)
    return float(end * d[int(np.argmax(np.abs(d)))])


def _geodesic(region: _Region, sources: np.ndarray) -> np.ndarray:
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


def _outside(a: _Region, b: _Region) -> _Region:
    """Voxels of ``a`` not in ``b`` (a subtask's branch mask may overlap the total map's aorta)."""
    inside = _intersection(a, b)
    if len(inside) == 0:
        return a
    mask, lo = inside.crop()
    idx = a.zyx - lo
    ok = np.all((idx >= 0) & (idx < mask.shape), axis=1)
    drop = np.zeros(len(a), bool)
    drop[ok] = mask[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
    return a.subset(~drop)


def _largest_component(region: _Region) -> _Region:
    mask, lo = region.crop()
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return region
    sizes = np.bincount(labels.ravel())[1:]
    keep = labels == (np.argmax(sizes) + 1)
    idx = region.zyx - lo
    return region.subset(keep[idx[:, 0], idx[:, 1], idx[:, 2]])


def _fit_sphere(points: np.ndarray):
    """Least-squares sphere through ``points``: (centre, radius)."""
    a = np.c_[2 * points, np.ones(len(points))]
    b = (points ** 2).sum(axis=1)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre = sol[:3]
    return centre, float(np.sqrt(max(sol[3] + centre @ centre, 0.0)))


def _surface(region: _Region) -> _Region:
    mask, lo = region.crop()
    inner = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1))
    idx = region.zyx - lo
    return region.subset(~inner[idx[:, 0], idx[:, 1], idx[:, 2]])


# ------------------------------------------------------------------------------------ the rules
class _Deriver:
    def __init__(self, grid: _Grid, structures: dict, source: str):
        self.grid, self.raw, self.source = grid, structures, source
        self.regions: dict[str, _Region] = {}
        self._bodies: dict[str, _Region | None] = {}
        self.skipped: dict[str, list[str]] = {}  # structure -> landmarks

    def has(self, name) -> bool:
        return name in self.raw

    def region(self, name) -> _Region:
        if name not in self.raw:
            raise KeyError(name)
        if name not in self.regions:
            self.regions[name] = _Region(self.grid, self.raw[name], name)
        return self.regions[name]

    def need(self, name, faces: str = _ALL, region: _Region | None = None) -> _Region:
        """The structure's region, or _Skip when it is absent or cut on one of ``faces``."""
        if region is None:
            if name not in self.raw:
                raise KeyError(name)
            region = self.region(name)
        cut = self.grid.touched(region.zyx, faces)
        if cut:
            raise _Skip(f"{name} is cut by the field of view (touches the {'/'.join(cut)} border)")
        return region

    # ---- spine
    def vertebral_body(self, level: str) -> _Region:
        """Body of ``vertebrae_<level>`` (level like 'L1', 'S1')."""
        name = f"vertebrae_{level}"
        if level in self._bodies:
            if self._bodies[level] is None:
                raise _Skip(f"{name}: no vertebral body found")
            return self._bodies[level]
        vertebra = self.need(name)
        body = None
        if self.has("vertebrae_body"):
            overlap = _intersection(vertebra, self.region("vertebrae_body"))
            if len(overlap) > 0.2 * len(vertebra):
                body = _largest_component(overlap)
        if body is None:
            body = self._body_anterior_to_canal(vertebra)
        self._bodies[level] = body
        if body is None:
            raise _Skip(f"{name}: no vertebral body found")
        return body

    def _body_anterior_to_canal(self, vertebra: _Region) -> _Region | None:
        """The vertebra's voxels in front of its spinal canal (the body), largest compact part.

        The canal is the spinal_cord label within 3 mm of the vertebra (the part its ring
        encloses), else the holes of the ring slice by slice; "in front" is the patient's
        anterior direction perpendicular to the canal's local axis.
        """
        pts = vertebra.points
        canal = None
        if self.has("spinal_cord"):
            near = _within(self.region("spinal_cord"), vertebra, 3.0)
            if len(near) >= 3:
                canal = near.points
        if canal is None:  # the vertebral foramen: holes of the ring, slice by slice
            mask, lo = vertebra.crop()
            holes = np.zeros_like(mask)
            for k in range(mask.shape[0]):
                holes[k] = ndimage.binary_fill_holes(mask[k]) & ~mask[k]
            if holes.sum() >= 3:
                canal = self.grid.to_lps(np.argwhere(holes) + lo)
        anterior = np.array(_DIRECTION["A"], float)
        if canal is None:
            s = pts @ anterior
            # no canal found: keep the anterior 60% of the vertebra's depth
            keep = s >= s.max() - 0.6 * (s.max() - s.min())
        else:
            centre = canal.mean(axis=0)
            axis = np.array([0.0, 0.0, 1.0])
            if len(canal) >= 10:
                _, axes, values = _principal_axes(canal)
                if values[0] > 2.0 * max(values[1], 1e-9):
                    axis = axes[0]
            anterior = _unit(anterior - (anterior @ axis) * axis)
            edge = ((canal - centre) @ anterior).max() + self.grid.half_voxel(anterior)
            keep = (pts - centre) @ anterior > edge + 1.0
        if keep.sum() < 0.1 * len(pts):
            return None
        body = vertebra.subset(keep)
        # drop pedicle stubs: an opening by one voxel, then the largest component
        mask, lo = body.crop()
        opened = ndimage.binary_opening(mask, structure=ndimage.generate_binary_structure(3, 1))
        if opened.sum() > 0.5 * mask.sum():
            idx = body.zyx - lo
            body = body.subset(opened[idx[:, 0], idx[:, 1], idx[:, 2]])
        return _largest_component(body)

    def vertebra(self, v: str) -> np.ndarray:
        return self.vertebral_body(v.upper()).centroid

    def sacral_promontory(self) -> np.ndarray:
        if self.has("vertebrae_S1"):
            body = self.vertebral_body("S1")
        else:
            body = self._body_anterior_to_canal(self.need("sacrum", "S"))
            if body is None:
                raise _Skip("sacrum: no S1 body found")
        c, axes, _ = _principal_axes(body.points)
        lateral = axes[0]  # the S1 body is widest from side to side
        d = np.add(_DIRECTION["A"], _DIRECTION["S"]).astype(float)
        d = _unit(d - (d @ lateral) * lateral)
        mid = body.subset(np.abs((body.points - c) @ lateral) <= max(3.0, 2 * self.grid.half_voxel(lateral)))
        return _cap_point(mid if len(mid) >= 3 else body, d, depth=3.0, inside=4.0)

    # ---- thorax
    def sternum_top(self):
        return _cap_point(self.need("sternum", "S"), _DIRECTION["S"])

    def sternum_bottom(self):
        return _cap_point(self.need("sternum", "I"), _DIRECTION["I"])

    def sternal_angle(self):
        st = self.need("sternum")
        c, axes, _ = _principal_axes(st.points)
        axis = axes[0] if axes[0][2] > 0 else -axes[0]
        s = (st.points - c) @ axis
        top, bottom = s.max(), s.min()
        step = max(2.0, 2 * st.grid.half_voxel(axis))
        levels = np.arange(top - 0.55 * (top - bottom), top - 0.10 * (top - bottom), step)
        if len(levels) < 3:
            raise _Skip("sternum: too short to find the manubriosternal joint")
        counts = np.array([np.count_nonzero(np.abs(s - t) <= step / 2) for t in levels])
        counts = ndimage.uniform_filter1d(counts.astype(float), 3, mode="nearest")
        t = levels[int(np.argmin(counts))]
        return st.points[np.abs(s - t) <= step].mean(axis=0)

    def lung_apex(self, side):
        return _dome_apex(self.need(f"lung_upper_lobe_{side}", "S"), _DIRECTION["S"])

    def carina(self):
        trachea = self.need("trachea", "I")
        z = trachea.zyx[:, 0]
        up_axis_high = self.grid.faces[(0, 1)] == "S"
        levels = sorted(set(z.tolist()), reverse=up_axis_high)  # from superior to inferior
        mask, lo = trachea.crop(pad=0)
        last = None
        for k in levels:
            section = mask[k - lo[0]]
            labels, n = ndimage.label(section, structure=np.ones((3, 3), bool))
            if n >= 2:
                sizes = np.bincount(labels.ravel())[1:]
                if np.sort(sizes)[-2] >= 0.15 * sizes.sum():
                    break  # split into two bronchi: the carina is the slice above
            last = k
        if last is None:
            raise _Skip("trachea: no cross-section above the split")
        # the lumen's end: centroid of the last 6 mm (a tilted end plane makes single slices
        # lopsided), at the mean height of the end surface
        n = int(np.ceil(6.0 / self.grid.spacing[2]))
        above = (z - last) * (1 if up_axis_high else -1)
        slab = trachea.subset((above >= 0) & (above <= n))
        centre = slab.centroid
        bottom = _column_ends(slab, _unit(_DIRECTION["I"]))
        return np.array([centre[0], centre[1], bottom])

    def rib12_tip(self, side):
        rib = self.need(f"rib_{side}_12")
        if self.has("vertebrae_T12"):
            anchor = self.region("vertebrae_T12").centroid
        else:
            # the rib's most medial voxels are its vertebral end
            medial = np.array(_DIRECTION["L" if side == "right" else "R"], float)
            s = rib.points @ medial
            anchor = rib.points[s >= s.max() - 5].mean(axis=0)
        dist = np.linalg.norm(rib.points - anchor, axis=1)
        cap = rib.points[dist >= dist.max() - 4.0]
        return cap.mean(axis=0)

    def heart_apex(self):
        heart = self.need("heart")
        c, axes, _ = _principal_axes(heart.points)
        axis = axes[0] if axes[0] @ _unit([1, -1, -1]) > 0 else -axes[0]
        r = heart.points - c
        side = r @ axis > 0
        dist = np.linalg.norm(r, axis=1) * side
        tip = heart.points[dist >= dist.max() - 3.0].mean(axis=0)
        return tip + 0.1 * (c - tip)

    # ---- vessels
    def origin(self, branch: str, branch_region: _Region | None = None) -> np.ndarray:
        aorta = self.region("aorta") if self.has("aorta") else None
        if aorta is None:
            raise _Skip("aorta is absent")
        b = _outside(branch_region if branch_region is not None else self.region(branch), aorta)
        contact = _dilate_contact(b, aorta)
        if len(contact) == 0:
            raise _Skip(f"{branch} does not touch the aorta")
        return contact.centroid

    def renal_origin(self, side):
        aorta = self.region("aorta")
        renal = _outside(self.region("renal_arteries"), aorta)
        contact = _dilate_contact(renal, aorta)
        if len(contact) == 0:
            raise _Skip("renal_arteries does not touch the aorta")
        # split at the aorta's axis near the contacts (x grows to the patient's left)
        near = aorta.points[np.abs(aorta.points[:, 2] - contact.points[:, 2].mean()) < 15]
        x0 = (near if len(near) else aorta.points)[:, 0].mean()
        keep = contact.points[:, 0] < x0 if side == "right" else contact.points[:, 0] > x0
        if not keep.any():
            raise _Skip(f"renal_arteries: no {side} renal artery touches the aorta")
        return contact.points[keep].mean(axis=0)

    def aortic_root(self):
        if self.has("annulus_proper"):
            return self.region("annulus_proper").centroid
        contact = _dilate_contact(self.region("aorta"), self.region("heart"))
        if len(contact) == 0:
            raise _Skip("aorta does not touch the heart")
        return contact.centroid

    def arch_top(self):
        aorta = self.need("aorta", "S")
        up = _unit(_DIRECTION["S"])
        cap = _cap_point(aorta, up)
        mask, lo = aorta.crop()
        dist = ndimage.distance_transform_edt(mask, sampling=self.grid.spacing[::-1])
        # the column under the cap: voxels within a voxel of the vertical line through it
        r = (aorta.points - cap)
        r -= np.outer(r @ up, up)
        column = np.linalg.norm(r, axis=1) <= 1.5 * self.grid.spacing.max()
        idx = aorta.zyx[column] - lo
        best = np.argmax(dist[idx[:, 0], idx[:, 1], idx[:, 2]])
        return aorta.points[column][best]

    def aortic_hiatus(self):
        t12 = self.vertebra("t12")
        aorta = self.region("aorta")
        step = max(self.grid.spacing[2], 1.5)
        section = aorta.points[np.abs(aorta.points[:, 2] - t12[2]) <= step / 2]
        if len(section) < 3:
            section = aorta.points[np.abs(aorta.points[:, 2] - t12[2]) <= step]
        if len(section) < 3:
            raise _Skip("aorta does not reach the height of T12")
        c = section.mean(axis=0)
        return np.array([c[0], c[1], t12[2]])

    def aortic_bifurcation(self):
        aorta = self.need("aorta", "I")
        iliac = [self.region(n) for n in ("iliac_artery_left", "iliac_artery_right") if self.has(n)]
        if len(iliac) < 2:
            raise _Skip("iliac_artery_left/right absent")
        contact = [_dilate_contact(aorta, i) for i in iliac]
        if not all(len(c) for c in contact):
            raise _Skip("aorta does not touch both iliac arteries")
        zyx = np.unique(np.concatenate([c.zyx for c in contact]), axis=0)
        return _Region(self.grid, zyx, "aorta").centroid

    def gej(self):
        eso = self.region("esophagus")
        contact = _dilate_contact(eso, self.region("stomach"))
        if len(contact) == 0:
            raise _Skip("esophagus does not touch the stomach")
        # the distal end: contact voxels farthest along the oesophagus from its superior end,
        # within the oesophagus piece that reaches the stomach (overlapping labels can cut it)
        mask, lo = eso.crop()
        pieces, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
        piece = pieces[tuple((eso.zyx - lo).T)]
        touching = pieces[tuple((contact.zyx - lo).T)]
        sizes = np.bincount(piece)
        best = max(set(touching.tolist()), key=lambda p: sizes[p])
        h = eso.points[:, 2]
        top = (piece == best) & (h >= h[piece == best].max() - 3.0)
        dist = _geodesic(eso, top)
        lookup = dict(zip(map(tuple, eso.zyx.tolist()), dist))
        along = np.array([lookup[tuple(v)] for v in contact.zyx.tolist()])
        ok = np.isfinite(along)
        if not ok.any():
            raise _Skip("esophagus: no path from its top to the stomach")
        return contact.points[ok][along[ok] >= along[ok].max() - 10.0].mean(axis=0)

    # ---- organs
    def liver_dome(self):
        return _dome_apex(self.need("liver", "S"), _DIRECTION["S"])

    def liver_tip(self):
        liver = self.need("liver", "IAR")
        d = _unit([-0.3, -0.35, -1.0])
        tip = _dome_apex(liver, d)
        return tip + 0.1 * (liver.centroid - tip)

    def spleen_pole(self, superior: bool):
        spleen = self.need("spleen", "SI")
        _, axes, _ = _principal_axes(spleen.points)
        axis = axes[int(np.argmax(np.abs(axes[:, 2])))]
        axis = axis if axis[2] > 0 else -axis
        return _along_axis(spleen, axis if superior else -axis, 0.88)

    def kidney_pole(self, side, upper: bool):
        kidney = self.need(f"kidney_{side}", _ALL)
        _, axes, _ = _principal_axes(kidney.points)
        axis = axes[0] if axes[0][2] > 0 else -axes[0]
        return _along_axis(kidney, axis if upper else -axis, 0.92)

    def kidney_hilum(self, side):
        from scipy.spatial import Delaunay

        kidney = self.need(f"kidney_{side}", _ALL)
        mask, lo = kidney.crop()
        filled = ndimage.binary_fill_holes(mask)
        pts = np.argwhere(mask).astype(float)
        try:
            hull = Delaunay(pts[_hull_vertices(pts)])
        except Exception:  # noqa: BLE001 - degenerate (flat) masks
            raise _Skip(f"kidney_{side}: degenerate mask") from None
        grid = np.argwhere(np.ones(mask.shape, bool)).astype(float)
        inside = (hull.find_simplex(grid) >= 0).reshape(mask.shape)
        sinus = (inside | filled) & ~mask
        sinus = ndimage.binary_opening(sinus, structure=ndimage.generate_binary_structure(3, 1))
        labels, n = ndimage.label(sinus)
        if n == 0:
            raise _Skip(f"kidney_{side}: no renal sinus (concavity) found")
        medial = np.array(_DIRECTION["L" if side == "right" else "R"], float)
        best, best_score = None, -np.inf
        sizes = np.bincount(labels.ravel())[1:]
        for lab in np.argsort(sizes)[::-1][:3] + 1:
            comp = self.grid.to_lps(np.argwhere(labels == lab) + lo)
            score = len(comp) * (1.0 if (comp.mean(axis=0) - kidney.centroid) @ medial > 0 else 0.1)
            if score > best_score:
                best, best_score = comp, score
        return best.mean(axis=0)

    # ---- pelvis
    def iliac_crest(self, side):
        return _cap_point(self.need(f"hip_{side}", "S"), _DIRECTION["S"], inside=3.0)

    def asis(self, side):
        hip = self.need(f"hip_{side}", "SA" + ("R" if side == "right" else "L"))
        z = hip.points[:, 2]
        upper = hip.subset(z >= (z.min() + z.max()) / 2)
        lateral = -1.0 if side == "right" else 1.0
        return _cap_point(upper, [0.35 * lateral, -1.0, 0.15], inside=3.0)

    def femoral_head(self, side):
        femur = self.need(f"femur_{side}", "S" + ("R" if side == "right" else "L") + "AP")
        top = _cap_point(femur, _DIRECTION["S"])
        surface = _surface(femur).points
        pts = surface[np.linalg.norm(surface - top, axis=1) <= 32.0]
        if len(pts) < 20:
            raise _Skip(f"femur_{side}: too few surface voxels near its top for a sphere fit")
        centre, radius = _fit_sphere(pts)
        for _ in range(4):
            d = np.linalg.norm(pts - centre, axis=1)
            inliers = np.abs(d - radius) <= max(2.5, 1.5 * self.grid.spacing.max())
            if inliers.sum() < 20:
                break
            centre, radius = _fit_sphere(pts[inliers])
        if not 12.0 <= radius <= 40.0:
            raise _Skip(f"femur_{side}: sphere fit radius {radius:.1f} mm is implausible for a femoral head")
        # the head must lie inside the scan: its lowest point above the inferior border
        bottom = self.grid.to_lps(np.array([[0, 0, 0], np.array(self.grid.shape) - 1]))[:, 2]
        if centre[2] - radius < bottom.min():
            raise _Skip(f"femur_{side}: femoral head is cut by the field of view")
        return centre

    def pubic_symphysis(self):
        left, right = self.region("hip_left"), self.region("hip_right")
        zone = []
        for a, b in ((left, right), (right, left)):
            mask, lo = b.crop(pad=8)
            dist = ndimage.distance_transform_edt(~mask, sampling=self.grid.spacing[::-1])
            idx = a.zyx - lo
            ok = np.all((idx >= 0) & (idx < mask.shape), axis=1)
            near = np.zeros(len(a), bool)
            near[ok] = dist[idx[ok, 0], idx[ok, 1], idx[ok, 2]] <= 8.0
            zone.append(a.zyx[near])
        if min(len(z_) for z_ in zone) < 3:
            raise _Skip("hip_left/hip_right do not meet at a symphysis")
        caps = []
        for zyx, side in zip(zone, ("left", "right")):
            region = _largest_component(_Region(self.grid, zyx, f"hip_{side}"))
            region = self.need(f"hip_{side} (symphysis part)", "SI", region=region)
            caps.append(_cap_point(region, _DIRECTION["S"]))
        return np.mean(caps, axis=0)


def _hull_vertices(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull

    return ConvexHull(points).vertices


def _rule_table(d: _Deriver):
    """landmark -> (needed structures, callable)."""
    table = {f"vertebra_{v}": ([f"vertebrae_{v.upper()}"], lambda v=v: d.vertebra(v)) for v in VERTEBRAE}
    table.update({
        "sternal_notch": (["sternum"], d.sternum_top),
        "sternal_angle": (["sternum"], d.sternal_angle),
        "xiphoid_tip": (["sternum"], d.sternum_bottom),
        "lung_apex_right": (["lung_upper_lobe_right"], lambda: d.lung_apex("right")),
        "lung_apex_left": (["lung_upper_lobe_left"], lambda: d.lung_apex("left")),
        "carina": (["trachea"], d.carina),
        "rib12_tip_right": (["rib_right_12"], lambda: d.rib12_tip("right")),
        "rib12_tip_left": (["rib_left_12"], lambda: d.rib12_tip("left")),
        "heart_apex": (["heart"], d.heart_apex),
        "aortic_root": ([["annulus_proper"], ["aorta", "heart"]], d.aortic_root),
        "aortic_arch_top": (["aorta"], d.arch_top),
        "brachiocephalic_trunk_origin": (["brachiocephalic_trunk", "aorta"], lambda: d.origin("brachiocephalic_trunk")),
        "left_common_carotid_origin": (["common_carotid_artery_left", "aorta"], lambda: d.origin("common_carotid_artery_left")),
        "left_subclavian_artery_origin": (["subclavian_artery_left", "aorta"], lambda: d.origin("subclavian_artery_left")),
        "pulmonary_trunk_bifurcation": (["pul_bifurcation"], lambda: d.region("pul_bifurcation").centroid),
        "aortic_hiatus": (["aorta", "vertebrae_T12"], d.aortic_hiatus),
        "celiac_trunk_origin": (["celiac_trunk", "aorta"], lambda: d.origin("celiac_trunk")),
        "sma_origin": (["superior_mesenteric_artery", "aorta"], lambda: d.origin("superior_mesenteric_artery")),
        "right_renal_artery_origin": (["renal_arteries", "aorta"], lambda: d.renal_origin("right")),
        "left_renal_artery_origin": (["renal_arteries", "aorta"], lambda: d.renal_origin("left")),
        "aortic_bifurcation": (["aorta", "iliac_artery_left", "iliac_artery_right"], d.aortic_bifurcation),
        "gastroesophageal_junction": (["esophagus", "stomach"], d.gej),
        "liver_dome": (["liver"], d.liver_dome),
        "liver_inferior_tip": (["liver"], d.liver_tip),
        "spleen_superior_pole": (["spleen"], lambda: d.spleen_pole(True)),
        "spleen_inferior_tip": (["spleen"], lambda: d.spleen_pole(False)),
        "sacral_promontory": ([["vertebrae_S1"], ["sacrum"]], d.sacral_promontory),
        "iliac_crest_top_right": (["hip_right"], lambda: d.iliac_crest("right")),
        "iliac_crest_top_left": (["hip_left"], lambda: d.iliac_crest("left")),
        "asis_right": (["hip_right"], lambda: d.asis("right")),
        "asis_left": (["hip_left"], lambda: d.asis("left")),
        "femoral_head_right": (["femur_right"], lambda: d.femoral_head("right")),
        "femoral_head_left": (["femur_left"], lambda: d.femoral_head("left")),
        "pubic_symphysis": (["hip_left", "hip_right"], d.pubic_symphysis),
    })
    for side in ("right", "left"):
        table[f"kidney_{side}_upper_pole"] = ([f"kidney_{side}"], lambda s=side: d.kidney_pole(s, True))
        table[f"kidney_{side}_lower_pole"] = ([f"kidney_{side}"], lambda s=side: d.kidney_pole(s, False))
        table[f"kidney_{side}_hilum"] = ([f"kidney_{side}"], lambda s=side: d.kidney_hilum(s))
    return table


def _available(d: _Deriver, needed) -> bool:
    if needed and isinstance(needed[0], list):  # alternatives
        return any(all(d.has(n) for n in alt) for alt in needed)
    return all(d.has(n) for n in needed)


def landmarks_from_segmentation(segmentation, *, names=None, image=None):
    """Landmarks of the package's table (LPS mm) defined by a TotalSegmentator segmentation.

    Args:
        segmentation: a multi-label image or file with TotalSegmentator v2 ``total`` label ids;
            a folder of per-structure masks named as TotalSegmentator writes them
            (``aorta.nii.gz``, ``vertebrae_L1.nii.gz``, subtask masks such as
            ``vertebrae_body.nii.gz``, ``celiac_trunk.nii.gz``, ``pul_bifurcation.nii.gz``);
            or a dict {task or structure name: image or file} (e.g. ``{"total": ...,
            "vertebrae_body": ...}``). Files the folder holds that are not TotalSegmentator
            structures are ignored. All parts must share one voxel grid.
        names: landmark names to derive (default: all of ``LANDMARKS``); unknown names raise.
        image: optional CT (image, file or DICOM folder) the segmentation belongs to; a
            segmentation on another grid raises :class:`SegmentationError`.

    Returns:
        :class:`lm_zoo.landmarks.Landmarks` in table order, holding only the landmarks the
        present structures define. Absent or empty structures define nothing; a structure cut
        by the field of view on a side a landmark depends on gives no landmark and one
        :class:`SegmentationWarning` naming it. The rule of each landmark is :data:`RULES`.
    """
    from lm_zoo.landmarks import Landmarks

    if names is None:
        wanted = list(LM60)
    else:
        wanted = [str(n) for n in ([names] if isinstance(names, str) else names)]
        unknown = [n for n in wanted if n not in LM60]
        if unknown:
            raise SegmentationError(f"landmarks_from_segmentation: unknown landmark name(s) {unknown}; "
                                    f"known: lm_zoo.anatomy.LM60")
    grid, structures, source = _load(segmentation, image)
    deriver = _Deriver(grid, structures, source)
    table = _rule_table(deriver)
    out_names, out_points = [], []
    skipped: dict[str, list[str]] = {}
    for name in (n for n in LM60 if n in wanted):
        if name not in table:
            continue
        needed, rule = table[name]
        if not _available(deriver, needed):
            continue
        try:
            point = np.asarray(rule(), float)
        except _Skip as why:
            skipped.setdefault(str(why), []).append(name)
            continue
        except KeyError:
            continue
        if not np.all(np.isfinite(point)):
            skipped.setdefault("non-finite result", []).append(name)
            continue
        out_names.append(name)
        out_points.append(point)
    for why, lms in skipped.items():
        warnings.warn(f"{source}: {why}; skipped {', '.join(lms)}", SegmentationWarning, stacklevel=2)
    return Landmarks(out_names, np.array(out_points, float).reshape(-1, 3))
