"""Whole-volume landmark detection: a CT in, every named landmark of a weight set out.

``detect_landmarks(image, weights="landmark")`` runs the landmark classifier as a detector:

1. **body mask** (:func:`lm_zoo.landmarks.body_mask` at -500 HU, on a ~4 mm copy of the volume);
2. **coarse grid**: an LPS-axis-aligned lattice of ``coarse_step_mm`` (8 mm) inside the mask. The
   network's response is narrow (on phantoms the true class scores ~0.98 at the landmark, ~0.5
   at 6 mm, ~0.1 at 10 mm from it), so the grid must come within a few mm of every landmark;
3. **batched 2.5D patches + inference** at every grid point: one (N, n_classes) score map;
4. **candidates**: per class, the ``candidates_per_class`` (6) best coarse points (non-maximum
   suppression at 2 grid steps, so the candidates are distinct places). The network gives
   confident scores (> 0.9) to wrong places too, so one candidate per class is not enough;
5. **refinement** of every candidate: a local lattice (3x3x3 points at 4 mm), then a finer one
   (5x5x5 at 1.5 mm) around its best point; patches of all lattices go to the network together
   (shared points are scored once);
6. **sub-voxel peak**: the score-weighted centroid of the fine lattice (weights ``score - max/2``,
   clipped at 0), scored once more (kept when it scores >= 0.9 x the best lattice point): a
   candidate's score is the network's probability of the class *at its point*;
7. **decision** (:func:`decide`), one candidate or none per class. A candidate is eligible when
   it lies inside the scan and scores ``>= threshold`` (calibrated per weight set, see
   :class:`DetectionConfig`; :data:`DEFAULT_THRESHOLD` 0.5 without calibration). Then anatomical
   priors that hold in any patient (only the atlas comes from phantoms):

   - **shape prior** (with an :class:`Atlas`): the similarity transform (rotation, translation,
     one scale) of the training cohort's mean landmark layout that most eligible candidates agree
     on (deterministic RANSAC over triples, refitted on the inliers; at least 5 classes must
     agree, else the prior is skipped) predicts where each landmark is; candidates farther than
     ``max(25 mm, 3 x that landmark's RMS spread in the training cohort)`` from that are dropped
     ("far from where the other landmarks place it"). With a calibrated ``shape_weight`` w > 0
     (:class:`DetectionConfig`), every later choice ranks a candidate by
     ``score - w * d^2 / (2 sigma^2)`` (d: its distance from that prediction, sigma: the gate
     radius / ``gate_sigmas``): scores saturate near 1 over a broad region along vessels and
     organ poles, and among such near-ties the place the other landmarks predict wins;
   - **vertebral order and spacing**: vertebral bodies run cranio-caudally (C7 above T1 ...
     above L5), and consecutive chosen levels are 0.6-1.5 x the atlas's distance between them
     apart (:data:`VERTEBRA_GAP_RANGE`; without an atlas only more than
     :data:`MIN_VERTEBRA_GAP_MM` along S-I): levels are what the network confuses most, and a
     level mislabelled as its neighbour halves or doubles a gap. Dynamic programme over the
     levels' candidates maximising the sum of (score - :data:`CHAIN_OFFSET`);
   - **superior-inferior order** along :data:`ORDER_CHAINS` (aortic hiatus > celiac > SMA > renal
     arteries > aortic bifurcation > iliac bifurcations, kidney upper pole > hilum > lower pole,
     sternal notch > angle > xiphoid, liver dome > tip, spleen poles), same programme;
   - **right/left**: of a ``*right*``/``*left*`` pair the right one lies at smaller LPS x (the
     patient's right is -x);

   then, per class, the best remaining candidate. A landmark with none is reported as not found,
   with its best candidate and that score for inspection only, and the reason.

The volume is read once; patches are extracted (fused numba kernel) and classified in batches of
``batch_size``. With the default search a torso CT costs about 100-160 k patches. Speed and
quality figures (phantom held-out cases and a real CT, per landmark), and the calibration:
``benchmarks/detect.py``; the shipped weights' figures are in their model card. With the
shipped phantom-trained weights, high-scoring near misses (10-30 mm) remain on held-out
phantoms and most classes are wrong on real CT: "found" means confident and consistent with
the other landmarks, not that the point is right.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from lm_zoo.anatomy import NON_LANDMARK, ORDER_CHAINS, VERTEBRA_LEVELS, mirror_pairs
from lm_zoo.errors import LmZooError
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
    "patch_size_px",
    "decide",
    "Atlas",
    "build_atlas",
    "DetectionConfig",
    "detection_config",
    "detection_config_path",
    "vertebral_order",
    "ORDER_CHAINS",
    "VERTEBRA_GAP_RANGE",
    "CHAIN_OFFSET",
]

DEFAULT_THRESHOLD = 0.5
MIN_VERTEBRA_GAP_MM = 8.0
# A CT in Hounsfield units holds air (about -1000 HU) around or inside the body.
_AIR_HU = -500.0
_MIN_BODY_ML = 50.0
_MASK_STEP_MM = 4.0


class DetectionError(LmZooError, ValueError):
    """Input the detector cannot work on (named in the message)."""


class NotCTError(DetectionError):
    """A volume whose intensities are not CT Hounsfield units (e.g. an MR)."""


class NoBodyError(DetectionError):
    """A volume without a body to search (empty, air only, or a body too small)."""


@dataclasses.dataclass(frozen=True)
class SearchParams:
    """The search, in mm. ``refine`` holds (step_mm, half_width_in_steps) per refinement stage;
    ``threshold`` None takes the weights' calibrated one; ``priors`` False reports every class's
    best eligible candidate without the anatomical priors of :func:`decide`. The defaults were
    chosen on the calibration seed's phantom cases (``benchmarks/detect.py``)."""

    coarse_step_mm: float = 8.0
    candidates_per_class: int = 6
    refine: tuple = ((4.0, 1), (1.5, 2))
    threshold: float | None = None  # None: the weights' calibrated threshold, else DEFAULT_THRESHOLD
    body_threshold_hu: float = _AIR_HU
    priors: bool = True

    def __post_init__(self):
        if not (self.coarse_step_mm > 0 and np.isfinite(self.coarse_step_mm)):
            raise ValueError(f"SearchParams: coarse_step_mm must be a positive number, got {self.coarse_step_mm!r}")
        if int(self.candidates_per_class) < 1:
            raise ValueError(f"SearchParams: candidates_per_class must be >= 1, got {self.candidates_per_class!r}")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ValueError(f"SearchParams: threshold must be in (0, 1), got {self.threshold!r}")
        for stage in self.refine:
            step, half = stage
            if not (step > 0 and int(half) >= 1):
                raise ValueError(f"SearchParams: refine stages are (step_mm > 0, half_width >= 1), got {stage!r}")


@dataclasses.dataclass
class Detections:
    """One row per landmark class searched, in the weight set's class order.

    ``points`` (N, 3) LPS mm: the chosen candidate (for landmarks not found, the best-scoring
    one, for inspection); ``scores``: the network's probability of the class at that point;
    ``found``: a candidate passed :func:`decide` (score >= ``threshold``, inside the scan,
    consistent with the anatomical priors); ``reasons``: why a landmark is not found ("" when
    found). ``candidate_points`` (N, K, 3), ``candidate_scores`` / ``candidate_inside`` (N, K):
    all refined candidates (score -1: unused slot), so the decision can be replayed.
    ``timings`` (s) and ``n_patches`` describe the run.
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
    candidate_points: np.ndarray | None = dataclasses.field(default=None, repr=False)
    candidate_scores: np.ndarray | None = dataclasses.field(default=None, repr=False)
    candidate_inside: np.ndarray | None = dataclasses.field(default=None, repr=False)

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


def _landmark_patch_default(field: str):
    from lm_zoo.patch_datasets import LandmarkParams

    return LandmarkParams.__dataclass_fields__[field].default


def patch_spacing_mm(ws) -> float:
    """Pixel spacing (mm) of the patches a weight set was trained on.

    Read from the set's preprocessing (``spacing_mm``, in the registry or the weights' sidecar);
    sidecars written before it was recorded fall back to the landmark patch datasets' spacing
    (``lm_zoo.patch_datasets.LandmarkParams``, 1.5 mm).
    """
    value = ws.preprocessing.get("spacing_mm", ws.preprocessing.get("patch_spacing_mm"))
    return float(_landmark_patch_default("spacing_mm") if value is None else value)


def patch_size_px(ws) -> int:
    """Patch side (pixels) a weight set was trained on: preprocessing ``patch_size``, else 32."""
    value = ws.preprocessing.get("patch_size")
    return int(_landmark_patch_default("patch_size") if value is None else value)


@dataclasses.dataclass(frozen=True, eq=False)
class DetectionConfig:
    """What detection with one weight set uses besides the network: the found/not-found
    ``threshold`` calibrated for it, the ``atlas`` of its classes (shape prior) and the
    ``shape_weight`` of that prior in the ranking of candidates (:func:`decide`), read from
    ``<weights stem>.detection.json`` beside the weights file (written by
    ``benchmarks/detect.py --calibrate``). ``path`` is None when there is no such file: then
    :data:`DEFAULT_THRESHOLD` and no shape prior (the order priors still apply)."""

    threshold: float = DEFAULT_THRESHOLD
    atlas: "Atlas | None" = None
    shape_weight: float = 0.0  # see decide(); calibrated with the threshold
    path: str | None = None
    weights_sha256: str | None = None
    calibration: dict = dataclasses.field(default_factory=dict)


def detection_config_path(ws):
    """``x.weights.h5`` -> ``x.detection.json`` beside it (for a registered set: in the package)."""
    from pathlib import Path

    from lm_zoo import pretrained

    local = pretrained.local_path(ws) if ws.name in pretrained.WEIGHT_SETS else Path(ws.name)
    name = local.name[: -len(pretrained.WEIGHTS_SUFFIX)] if local.name.endswith(pretrained.WEIGHTS_SUFFIX) else local.stem
    return local.with_name(name + ".detection.json")


def detection_config(ws) -> DetectionConfig:
    """The :class:`DetectionConfig` of a weight set (defaults when it has no detection file)."""
    import json

    path = detection_config_path(ws)
    if not path.is_file():
        return DetectionConfig()
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        threshold = float(entry["threshold"])
        shape_weight = float(entry.get("shape_weight", 0.0))
        atlas = Atlas.from_json(entry["atlas"]) if entry.get("atlas") else None
    except (ValueError, KeyError, TypeError) as err:
        raise DetectionError(f"detection settings {path} of weights {ws.name!r} are unreadable: {err!r}; "
                             "rewrite them with benchmarks/detect.py --calibrate or delete the file") from None
    if not 0 < threshold < 1:
        raise DetectionError(f"detection settings {path}: threshold must be in (0, 1), got {threshold!r}")
    if not (np.isfinite(shape_weight) and shape_weight >= 0):
        raise DetectionError(f"detection settings {path}: shape_weight must be a number >= 0, got {shape_weight!r}")
    sha = entry.get("weights_sha256")
    if sha and ws.sha256 and sha != ws.sha256:
        warnings.warn(f"{path} was calibrated for other weights (sha256 {sha[:12]}..., these are {ws.sha256[:12]}...): "
                      "its threshold may not suit them; recalibrate with benchmarks/detect.py --calibrate",
                      stacklevel=3)
    return DetectionConfig(threshold=threshold, atlas=atlas, shape_weight=shape_weight, path=str(path), weights_sha256=sha,
                           calibration=entry.get("calibration", {}))


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

    def __init__(self, image, model, weights, spacing_mm, batch_size, progress, patch_size=32):
        self.image, self.model, self.weights, self.patch_size = image, model, weights, int(patch_size)
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
            x = extract_25d(self.image, chunk, self.patch_size, self.spacing_mm, CT_OUTSIDE_HU)
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


def _refine_candidates(scorer, grid: np.ndarray, coarse: np.ndarray, column, search: "SearchParams"):
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


def vertebral_order(names: Sequence[str], points, scores, found, min_gap_mm: float = MIN_VERTEBRA_GAP_MM) -> np.ndarray:
    """Which found vertebrae to keep so that levels run cranio-caudally; returns a bool mask.

    Among found vertebral levels (class names in :data:`VERTEBRA_LEVELS`), picks the subset of
    highest total score in which every level lies more than ``min_gap_mm`` below (LPS z: superior
    is +z) the level above it, by dynamic programming over the levels in anatomical order (one
    point per class; :func:`decide` does the same over several candidates per class, with the
    atlas's spacing). Non-vertebral rows are always kept as they are.
    """
    names = list(names)
    points = np.asarray(points, float).reshape(-1, 1, 3)
    keep = np.asarray(found, bool).copy()
    levels = [names.index(v) for v in VERTEBRA_LEVELS if v in names]
    choice = _chain_choice(levels, points, keep[:, None], np.asarray(scores, float)[:, None], min_gap_mm=min_gap_mm)
    for c, k in choice.items():
        keep[c] = k >= 0
    return keep


# ----------------------------------------------------------------------------------- priors
# ORDER_CHAINS (lm_zoo.anatomy) hold in any patient position, the scan's direction cosines having
# put the points in patient space; the decision keeps, per chain, the combination of candidates of
# highest total score that respects it (classes decided by an earlier chain keep their choice).
# Vertebral body centres: consecutive found levels must lie between these fractions of the
# atlas's distance between them (a level mislabelled as its neighbour halves or doubles it).
VERTEBRA_GAP_RANGE = (0.6, 1.5)
# Each point a chain keeps adds (score - CHAIN_OFFSET): one confident candidate outweighs two
# doubtful ones that fit the order only together (chosen on the calibration seed's cases).
CHAIN_OFFSET = 0.5


def _umeyama(src: np.ndarray, dst: np.ndarray, w: np.ndarray):
    """Similarity (s, R, t) minimising sum w |s R src + t - dst|^2 (Umeyama 1991)."""
    w = w / w.sum()
    ms, md = w @ src, w @ dst
    a, b = src - ms, dst - md
    u, sv, vt = np.linalg.svd((b * w[:, None]).T @ a)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = (u * d) @ vt
    var = float(w @ (a ** 2).sum(1))
    scale = float((sv * d).sum() / var) if var > 0 else 1.0
    return scale, rot, md - scale * rot @ ms


def shape_gate(atlas_points: np.ndarray, radius: np.ndarray, points: np.ndarray, ok: np.ndarray, scores: np.ndarray,
               min_agree: int, iterations: int = 400, scale_range=(0.6, 1.6)):
    """Candidates consistent with one similarity transform of the atlas; see :class:`Atlas`.

    ``atlas_points`` (C, 3) (NaN for classes the atlas lacks), ``radius`` (C,) gate per class,
    ``points`` (C, K, 3), ``ok`` (C, K) candidates allowed so far, ``scores`` (C, K). RANSAC
    (deterministic: a fixed seed) over triples of classes, each taking one of its allowed
    candidates; the transform whose gates hold the most score (one candidate per class counts)
    is refitted on its inliers twice. Returns (inside (C, K) bool, predicted (C, 3)) or None when
    fewer than ``min_agree`` classes agree on one transform.
    """
    known = np.isfinite(atlas_points).all(1)
    usable = np.flatnonzero(known & ok.any(1))
    if len(usable) < max(3, min_agree):
        return None
    rng = np.random.default_rng(0)
    best, best_support = None, 0.0

    def support(transform):
        s, rot, t = transform
        pred = s * atlas_points @ rot.T + t
        dist = np.linalg.norm(points - pred[:, None], axis=2)
        inside = ok & known[:, None] & (dist <= radius[:, None])
        value = np.where(inside, scores, 0.0).max(1)
        return inside, pred, float(value.sum()), int(np.count_nonzero(inside.any(1)))

    class_weight = np.where(ok, scores, 0).max(1)[usable]
    class_weight = class_weight / class_weight.sum()
    for _ in range(iterations):
        trio = rng.choice(usable, 3, replace=False, p=class_weight)
        picks = [rng.choice(np.flatnonzero(ok[c]), p=scores[c, ok[c]] / scores[c, ok[c]].sum()) for c in trio]
        src, dst = atlas_points[trio], points[trio, picks]
        if np.linalg.norm(np.cross(src[1] - src[0], src[2] - src[0])) < 100.0:  # nearly collinear atlas triple
            continue
        transform = _umeyama(src, dst, np.ones(3))
        if not scale_range[0] <= transform[0] <= scale_range[1]:
            continue
        inside, _, value, _ = support(transform)
        if value > best_support:
            best, best_support = transform, value
    if best is None:
        return None
    for _ in range(2):  # refit on the best inlier candidate of each class
        inside, pred, _, n_agree = support(best)
        cls = np.flatnonzero(inside.any(1))
        if len(cls) < 3:
            return None
        pick = np.argmax(np.where(inside[cls], scores[cls], -1), axis=1)
        refit = _umeyama(atlas_points[cls], points[cls, pick], scores[cls, pick])
        if not scale_range[0] <= refit[0] <= scale_range[1]:
            break
        best = refit
    inside, pred, _, n_agree = support(best)
    if n_agree < min_agree:
        return None
    return inside, pred


def _chain_choice(order: Sequence[int], points: np.ndarray, ok: np.ndarray, scores: np.ndarray,
                  gap_range=None, atlas_gap=None, min_gap_mm: float = 0.0, offset: float = 0.0) -> dict:
    """Best-scoring choice of one allowed candidate (or none) per class of ``order`` so that the
    chosen points run superior to inferior (LPS z decreasing by more than ``min_gap_mm``) and, with ``gap_range``, each
    distance between consecutive chosen classes a..b lies within ``gap_range`` times the sum of
    ``atlas_gap`` (distance of consecutive classes in the atlas) from a to b. Each chosen
    candidate adds its score minus ``offset``: with an offset, one confident candidate outweighs
    two doubtful ones that only fit the order together. Returns {class: candidate or -1}."""
    nodes = [(pos, c, k) for pos, c in enumerate(order) for k in np.flatnonzero(ok[c])]
    if not nodes:
        return {c: -1 for c in order}
    value = np.array([scores[c, k] - offset for _, c, k in nodes])
    best = value.copy()
    previous = np.full(len(nodes), -1)
    cum = np.concatenate([[0.0], np.cumsum(atlas_gap)]) if atlas_gap is not None else None
    for j, (pj, cj, kj) in enumerate(nodes):
        for i in range(j):
            pi, ci, ki = nodes[i]
            if pi >= pj or points[ci, ki, 2] - points[cj, kj, 2] <= min_gap_mm:
                continue
            if gap_range is not None:
                expected = cum[pj] - cum[pi]
                gap = np.linalg.norm(points[ci, ki] - points[cj, kj])
                if not gap_range[0] * expected <= gap <= gap_range[1] * expected:
                    continue
            if best[i] + value[j] > best[j]:
                best[j], previous[j] = best[i] + value[j], i
    choice = {c: -1 for c in order}
    at = int(np.argmax(best)) if best.max() > 0 else -1
    while at >= 0:
        _, c, k = nodes[at]
        choice[c] = int(k)
        at = int(previous[at])
    return choice


def _pair_choice(right: int, left: int, points, ok, scores) -> tuple:
    """Best-scoring candidates of a right/left pair with the right one at smaller LPS x (the
    patient's right is -x); a class may stay unchosen (-1)."""
    options = [(-1, -1, 0.0)]
    for kr in [-1, *np.flatnonzero(ok[right])]:
        for kl in [-1, *np.flatnonzero(ok[left])]:
            if kr >= 0 and kl >= 0 and points[right, kr, 0] >= points[left, kl, 0]:
                continue
            options.append((kr, kl, (scores[right, kr] if kr >= 0 else 0) + (scores[left, kl] if kl >= 0 else 0)))
    kr, kl, _ = max(options, key=lambda o: o[2])
    return int(kr), int(kl)


@dataclasses.dataclass(frozen=True, eq=False)
class Atlas:
    """Mean landmark layout of a class set, for the shape prior of :func:`decide`.

    ``points`` (N, 3) mm: the generalised-Procrustes mean (similarity-aligned) of the training
    cohort's landmarks; ``rms_mm`` (N,): each landmark's RMS distance from it after alignment.
    A candidate passes the gate when it lies within ``max(gate_floor_mm, gate_sigmas * rms)`` of
    the atlas point mapped by the one similarity transform that most found landmarks agree on
    (at least ``min_agree`` classes).
    """

    names: tuple
    points: np.ndarray
    rms_mm: np.ndarray
    source: str = ""
    gate_sigmas: float = 3.0
    gate_floor_mm: float = 25.0
    min_agree: int = 5

    def lookup(self, names: Sequence[str]):
        """(points (C, 3) with NaN rows for unknown names, gate radius (C,))."""
        index = {n: i for i, n in enumerate(self.names)}
        pts = np.full((len(names), 3), np.nan)
        radius = np.full(len(names), np.nan)
        for c, n in enumerate(names):
            if n in index:
                pts[c] = self.points[index[n]]
                radius[c] = max(self.gate_floor_mm, self.gate_sigmas * float(self.rms_mm[index[n]]))
        return pts, radius

    def to_json(self) -> dict:
        return {"names": list(self.names), "points_mm": np.round(self.points, 2).tolist(),
                "rms_mm": np.round(self.rms_mm, 2).tolist(), "source": self.source, "gate_sigmas": self.gate_sigmas,
                "gate_floor_mm": self.gate_floor_mm, "min_agree": self.min_agree}

    @classmethod
    def from_json(cls, entry: dict) -> "Atlas":
        return cls(names=tuple(entry["names"]), points=np.asarray(entry["points_mm"], float),
                   rms_mm=np.asarray(entry["rms_mm"], float), source=entry.get("source", ""),
                   gate_sigmas=float(entry.get("gate_sigmas", 3.0)), gate_floor_mm=float(entry.get("gate_floor_mm", 25.0)),
                   min_agree=int(entry.get("min_agree", 5)))


def build_atlas(landmark_sets: Sequence[np.ndarray], names: Sequence[str], source: str = "", iterations: int = 10) -> Atlas:
    """Generalised Procrustes (similarity) mean of landmark sets (each (N, 3), same ``names``)."""
    sets = [np.asarray(p, float) for p in landmark_sets]
    mean = sets[0].copy()
    ones = np.ones(len(names))
    for _ in range(iterations):
        aligned = []
        for x in sets:
            s, rot, t = _umeyama(x, mean, ones)
            aligned.append(s * x @ rot.T + t)
        aligned = np.asarray(aligned)
        new = aligned.mean(0)
        s, rot, t = _umeyama(new, sets[0], ones)  # keep the mean in the first case's frame and size
        mean = s * new @ rot.T + t
    rms = np.sqrt((np.linalg.norm(aligned - aligned.mean(0), axis=2) ** 2).mean(0))
    return Atlas(names=tuple(names), points=mean, rms_mm=rms, source=source)


def decide(names: Sequence[str], points: np.ndarray, scores: np.ndarray, inside: np.ndarray, threshold: float,
           atlas: Atlas | None = None, priors: bool = True, chain_offset: float = CHAIN_OFFSET,
           shape_weight: float = 0.0):
    """One point (or none) per class from its refined candidates; see the module doc.

    ``points`` (C, K, 3), ``scores`` (C, K), ``inside`` (C, K): the candidate lies in the scan.
    ``shape_weight`` > 0 (needs ``atlas``) ranks the candidates that pass the gates by score minus
    ``shape_weight * d^2 / (2 sigma^2)`` (d: distance from the shape prior's prediction, sigma:
    gate radius / ``gate_sigmas``); eligibility (threshold) is decided on the raw scores.
    Returns (chosen (C,) candidate index or -1, reasons (C,) "" when found).
    """
    names = list(names)
    n_classes = len(names)
    ok = (scores >= threshold) & inside
    reasons = ["" if ok[c].any() else ("outside the scan" if not (inside[c] & (scores[c] >= 0)).any()
                                      else f"score below {threshold:g}") for c in range(n_classes)]
    if not priors:
        chosen = np.where(ok.any(1), np.argmax(np.where(ok, scores, -np.inf), axis=1), -1)
        return chosen, reasons
    if atlas is not None:
        atlas_points, radius = atlas.lookup(names)
        gate = shape_gate(atlas_points, radius, points, ok, scores, atlas.min_agree)
        if gate is not None:
            inside_gate, predicted = gate
            for c in np.flatnonzero(ok.any(1) & ~(ok & inside_gate).any(1)):
                reasons[c] = "far from where the other landmarks place it (shape prior)"
            ok = ok & (inside_gate | ~np.isfinite(atlas_points).all(1)[:, None])
            if shape_weight > 0:
                sigma = radius / atlas.gate_sigmas
                z2 = (np.linalg.norm(points - predicted[:, None], axis=2) / sigma[:, None]) ** 2
                scores = scores - shape_weight * np.nan_to_num(0.5 * z2, nan=0.0)
    else:
        atlas_points = None
    chosen = np.full(n_classes, -1)
    decided = np.zeros(n_classes, bool)

    def settle(choice: dict, why: str):
        nonlocal ok
        for c, k in choice.items():
            if decided[c]:
                continue
            decided[c] = True
            chosen[c] = k
            if k < 0 and ok[c].any():
                reasons[c] = why
            keep = np.zeros_like(ok[c])
            if k >= 0:
                keep[k] = True
            ok[c] = ok[c] & keep

    levels = [names.index(v) for v in VERTEBRA_LEVELS if v in names]
    if len(levels) >= 2:
        gap = None
        if atlas_points is not None and np.isfinite(atlas_points[levels]).all():
            gap = np.linalg.norm(np.diff(atlas_points[levels], axis=0), axis=1)
        settle(_chain_choice(levels, points, ok, scores, VERTEBRA_GAP_RANGE if gap is not None else None, gap,
                             min_gap_mm=MIN_VERTEBRA_GAP_MM, offset=chain_offset),
               "breaks the cranio-caudal vertebral order or spacing")
    for chain in ORDER_CHAINS:
        order = [names.index(n) for n in chain if n in names]
        if len(order) >= 2:
            choice = _chain_choice(order, points, ok, scores, offset=chain_offset)
            settle({c: k for c, k in choice.items() if not decided[c]},
                   "breaks the superior-inferior order " + " > ".join(n for n in chain if n in names))
    for right, left in mirror_pairs(names):
        c, cl = names.index(right), names.index(left)
        kr, kl = _pair_choice(c, cl, points, ok, scores)
        for cc, k, other in ((c, kr, cl), (cl, kl, c)):
            if k < 0 and ok[cc].any():
                reasons[cc] = f"right/left order with {names[other]} (the patient's right is -x in LPS)"
            chosen[cc] = k
            decided[cc] = True
            keep = np.zeros_like(ok[cc])
            if k >= 0:
                keep[k] = True
            ok[cc] = ok[cc] & keep
    for c in np.flatnonzero(~decided):
        chosen[c] = int(np.argmax(np.where(ok[c], scores[c], -np.inf))) if ok[c].any() else -1
    return chosen, reasons


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
    config = detection_config(ws)
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
    scorer = _Scorer(image, model, weights, spacing_mm, batch_size, progress, patch_size_px(ws))
    column = [ws.class_names.index(n) for n in names]

    coarse = scorer(grid, "coarse grid")[:, column]
    cand_points, cand_scores = _refine_candidates(scorer, grid, coarse, column, search)
    inside = _inside_scan(image, cand_points.reshape(-1, 3)).reshape(cand_scores.shape) & (cand_scores >= 0)
    threshold = config.threshold if search.threshold is None else float(search.threshold)
    chosen, reasons = decide(names, cand_points, cand_scores, inside, threshold,
                             config.atlas if search.priors else None, priors=search.priors,
                             shape_weight=config.shape_weight)
    found = chosen >= 0
    # not found: the best candidate, for inspection only
    pick = np.where(found, chosen, np.argmax(cand_scores, axis=1))
    points = cand_points[np.arange(len(names)), pick]
    scores = cand_scores[np.arange(len(names)), pick]
    total = time.perf_counter() - t_start
    return Detections(
        names=list(names), points=points, scores=scores.astype(float), found=found, reasons=reasons,
        threshold=threshold, weights=str(weights), spacing_mm=spacing_mm, n_patches=scorer.n_patches,
        timings={"total_s": total, "mask_and_grid_s": t_mask, "extract_s": scorer.extract_s,
                 "inference_s": scorer.infer_s, "coarse_points": int(len(grid))},
        candidate_points=cand_points, candidate_scores=cand_scores, candidate_inside=inside,
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
