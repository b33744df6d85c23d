"""Real-CT adaptation judged on landmarks it never saw: folds by anatomical group and the cohort
each fold's second stage trains on (``benchmarks/real_holdout.py`` runs them).

Whole groups and left/right pairs stay together (fold A: lumbar vertebrae, sacral promontory,
iliac crests, ASIS, femoral heads; fold B: the rest, e.g. kidneys, rib 12 tips, liver tip, aortic
bifurcation), so a held-out landmark's mirror twin or neighbouring vertebra is never in training
either.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["FOLD_A_PREFIXES", "anatomical_folds", "layout_cohort", "pooled"]

FOLD_A_PREFIXES = ("vertebra_", "sacral_promontory", "iliac_crest", "asis_", "femoral_head")


def anatomical_folds(names) -> dict[str, list[str]]:
    """``{"A": [...], "B": [...]}``: ``names`` in two folds by anatomical group, order kept."""
    a = [n for n in names if n.startswith(FOLD_A_PREFIXES)]
    return {"A": a, "B": [n for n in names if n not in a]}


def layout_cohort(dest, case_id: str, ct_path, seg_path=None, landmarks=None) -> Path:
    """``dest`` as a manual_dir of the landmark builder with one case: the CT (linked) with its
    segmentation (linked), or, with ``landmarks``, a landmark file of just those."""
    from lm_zoo.landmarks import write_landmarks

    dest = Path(dest)
    (dest / "images").mkdir(parents=True, exist_ok=True)
    link = dest / "images" / f"{case_id}.nii.gz"
    if not link.exists():
        link.symlink_to(Path(ct_path).resolve())
    if landmarks is None:
        (dest / "segmentations").mkdir(exist_ok=True)
        seg = dest / "segmentations" / f"{case_id}.nii.gz"
        if not seg.exists():
            seg.symlink_to(Path(seg_path).resolve())
    else:
        (dest / "landmarks").mkdir(exist_ok=True)
        write_landmarks(dest / "landmarks" / f"{case_id}.csv", landmarks)
    return dest


def pooled(rows, negatives) -> dict:
    """Real-CT figures pooled over folds: ``rows`` are per-landmark results (with ``rank_of_truth``),
    ``negatives`` ``(non_landmark_recall, n_points)`` pairs, weighted by their point counts."""
    ranks = np.array([r["rank_of_truth"] for r in rows])
    return {"real_top1": float(np.mean(ranks == 1)), "real_top5": float(np.mean(ranks <= 5)),
            "n_landmarks": int(len(ranks)),
            "non_landmark_recall": float(np.sum([c * n for c, n in negatives]) / np.sum([n for _, n in negatives])),
            "n_non_landmark": int(np.sum([n for _, n in negatives])), "per_landmark": rows}
