"""The coarse-to-fine search: input checks, the body lattice, batched scoring of 2.5D patches,
candidates per class and their refinement to a sub-voxel peak (steps 1-6 of the package doc)."""
from __future__ import annotations

import time

import numpy as np
import SimpleITK as sitk

from lm_zoo.detection.errors import DetectionError, NoBodyError, NotCTError
from lm_zoo.intensity import require_hounsfield
from lm_zoo.io import continuous_index, inside_grid

__all__ = ["check_ct", "check_spacing", "body_lattice", "inside_scan", "Scorer", "refine_candidates"]

_MIN_BODY_ML = 50.0
_MASK_STEP_MM = 4.0
# Voxels up to 4x the weights' patch pixel (6 mm for the shipped 1.5 mm weights) are searched:
# that keeps 5 mm slices, the thickest reconstruction in routine clinical use. Coarser sampling
# resolves nothing below ~2 voxels (> 12 mm), the scale of the disc spaces that tell vertebral
# levels apart, and each 32-pixel patch would hold fewer than 8 voxels along that axis.
_MAX_SPACING_RATIO = 4.0
# Clinical CT voxels are >= ~0.2 mm. At 0.05 mm a 512 x 512 x 1000 volume spans 26 x 26 x 50 mm
# (33 ml), less than the body (>= _MIN_BODY_ML) the search needs: finer is a header in metres or
# cm, or a micro-CT, never a torso the weights know.
_MIN_SPACING_MM = 0.05
# The coarse lattice over the body's bounding box: 2 million points are a 1 m^3 box at 8 mm (a
# whole body with arms spread is ~0.6 m^3); more means a wrong header or step, and the lattice,
# then one probability per point and class, would take gigabytes before the first patch is scored.
_MAX_COARSE_POINTS = 2_000_000


def check_ct(image: sitk.Image, source: str, body_threshold_hu: float) -> None:
    """Refuse volumes whose values are not HU (:func:`lm_zoo.intensity.require_hounsfield`), e.g. an MR."""
    try:
        require_hounsfield(image, source, body_threshold_hu, error=NotCTError)
    except NotCTError as err:
        raise NotCTError(f"{err}; the landmark detector needs CT in HU") from None


def check_spacing(image: sitk.Image, source: str, patch_spacing_mm: float) -> None:
    """Refuse voxel spacings the weights' patches cannot use: coarser than ``_MAX_SPACING_RATIO``
    patch pixels on any axis, or finer than ``_MIN_SPACING_MM`` (see their comments)."""
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    shown = " x ".join(f"{s:g}" for s in spacing)
    coarsest = _MAX_SPACING_RATIO * float(patch_spacing_mm)
    if spacing.max() > coarsest:
        raise DetectionError(
            f"{source}: voxel spacing {shown} mm is too coarse for the weights' patches ({patch_spacing_mm:g} mm "
            f"pixels): the detector needs voxels of at most {coarsest:g} mm ({_MAX_SPACING_RATIO:g} patch pixels) "
            "on every axis; check the spacing in the file's header, or use a finer reconstruction")
    if spacing.min() < _MIN_SPACING_MM:
        raise DetectionError(
            f"{source}: voxel spacing {shown} mm is implausibly fine for a CT (below {_MIN_SPACING_MM:g} mm; clinical "
            "CT voxels are >= ~0.2 mm): is the spacing in the header in metres or cm instead of mm?")


def _lattice_axes(box: np.ndarray, step_mm: float, source: str) -> list[np.ndarray]:
    """The lattice's coordinates per axis over ``box`` (corner points), sized before allocating."""
    starts, stops = box.min(0) + step_mm / 2, box.max(0)
    counts = [max(0, int(np.ceil((b - a) / step_mm))) for a, b in zip(starts, stops)]
    if counts[0] * counts[1] * counts[2] > _MAX_COARSE_POINTS:
        extent = " x ".join(f"{e:.0f}" for e in np.ptp(box, axis=0))
        raise DetectionError(
            f"{source}: the body's bounding box ({extent} mm) needs {counts[0] * counts[1] * counts[2]:,} search points "
            f"at {step_mm:g} mm (at most {_MAX_COARSE_POINTS:,}, a 1 m^3 box at 8 mm); check the voxel spacing in the "
            "file's header, or search with a larger SearchParams.coarse_step_mm")
    return [np.arange(a, b, step_mm) for a, b in zip(starts, stops)]


def body_lattice(image: sitk.Image, step_mm: float, body_threshold_hu: float, source: str) -> np.ndarray:
    """LPS points of an axis-aligned ``step_mm`` lattice that fall inside the body mask."""
    from lm_zoo.landmarks import body_mask

    # at most the image's size per axis: BinShrink refuses a larger factor
    factors = [min(max(1, int(round(_MASK_STEP_MM / s))), n) for s, n in zip(image.GetSpacing(), image.GetSize())]
    small = sitk.BinShrink(image, factors) if factors != [1, 1, 1] else image
    mask = body_mask(small, threshold=body_threshold_hu)
    volume_ml = np.count_nonzero(mask) * float(np.prod(small.GetSpacing())) / 1000.0
    if volume_ml < _MIN_BODY_ML:
        raise NoBodyError(f"{source}: no body found: {volume_ml:.1f} ml above {body_threshold_hu:.0f} HU in its "
                          f"largest connected part (need >= {_MIN_BODY_ML:.0f} ml); is the scan empty or air only?")
    zyx = np.argwhere(mask)
    corners = np.array([[a, b, c] for a in (-0.5, 0.5) for b in (-0.5, 0.5) for c in (-0.5, 0.5)])
    lo_idx, hi_idx = zyx.min(0)[::-1], zyx.max(0)[::-1]
    box = np.array([small.TransformContinuousIndexToPhysicalPoint((lo_idx + (hi_idx - lo_idx) * (c + 0.5)).tolist())
                    for c in corners])
    axes = _lattice_axes(box, step_mm, source)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    index = np.rint(continuous_index(small, grid)).astype(int)
    size = np.asarray(small.GetSize())
    inside = np.all((index >= 0) & (index < size), axis=1)
    grid, index = grid[inside], index[inside]
    return grid[mask[index[:, 2], index[:, 1], index[:, 0]]]


# A candidate is in the scan by the package's one border rule (the sampler's).
inside_scan = inside_grid


# ----------------------------------------------------------------------------------- scoring
class Scorer:
    """Batched patch extraction + inference, timing each part separately."""

    def __init__(self, image, model, weights, spacing_mm, batch_size, progress, patch_size=32):
        self.image, self.model, self.weights, self.patch_size = image, model, weights, int(patch_size)
        self.spacing_mm, self.batch_size, self.progress = spacing_mm, int(batch_size), progress
        self.extract_s = self.infer_s = 0.0
        self.n_patches = 0

    def __call__(self, points: np.ndarray, desc: str) -> np.ndarray:
        from tqdm.auto import tqdm

        from lm_zoo.applications import predict_batched, preprocess_input
        from lm_zoo.intensity import CT_OUTSIDE_HU
        from lm_zoo.patches import extract_25d

        points = np.asarray(points, dtype=float).reshape(-1, 3)
        out = []
        starts = range(0, len(points), self.batch_size)
        for start in tqdm(starts, desc=desc, unit="batch", disable=not self.progress, leave=False):
            chunk = points[start:start + self.batch_size]
            t0 = time.perf_counter()
            x = extract_25d(self.image, chunk, self.patch_size, self.spacing_mm, CT_OUTSIDE_HU)
            x = preprocess_input(x, weights=self.weights)
            t1 = time.perf_counter()
            probs = predict_batched(self.model, x, self.batch_size)  # padded: one shape, never retraced
            self.infer_s += time.perf_counter() - t1
            self.extract_s += t1 - t0
            out.append(probs)
        self.n_patches += len(points)
        return np.concatenate(out) if out else np.empty((0, self.model.output_shape[-1]), np.float32)


def _lattice(step: float, half: int) -> np.ndarray:
    r = np.arange(-half, half + 1) * float(step)
    return np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)


def _score_unique(scorer, points: np.ndarray, desc: str):
    """Scores of ``points``, each distinct point (to 0.01 mm) classified once."""
    keys = np.round(points * 100).astype(np.int64)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    probs = scorer(unique / 100.0, desc)
    return probs[inverse.ravel()]


def _top_candidates(grid: np.ndarray, scores: np.ndarray, k: int, min_distance: float) -> np.ndarray:
    """Indices of the ``k`` best grid points, each >= ``min_distance`` from the better ones."""
    chosen: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(np.linalg.norm(grid[i] - grid[j]) >= min_distance for j in chosen):
            chosen.append(int(i))
            if len(chosen) == k:
                break
    return np.asarray(chosen, dtype=int)


def refine_candidates(scorer, grid: np.ndarray, coarse: np.ndarray, column, search):
    """Per class, the ``candidates_per_class`` best distinct coarse points, each refined on its own.

    Every candidate goes through all refinement lattices (moving to its local best point) and
    ends at its sub-voxel peak, so the decision step can choose between distinct places of a
    class (e.g. the second-best place when the best one breaks the vertebral order). Returns
    points (C, K, 3) LPS mm and scores (C, K); a class with fewer coarse points than K has
    score -1 in its unused slots.
    """
    n_classes, k = len(column), int(search.candidates_per_class)
    points = np.zeros((n_classes, k, 3))
    scores = np.full((n_classes, k), -1.0)
    for c in range(n_classes):
        pick = _top_candidates(grid, coarse[:, c], k, 2 * search.coarse_step_mm)
        points[c, :len(pick)] = grid[pick]
        scores[c, :len(pick)] = coarse[pick, c]
    rows = np.argwhere(scores >= 0)  # (M, 2): class, candidate
    if not len(rows) or not search.refine:
        return points, scores
    col = np.asarray(column)[rows[:, 0]]
    local = block = None
    for step, half in search.refine:
        offsets = _lattice(step, int(half))
        local = points[rows[:, 0], rows[:, 1]][:, None, :] + offsets[None]  # (M, L, 3)
        probs = _score_unique(scorer, local.reshape(-1, 3), f"refine {step:g} mm").reshape(len(rows), len(offsets), -1)
        block = probs[np.arange(len(rows))[:, None], np.arange(len(offsets))[None, :], col[:, None]]  # (M, L)
        best = np.argmax(block, axis=1)
        points[rows[:, 0], rows[:, 1]] = local[np.arange(len(rows)), best]
        scores[rows[:, 0], rows[:, 1]] = block[np.arange(len(rows)), best]
    # sub-voxel peak: score-weighted centroid of the last lattice (weights score - max/2, >= 0)
    weight = np.clip(block - 0.5 * block.max(axis=1, keepdims=True), 0, None)
    total = weight.sum(axis=1)
    best_points = points[rows[:, 0], rows[:, 1]]
    peaks = np.where(total[:, None] > 0, np.einsum("ml,mld->md", weight, local) / np.maximum(total, 1e-12)[:, None],
                     best_points)
    peak_scores = scorer(peaks, "peaks")[np.arange(len(rows)), col]
    best_scores = scores[rows[:, 0], rows[:, 1]]
    # a centroid between two modes can score far below the best lattice point: keep that one then
    use_peak = peak_scores >= 0.9 * best_scores
    points[rows[:, 0], rows[:, 1]] = np.where(use_peak[:, None], peaks, best_points)
    scores[rows[:, 0], rows[:, 1]] = np.where(use_peak, peak_scores, best_scores)
    return points, scores

