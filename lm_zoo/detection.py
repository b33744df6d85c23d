"""Whole-volume landmark detection: a CT in, every named landmark of a weight set out.

``detect_landmarks(image, weights="landmark")`` runs the landmark classifier as a detector:

1. **body mask** (:func:`lm_zoo.landmarks.body_mask` at -500 HU, on a ~4 mm copy of the volume);
2. **coarse grid**: an LPS-axis-aligned lattice of ``coarse_step_mm`` (12 mm) inside the mask;
3. **batched 2.5D patches + inference** at every grid point: one (N, n_classes) score map;
4. **candidates**: per class, the ``candidates_per_class`` best coarse points (non-maximum
   suppression at 2 grid steps, so the candidates are distinct places);
5. **refinement**: a local lattice around each candidate (5x5x5 points at 4 mm), then a finer
   one (5x5x5 at 1.5 mm) around the class's best point; patches of all classes' lattices go to
   the network together (shared points are scored once);
6. **sub-voxel peak**: the score-weighted centroid of the fine lattice (weights ``score - max/2``,
   clipped at 0), scored once more: the reported score is the network's probability of the class
   *at the reported point*;
7. **found** when that score is ``>= threshold`` (:data:`DEFAULT_THRESHOLD`, 0.5: the class is
   then more likely than all others together) and the point lies inside the scan; otherwise the
   landmark is reported as not found, with its best point and score for inspection only;
8. **vertebral order**: found vertebral bodies must run cranio-caudally (C7 above T1 above ...
   above L5, at least :data:`MIN_VERTEBRA_GAP_MM` apart along the patient's S-I axis). The
   subset of found vertebrae with the highest total score that satisfies this order is kept (a
   longest-weighted-chain dynamic programme); the others become not found ("vertebral order").
   Vertebral levels are what the network confuses most (neighbouring levels look alike), so an
   out-of-order level is far more likely a mislabelled neighbour than a hit.

The volume is read once; patches are extracted (fused numba kernel) and classified in batches of
``batch_size``. With the default search a torso CT costs about 40-60 k patches (measured: a
512x512x300 phantom-derived CT in 12 s on 2 cores, 165x faster than a dense 1.5 mm scan).
Speed and quality figures: ``benchmarks/detect.py``. With the shipped phantom-trained weights,
high-scoring wrong points remain for some classes (e.g. aortic branch origins, xiphoid, organ
tips on held-out phantoms; most classes on real CT): "found" means the network is confident,
not that the point is right.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from lm_zoo.io import continuous_index, read_image

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_VERTEBRA_GAP_MM",
    "DetectionError",
    "NotCTError",
    "NoBodyError",
    "SearchParams",
    "Detections",
    "detect_landmarks",
    "landmark_weight_set",
    "patch_spacing_mm",
    "vertebral_order",
]

DEFAULT_THRESHOLD = 0.5
MIN_VERTEBRA_GAP_MM = 8.0
NON_LANDMARK = "non_landmark"
# Canonical cranio-caudal order of vertebral levels (class names "vertebra_<level>").
_LEVELS = [f"c{i}" for i in range(1, 8)] + [f"t{i}" for i in range(1, 13)] + [f"l{i}" for i in range(1, 7)] + ["s1"]
VERTEBRA_LEVELS = tuple(f"vertebra_{v}" for v in _LEVELS)
# A CT in Hounsfield units holds air (about -1000 HU) around or inside the body.
_AIR_HU = -500.0
_MIN_BODY_ML = 50.0
_MASK_STEP_MM = 4.0


class DetectionError(ValueError):
    """Input the detector cannot work on (named in the message)."""


class NotCTError(DetectionError):
    """A volume whose intensities are not CT Hounsfield units (e.g. an MR)."""


class NoBodyError(DetectionError):
    """A volume without a body to search (empty, air only, or a body too small)."""


@dataclasses.dataclass(frozen=True)
class SearchParams:
    """The search, in mm. ``refine`` holds (step_mm, half_width_in_steps) per refinement stage."""

    coarse_step_mm: float = 12.0
    candidates_per_class: int = 3
    refine: tuple = ((4.0, 2), (1.5, 2))
    threshold: float = DEFAULT_THRESHOLD
    body_threshold_hu: float = _AIR_HU
    order_vertebrae: bool = True

    def __post_init__(self):
        if not (self.coarse_step_mm > 0 and np.isfinite(self.coarse_step_mm)):
            raise ValueError(f"SearchParams: coarse_step_mm must be a positive number, got {self.coarse_step_mm!r}")
        if int(self.candidates_per_class) < 1:
            raise ValueError(f"SearchParams: candidates_per_class must be >= 1, got {self.candidates_per_class!r}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"SearchParams: threshold must be in (0, 1), got {self.threshold!r}")
        for stage in self.refine:
            step, half = stage
            if not (step > 0 and int(half) >= 1):
                raise ValueError(f"SearchParams: refine stages are (step_mm > 0, half_width >= 1), got {stage!r}")


@dataclasses.dataclass
class Detections:
    """One row per landmark class searched, in the weight set's class order.

    ``points`` (N, 3) LPS mm: the best point found (also for landmarks not found, for
    inspection); ``scores``: the network's probability of the class at that point; ``found``:
    score >= ``threshold``, inside the scan and in vertebral order; ``reasons``: why a landmark
    is not found ("" when found). ``timings`` (s) and ``n_patches`` describe the run.
    """

    names: list
    points: np.ndarray
    scores: np.ndarray
    found: np.ndarray
    reasons: list
    threshold: float
    weights: str
    spacing_mm: float
    n_patches: int = 0
    timings: dict = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def to_landmarks(self):
        """The found landmarks as :class:`lm_zoo.landmarks.Landmarks` (LPS mm)."""
        from lm_zoo.landmarks import Landmarks

        keep = np.flatnonzero(self.found)
        return Landmarks([self.names[i] for i in keep], self.points[keep].reshape(-1, 3))

    def as_dict(self) -> dict:
        return {n: {"point_lps_mm": [float(v) for v in p], "score": float(s), "found": bool(f), "reason": r}
                for n, p, s, f, r in zip(self.names, self.points, self.scores, self.found, self.reasons)}

    def table(self) -> str:
        """Plain-text table: name, found, score, x, y, z (LPS mm), reason."""
        width = max([len("name")] + [len(n) for n in self.names])
        lines = [f"{'name':<{width}}  found  score        x        y        z  note"]
        for n, p, s, f, r in zip(self.names, self.points, self.scores, self.found, self.reasons):
            lines.append(f"{n:<{width}}  {'yes' if f else 'no':<5}  {s:5.3f} {p[0]:8.1f} {p[1]:8.1f} {p[2]:8.1f}  {r}")
        lines.append(f"{int(np.count_nonzero(self.found))} of {len(self.names)} found (score >= {self.threshold:g}; "
                     f"weights {self.weights!r}; points LPS mm)")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------- weights
def landmark_weight_set(weights):
    """The WeightSet of ``weights`` if it is a landmark classifier for CT, else DetectionError."""
    from lm_zoo import pretrained
    from lm_zoo.applications.mini_vgg25d import _check_weights

    ws = pretrained.describe_weights(_check_weights(weights))
    if weights is None or not ws.class_names:
        raise DetectionError(f"weights={weights!r} have no class names, so they cannot name landmarks; "
                             "use weights='landmark' or a weights file whose sidecar JSON lists landmark class names")
    if NON_LANDMARK not in ws.class_names or len(ws.class_names) < 2:
        raise DetectionError(
            f"weights={str(weights)!r} are not a landmark classifier: their classes "
            f"{list(ws.class_names)[:5]}{'...' if len(ws.class_names) > 5 else ''} hold no {NON_LANDMARK!r} class "
            "(detection needs landmark classes plus a background class); use weights='landmark'")
    if ws.modality != "ct":
        raise DetectionError(f"weights={str(weights)!r} were trained on {ws.modality!r} input, not CT; "
                             "landmark detection needs CT weights such as 'landmark'")
    return ws


def patch_spacing_mm(ws) -> float:
    """Pixel spacing (mm) of the patches a weight set was trained on.

    Read from the set's preprocessing (``spacing_mm``) when registered there, else the spacing of
    the landmark patch datasets (``lm_zoo.patch_datasets.LandmarkParams``, 1.5 mm).
    """
    value = ws.preprocessing.get("spacing_mm", ws.preprocessing.get("patch_spacing_mm"))
    if value is None:
        from lm_zoo.patch_datasets import LandmarkParams

        value = LandmarkParams.__dataclass_fields__["spacing_mm"].default
    return float(value)


# ----------------------------------------------------------------------------------- checks
def _check_ct(image: sitk.Image, source: str, body_threshold_hu: float) -> None:
    """Refuse volumes whose values are not HU: no air below -500 HU, e.g. an MR or unrescaled CT."""
    values = sitk.GetArrayViewFromImage(image)
    step = max(1, int(round((values.size / 2e6) ** (1 / 3))))
    sample = np.asarray(values[::step, ::step, ::step], dtype=np.float32)
    low = float(np.percentile(sample, 0.5))
    if low > body_threshold_hu:
        hint = (" (values from about 0 up: an MR, or CT stored without its rescale intercept, i.e. HU + 1024)"
                if low >= -1 else "")
        raise NotCTError(
            f"{source}: does not look like CT in Hounsfield units: its 0.5th percentile is {low:.0f}, "
            f"but a CT holds air at about -1000 HU (none below {body_threshold_hu:.0f}){hint}; the "
            "landmark detector needs CT in HU")


def _body_lattice(image: sitk.Image, step_mm: float, body_threshold_hu: float, source: str) -> np.ndarray:
    """LPS points of an axis-aligned ``step_mm`` lattice that fall inside the body mask."""
    from lm_zoo.landmarks import body_mask

    factors = [max(1, int(round(_MASK_STEP_MM / s))) for s in image.GetSpacing()]
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
    axes = [np.arange(box[:, d].min() + step_mm / 2, box[:, d].max(), step_mm) for d in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    index = np.rint(continuous_index(small, grid)).astype(int)
    size = np.asarray(small.GetSize())
    inside = np.all((index >= 0) & (index < size), axis=1)
    grid, index = grid[inside], index[inside]
    return grid[mask[index[:, 2], index[:, 1], index[:, 0]]]


def _inside_scan(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    index = continuous_index(image, points)
    size = np.asarray(image.GetSize(), dtype=float)
    return np.all((index >= -0.5) & (index <= size - 0.5), axis=1)


# ----------------------------------------------------------------------------------- scoring
class _Scorer:
    """Batched patch extraction + inference, timing each part separately."""

    def __init__(self, image, model, weights, spacing_mm, batch_size, progress):
        self.image, self.model, self.weights = image, model, weights
        self.spacing_mm, self.batch_size, self.progress = spacing_mm, int(batch_size), progress
        self.extract_s = self.infer_s = 0.0
        self.n_patches = 0

    def __call__(self, points: np.ndarray, desc: str) -> np.ndarray:
        from tqdm.auto import tqdm

        from lm_zoo.applications import preprocess_input
        from lm_zoo.patch_datasets import CT_OUTSIDE_HU
        from lm_zoo.patches import extract_25d

        points = np.asarray(points, dtype=float).reshape(-1, 3)
        out = []
        starts = range(0, len(points), self.batch_size)
        for start in tqdm(starts, desc=desc, unit="batch", disable=not self.progress, leave=False):
            chunk = points[start:start + self.batch_size]
            t0 = time.perf_counter()
            x = extract_25d(self.image, chunk, 32, self.spacing_mm, CT_OUTSIDE_HU)
            x = preprocess_input(x, weights=self.weights)
            n = len(x)
            if n < self.batch_size:  # one input shape: the compiled predict function is never retraced
                x = np.concatenate([x, np.zeros((self.batch_size - n,) + x.shape[1:], x.dtype)])
            t1 = time.perf_counter()
            probs = np.asarray(self.model.predict_on_batch(x))[:n]
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


def vertebral_order(names: Sequence[str], points, scores, found, min_gap_mm: float = MIN_VERTEBRA_GAP_MM) -> np.ndarray:
    """Which found vertebrae to keep so that levels run cranio-caudally; returns a bool mask.

    Among found vertebral levels (class names in :data:`VERTEBRA_LEVELS`), picks the subset of
    highest total score in which every level lies at least ``min_gap_mm`` below (LPS z: superior
    is +z) the level above it, by dynamic programming over the levels in anatomical order.
    Non-vertebral rows are always kept as they are.
    """
    names = list(names)
    points = np.asarray(points, float).reshape(-1, 3)
    keep = np.asarray(found, bool).copy()
    rows = sorted((VERTEBRA_LEVELS.index(n), i) for i, n in enumerate(names) if n in VERTEBRA_LEVELS and keep[i])
    rows = [i for _, i in rows]
    if len(rows) < 2:
        return keep
    z = points[rows, 2]
    w = np.asarray(scores, float)[rows]
    best = w.copy()
    previous = np.full(len(rows), -1)
    for b in range(len(rows)):
        for a in range(b):
            if z[a] - z[b] >= min_gap_mm and best[a] + w[b] > best[b]:
                best[b], previous[b] = best[a] + w[b], a
    chain, at = set(), int(np.argmax(best))
    while at >= 0:
        chain.add(at)
        at = int(previous[at])
    for position, i in enumerate(rows):
        keep[i] = position in chain
    return keep


# ----------------------------------------------------------------------------------- detector
def detect_landmarks(image, weights="landmark", *, names=None, spacing_mm=None, batch_size: int = 512,
                     progress: bool = False, search: SearchParams | None = None, model=None,
                     source: str | None = None) -> Detections:
    """Find the landmarks of a landmark weight set in a CT volume (see the module doc).

    Args:
        image: CT in Hounsfield units: a SimpleITK.Image, a volume file or a DICOM folder
            (:func:`lm_zoo.io.read_image`); read once.
        weights: a landmark weight set (registered name or ``.weights.h5`` with a sidecar listing
            its classes, which must include ``non_landmark``).
        names: landmark classes to search (default: all of the set's, except ``non_landmark``).
        spacing_mm: patch pixel spacing; default: the spacing the weights were trained at.
        batch_size: patches per extraction + inference batch.
        progress: show tqdm bars per stage.
        search: :class:`SearchParams` (grid steps, candidates, threshold).
        model: an already built ``MiniVGG25D`` for ``weights`` (saves rebuilding it per volume).
        source: how error messages name the input (default: the path, or "image").

    Returns:
        :class:`Detections`, one row per searched landmark.

    Raises:
        DetectionError (NotCTError, NoBodyError) or lm_zoo.io.ImageReadError naming the input.
    """
    search = SearchParams() if search is None else search
    if int(batch_size) < 1:
        raise ValueError(f"detect_landmarks: batch_size must be a positive integer, got {batch_size!r}")
    ws = landmark_weight_set(weights)
    classes = [c for c in ws.class_names if c != NON_LANDMARK]
    if names is None:
        names = classes
    else:
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in classes]
        if unknown or not names:
            raise ValueError(f"detect_landmarks: names {unknown or names} are not landmark classes of weights "
                             f"{str(weights)!r}; known: {classes}")
    spacing_mm = patch_spacing_mm(ws) if spacing_mm is None else float(spacing_mm)
    if not (np.isfinite(spacing_mm) and spacing_mm > 0):
        raise ValueError(f"detect_landmarks: spacing_mm must be a positive number, got {spacing_mm!r}")

    t_start = time.perf_counter()
    if source is None:
        source = str(image) if not isinstance(image, sitk.Image) else "image"
    image = read_image(image)
    _check_ct(image, source, search.body_threshold_hu)
    grid = _body_lattice(image, search.coarse_step_mm, search.body_threshold_hu, source)
    t_mask = time.perf_counter() - t_start

    if model is None:
        from lm_zoo.applications import MiniVGG25D

        model = MiniVGG25D(weights=weights)
    scorer = _Scorer(image, model, weights, spacing_mm, batch_size, progress)
    column = [ws.class_names.index(n) for n in names]

    coarse = scorer(grid, "coarse grid")[:, column]
    centres = []  # per class: candidate centres (k, 3)
    for c in range(len(names)):
        pick = _top_candidates(grid, coarse[:, c], int(search.candidates_per_class), 2 * search.coarse_step_mm)
        centres.append(grid[pick])
    best_points = best_scores = None
    local_grid = local_scores = None
    for stage, (step, half) in enumerate(search.refine):
        offsets = _lattice(step, int(half))
        points = np.concatenate([(cc[:, None, :] + offsets[None]).reshape(-1, 3) for cc in centres])
        probs = _score_unique(scorer, points, f"refine {step:g} mm")
        best_points, best_scores, local_grid, local_scores = [], [], [], []
        at = 0
        for c, cc in enumerate(centres):
            block = probs[at:at + len(cc) * len(offsets), column[c]]
            block_points = points[at:at + len(cc) * len(offsets)]
            at += len(cc) * len(offsets)
            i = int(np.argmax(block))
            j = i // len(offsets)  # the candidate holding the best point
            best_points.append(block_points[i])
            best_scores.append(float(block[i]))
            local_grid.append(block_points[j * len(offsets):(j + 1) * len(offsets)])
            local_scores.append(block[j * len(offsets):(j + 1) * len(offsets)])
        centres = [p[None] for p in best_points]
    if best_points is None:  # no refinement stage: the coarse grid's best
        best_points = [cc[0] for cc in centres]
        best_scores = [float(coarse[:, c].max()) for c in range(len(names))]
        local_grid, local_scores = None, None
    best_points = np.asarray(best_points)
    best_scores = np.asarray(best_scores)

    # sub-voxel peak: score-weighted centroid of the last local lattice, scored once more
    if local_grid is not None:
        peaks = np.empty_like(best_points)
        for c in range(len(names)):
            weight = np.clip(local_scores[c] - 0.5 * local_scores[c].max(), 0, None)
            peaks[c] = (weight @ local_grid[c]) / weight.sum() if weight.sum() > 0 else best_points[c]
        peak_scores = scorer(peaks, "peaks")[np.arange(len(names)), column]
        # a centroid between two modes can score far below the best lattice point: keep that one then
        use_peak = peak_scores >= 0.9 * best_scores
        points = np.where(use_peak[:, None], peaks, best_points)
        scores = np.where(use_peak, peak_scores, best_scores)
    else:
        points, scores = best_points, best_scores

    inside = _inside_scan(image, points)
    found = (scores >= search.threshold) & inside
    reasons = ["" if f else ("outside the scan" if not i else f"score below {search.threshold:g}")
               for f, i in zip(found, inside)]
    if search.order_vertebrae:
        kept = vertebral_order(names, points, scores, found)
        for i in np.flatnonzero(found & ~kept):
            reasons[i] = "breaks the cranio-caudal vertebral order"
        found = kept
    total = time.perf_counter() - t_start
    return Detections(
        names=list(names), points=points, scores=scores.astype(float), found=found, reasons=reasons,
        threshold=search.threshold, weights=str(weights), spacing_mm=spacing_mm, n_patches=scorer.n_patches,
        timings={"total_s": total, "mask_and_grid_s": t_mask, "extract_s": scorer.extract_s,
                 "inference_s": scorer.infer_s, "coarse_points": int(len(grid))},
    )


# ----------------------------------------------------------------------------------- picture
def save_detection_montage(image, detections: Detections, path, title: str | None = None, step_mm: float = 2.0):
    """PNG of a coronal and a sagittal maximum-intensity projection with the found landmarks labelled.

    The volume is resampled onto an LPS-aligned ``step_mm`` grid first, so the projections are
    true coronal (along P) and sagittal (along L) whatever the file's direction cosines; patient
    right is on the left of the coronal panel, superior is up. Written to a temporary file and
    moved into place.
    """
    import os
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image = read_image(image)
    size = np.asarray(image.GetSize())
    corners = np.array([image.TransformContinuousIndexToPhysicalPoint([float((s - 1) * c) for s, c in zip(size, corner)])
                        for corner in np.ndindex(2, 2, 2)])
    lo, hi = corners.min(0), corners.max(0)
    shape = np.maximum(1, np.ceil((hi - lo) / step_mm).astype(int) + 1)
    ref = sitk.Image([int(v) for v in shape], sitk.sitkFloat32)
    ref.SetOrigin(lo.tolist())
    ref.SetSpacing([float(step_mm)] * 3)
    aligned = sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), ref, sitk.Transform(), sitk.sitkLinear, -1024.0)
    arr = sitk.GetArrayViewFromImage(aligned)  # (S-I z, P y, L x), ascending LPS
    found = np.flatnonzero(detections.found)
    pts = detections.points[found]
    names = [detections.names[i] for i in found]
    extent_x, extent_y, extent_z = (lo[0], hi[0]), (lo[1], hi[1]), (lo[2], hi[2])
    panels = [
        ("coronal MIP (patient right on the left)", arr.max(axis=1), extent_x, pts[:, 0]),
        ("sagittal MIP (anterior on the left)", arr.max(axis=2), extent_y, pts[:, 1]),
    ]
    width_ratios = [extent_x[1] - extent_x[0], extent_y[1] - extent_y[0]]
    fig = Figure(figsize=(14, 10), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": width_ratios})
    for ax, (label, plane, (u0, u1), u) in zip(axes, panels):
        # rows: z ascending = inferior first -> origin="lower" puts superior at the top
        ax.imshow(plane, cmap="gray", vmin=-200, vmax=1200, origin="lower", extent=(u0, u1, extent_z[0], extent_z[1]),
                  aspect="equal")
        ax.scatter(u, pts[:, 2], s=18, c="red", edgecolors="yellow", linewidths=0.5)
        for n, uu, zz in zip(names, u, pts[:, 2]):
            ax.annotate(n, (uu, zz), fontsize=5, color="cyan", xytext=(3, 2), textcoords="offset points")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("LPS mm")
    axes[0].set_ylabel("S (LPS z, mm)")
    missing = [n for n, f in zip(detections.names, detections.found) if not f]
    fig.suptitle((title or "lm-zoo detect") + f": {len(found)} of {len(detections)} landmarks found "
                 f"(score >= {detections.threshold:g}, weights {detections.weights!r})"
                 + (f"\nnot found: {', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}" if missing else ""),
                 fontsize=9)
    fig.tight_layout()
    from lm_zoo._atomic import atomic_path

    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
