"""The detector: :func:`detect_landmarks` (search, then decision) and its result, :class:`Detections`."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import SimpleITK as sitk

from lm_zoo.anatomy import NON_LANDMARK
from lm_zoo.detection.config import SearchParams, detection_config
from lm_zoo.detection.decide import decide
from lm_zoo.detection.search import Scorer, body_lattice, check_ct, check_spacing, inside_scan, refine_candidates
from lm_zoo.detection.view import FOUND, NOT_FOUND, STATUSES, field_of_view, view_margin_mm
from lm_zoo.detection.weights import landmark_weight_set, patch_size_px, patch_spacing_mm
from lm_zoo.io import read_image

__all__ = ["Detections", "detect_landmarks"]


@dataclasses.dataclass
class Detections:
    """One row per landmark class searched, in the weight set's class order.

    ``points`` (N, 3) LPS mm: the chosen candidate (for landmarks not found, the best-scoring
    one, for inspection); ``scores``: the network's probability of the class at that point;
    ``status``: one of ``found``, ``not_found``, ``out_of_view`` (:mod:`lm_zoo.detection.view`:
    the shape prior expects it outside the scan or within ``view_margin_mm`` of its edge);
    ``found``: status is ``found`` (a candidate passed :func:`decide`: score >= ``threshold``,
    inside the scan, consistent with the anatomical priors, and the landmark is in view);
    ``reasons``: why a landmark is not found ("" when found); ``expected_points`` (N, 3): where
    the shape prior expects each landmark from the found ones (NaN: no expectation).
    ``candidate_points`` (N, K, 3), ``candidate_scores`` / ``candidate_inside`` (N, K):
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
    status: list | None = None  # None: "found"/"not_found" from ``found`` (results made without a view check)
    expected_points: np.ndarray | None = dataclasses.field(default=None, repr=False)
    view_margin_mm: float = 0.0

    def __post_init__(self):
        if self.status is None:
            self.status = [FOUND if f else NOT_FOUND for f in self.found]

    def __len__(self) -> int:
        return len(self.names)

    def to_landmarks(self):
        """The found landmarks as :class:`lm_zoo.landmarks.Landmarks` (LPS mm)."""
        from lm_zoo.landmarks import Landmarks

        keep = np.flatnonzero(self.found)
        return Landmarks([self.names[i] for i in keep], self.points[keep].reshape(-1, 3))

    def as_dict(self) -> dict:
        return {n: {"point_lps_mm": [float(v) for v in p], "score": float(s), "status": st, "found": bool(f),
                    "reason": r}
                for n, p, s, st, f, r in zip(self.names, self.points, self.scores, self.status, self.found,
                                             self.reasons)}

    def counts(self) -> dict:
        """How many landmarks have each status."""
        return {s: self.status.count(s) for s in STATUSES}

    def table(self) -> str:
        """Plain-text table: name, status, score, x, y, z (LPS mm), note."""
        width = max([len("name")] + [len(n) for n in self.names])
        lines = [f"{'name':<{width}}  {'status':<11}  score        x        y        z  note"]
        for n, p, s, st, r in zip(self.names, self.points, self.scores, self.status, self.reasons):
            lines.append(f"{n:<{width}}  {st:<11}  {s:5.3f} {p[0]:8.1f} {p[1]:8.1f} {p[2]:8.1f}  {r}")
        lines.append(f"{self.summary()} (weights {self.weights!r}; points LPS mm)")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: how many landmarks have each status, and the threshold."""
        c = self.counts()
        return (f"{c[FOUND]} of {len(self.names)} found, {c['not_found']} not found, {c['out_of_view']} out of view "
                f"(score >= {self.threshold:g})")

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
        DetectionError (NotCTError, NoBodyError, a voxel spacing the weights cannot use, a body
        too large to search) or lm_zoo.io.ImageReadError naming the input.
    """
    search = SearchParams() if search is None else search
    if int(batch_size) < 1:
        raise ValueError(f"detect_landmarks: batch_size must be a positive integer, got {batch_size!r}")
    ws = landmark_weight_set(weights)
    config = detection_config(ws)
    names = _searched_names(ws, names, weights)
    spacing_mm = patch_spacing_mm(ws) if spacing_mm is None else float(spacing_mm)
    if not (np.isfinite(spacing_mm) and spacing_mm > 0):
        raise ValueError(f"detect_landmarks: spacing_mm must be a positive number, got {spacing_mm!r}")

    t_start = time.perf_counter()
    if source is None:
        source = str(image) if not isinstance(image, sitk.Image) else "image"
    image = read_image(image)
    check_spacing(image, source, patch_spacing_mm(ws))  # before any allocation that grows with the extent
    check_ct(image, source, search.body_threshold_hu)
    grid = body_lattice(image, search.coarse_step_mm, search.body_threshold_hu, source)
    t_mask = time.perf_counter() - t_start

    if model is None:
        from lm_zoo.applications import MiniVGG25D

        model = MiniVGG25D(weights=weights)
    scorer = Scorer(image, model, weights, spacing_mm, batch_size, progress, patch_size_px(ws))
    column = [ws.class_names.index(n) for n in names]

    coarse = scorer(grid, "coarse grid")[:, column]
    cand_points, cand_scores = refine_candidates(scorer, grid, coarse, column, search)
    inside = inside_scan(image, cand_points.reshape(-1, 3)).reshape(cand_scores.shape) & (cand_scores >= 0)
    threshold = config.threshold if search.threshold is None else float(search.threshold)
    chosen, reasons = decide(names, cand_points, cand_scores, inside, threshold,
                             config.atlas if search.priors else None, priors=search.priors,
                             shape_weight=config.shape_weight)
    margin = view_margin_mm(patch_size_px(ws), spacing_mm)
    view = field_of_view(image, names, cand_points, cand_scores, chosen, reasons,
                         config.atlas if search.priors else None, margin)
    total = time.perf_counter() - t_start
    return Detections(
        names=list(names), **view, threshold=threshold, weights=str(weights), spacing_mm=spacing_mm,
        n_patches=scorer.n_patches, view_margin_mm=margin,
        timings={"total_s": total, "mask_and_grid_s": t_mask, "extract_s": scorer.extract_s,
                 "inference_s": scorer.infer_s, "coarse_points": int(len(grid))},
        candidate_points=cand_points, candidate_scores=cand_scores, candidate_inside=inside,
    )


def _searched_names(ws, names, weights) -> list:
    """The classes to search: ``names`` (checked against the set's landmark classes) or all of them."""
    classes = [c for c in ws.class_names if c != NON_LANDMARK]
    if names is None:
        return classes
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in classes]
    if unknown or not names:
        raise ValueError(f"detect_landmarks: names {unknown or names} are not landmark classes of weights "
                         f"{str(weights)!r}; known: {classes}")
    return names
