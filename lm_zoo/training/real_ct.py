"""What a landmark weight set recognises on a real CT whose landmarks were derived from its
TotalSegmentator segmentation (so nobody placed them by looking at the model).

Each derived landmark the weights know gets one unaugmented 2.5D patch (the landmark datasets'
32 px x 1.5 mm, the weights' ``preprocess_input``), plus body points >= 20 mm from every derived
landmark that should come out ``non_landmark``. :func:`real_ct_accuracy` gives real-CT top-1 /
top-5, non-landmark recall and the rank of the true class per landmark;
``benchmarks/sim_to_real.py`` prints them next to the weight set's phantom test top-1.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

__all__ = ["NEGATIVE_MIN_DISTANCE_MM", "read_ct_and_segmentation",
           "derive_landmarks", "real_ct_accuracy", "run_metrics"]

NEGATIVE_MIN_DISTANCE_MM = 20.0


def read_ct_and_segmentation(ct_path, seg_path=None):
    """``(ct, segmentation or None, resampled)``: the segmentation on the CT's grid, resampled there
    (nearest neighbour, in physical space) when its grid differs."""
    import SimpleITK as sitk

    from lm_zoo.io import read_image

    ct = read_image(ct_path)
    if seg_path is None:
        return ct, None, False
    seg = read_image(seg_path)
    if (seg.GetSize() != ct.GetSize() or not np.allclose(seg.GetOrigin(), ct.GetOrigin(), atol=1e-3)
            or not np.allclose(seg.GetDirection(), ct.GetDirection(), atol=1e-3)
            or not np.allclose(seg.GetSpacing(), ct.GetSpacing(), atol=1e-3)):
        seg = sitk.Resample(seg, ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0, seg.GetPixelID())
        return ct, seg, True
    return ct, seg, False


def derive_landmarks(ct, seg):
    """``(landmarks, skipped)``: the landmarks :func:`lm_zoo.landmarks.landmarks_from_segmentation`
    derives (none without a segmentation) and its warnings about structures it had to skip."""
    from lm_zoo.landmarks import Landmarks, landmarks_from_segmentation

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        derived = Landmarks([], np.empty((0, 3))) if seg is None else landmarks_from_segmentation(seg, image=ct)
    return derived, [str(w.message) for w in caught if "skipped" in str(w.message)]


def real_ct_accuracy(weights, image, landmarks, negatives: int = 40, seed: int = 0, only=None) -> dict:
    """Classify ``image``'s ``landmarks`` (those ``weights`` has a class for; with ``only``, just
    these) and ``negatives`` seeded body points >= 20 mm from every landmark.

    Returns the counts, ``real_top1`` / ``real_top5`` over the landmarks and ``non_landmark_recall``
    over the points (None where there are none), ``landmarks_not_derived`` (classes of the weights
    absent from ``landmarks``), ``per_landmark`` rows (truth, top-1, its score, rank of the truth,
    LPS point) and the patch geometry.
    """
    from lm_zoo.landmarks import sample_negatives
    from lm_zoo.pretrained import describe_weights

    ws = describe_weights(weights)
    classes = list(ws.class_names)
    known = [n for n in landmarks.names if n in classes and (only is None or n in set(only))]
    lm = landmarks.subset(known)
    neg = sample_negatives(image, landmarks.points, negatives, NEGATIVE_MIN_DISTANCE_MM, seed=seed, body_threshold=-500.0)
    points = np.concatenate([lm.points, neg])
    truth = known + ["non_landmark"] * len(neg)
    scores = _scores(weights, image, points)
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.array([int(np.flatnonzero(order[i] == classes.index(t))[0]) + 1 for i, t in enumerate(truth)])
    rows = [{"landmark": t, "top1": classes[order[i, 0]], "top1_score": float(scores[i, order[i, 0]]),
             "rank_of_truth": int(rank[i]), "point_lps_mm": [round(float(v), 2) for v in points[i]]}
            for i, t in enumerate(truth[: len(known)])]
    is_lm = np.arange(len(truth)) < len(known)
    return {
        "n_landmarks": int(is_lm.sum()),
        "n_non_landmark": int((~is_lm).sum()),
        "real_top1": float(np.mean(rank[is_lm] == 1)) if is_lm.any() else None,
        "real_top5": float(np.mean(rank[is_lm] <= 5)) if is_lm.any() else None,
        "non_landmark_recall": float(np.mean(rank[~is_lm] == 1)) if (~is_lm).any() else None,
        "landmarks_not_derived": [n for n in classes if n != "non_landmark" and n not in landmarks.names],
        "per_landmark": rows,
        "patch": {"size": ws.patch_size, "spacing_mm": ws.spacing_mm, "negative_min_distance_mm": NEGATIVE_MIN_DISTANCE_MM,
                  "seed": seed},
    }


def _scores(weights, image, points) -> np.ndarray:
    """Class scores of the unaugmented 2.5D patches at ``points``."""
    from lm_zoo import MiniVGG25D, preprocess_input
    from lm_zoo.applications import predict_batched
    from lm_zoo.intensity import CT_OUTSIDE_HU
    from lm_zoo.patches import extract_25d
    from lm_zoo.pretrained import describe_weights

    ws = describe_weights(weights)  # the patch geometry the weights were trained at
    patches = extract_25d(image, points, ws.patch_size, ws.spacing_mm, CT_OUTSIDE_HU)
    model = MiniVGG25D(weights=weights)
    return predict_batched(model, np.asarray(preprocess_input(patches, weights=weights)))


def run_metrics(weights) -> dict:
    """The weight set's own training-run metrics (the metrics file beside the weights), {} when none."""
    from lm_zoo import pretrained

    if weights in pretrained.WEIGHT_SETS:
        candidates = [pretrained.preset_file(weights, "metrics")]
    else:
        path = Path(weights)
        stem = path.name[: -len(".weights.h5")] if path.name.endswith(".weights.h5") else path.stem
        candidates = [path.with_name(stem + ".metrics.json"), path.with_name("metrics.json")]
    for candidate in candidates:
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    return {}
