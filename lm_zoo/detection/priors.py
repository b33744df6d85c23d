"""Anatomical order priors that hold in any patient: vertebral order and spacing, the
superior-inferior chains of :data:`lm_zoo.anatomy.ORDER_CHAINS`, right/left of mirror pairs.

Each is a best-scoring choice of one candidate (or none) per class; :func:`lm_zoo.detection.decide`
applies them in turn.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from lm_zoo.anatomy import VERTEBRA_LEVELS

__all__ = ["MIN_VERTEBRA_GAP_MM", "VERTEBRA_GAP_RANGE", "CHAIN_OFFSET", "vertebral_order", "chain_choice",
           "pair_choice"]

MIN_VERTEBRA_GAP_MM = 8.0
# ORDER_CHAINS (lm_zoo.anatomy) hold in any patient position, the scan's direction cosines having
# put the points in patient space; the decision keeps, per chain, the combination of candidates of
# highest total score that respects it (classes decided by an earlier chain keep their choice).
# Vertebral body centres: consecutive found levels must lie between these fractions of the
# atlas's distance between them (a level mislabelled as its neighbour halves or doubles it).
VERTEBRA_GAP_RANGE = (0.6, 1.5)
# Each point a chain keeps adds (score - CHAIN_OFFSET): one confident candidate outweighs two
# doubtful ones that fit the order only together (chosen on the calibration seed's cases).
CHAIN_OFFSET = 0.5


def chain_choice(order: Sequence[int], points: np.ndarray, ok: np.ndarray, scores: np.ndarray,
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


def pair_choice(right: int, left: int, points, ok, scores) -> tuple:
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
    choice = chain_choice(levels, points, keep[:, None], np.asarray(scores, float)[:, None], min_gap_mm=min_gap_mm)
    for c, k in choice.items():
        keep[c] = k >= 0
    return keep

