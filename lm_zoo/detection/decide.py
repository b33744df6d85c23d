"""The decision: one candidate (or none) per landmark class, by threshold and anatomical priors."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from lm_zoo.anatomy import ORDER_CHAINS, VERTEBRA_LEVELS, mirror_pairs
from lm_zoo.detection.atlas import Atlas, shape_gate
from lm_zoo.detection.priors import CHAIN_OFFSET, MIN_VERTEBRA_GAP_MM, VERTEBRA_GAP_RANGE, chain_choice, pair_choice

__all__ = ["decide"]


def decide(names: Sequence[str], points: np.ndarray, scores: np.ndarray, inside: np.ndarray, threshold: float,
           atlas: Atlas | None = None, priors: bool = True, chain_offset: float = CHAIN_OFFSET,
           shape_weight: float = 0.0):
    """One point (or none) per class from its refined candidates; see the :mod:`lm_zoo.detection` doc.

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
    atlas_points = None
    if atlas is not None:
        ok, scores, atlas_points = _shape_prior(names, points, scores, ok, reasons, atlas, shape_weight)
    state = _Choices(ok, reasons)
    levels = [names.index(v) for v in VERTEBRA_LEVELS if v in names]
    if len(levels) >= 2:
        gap = None
        if atlas_points is not None and np.isfinite(atlas_points[levels]).all():
            gap = np.linalg.norm(np.diff(atlas_points[levels], axis=0), axis=1)
        state.settle(chain_choice(levels, points, state.ok, scores, VERTEBRA_GAP_RANGE if gap is not None else None,
                                  gap, min_gap_mm=MIN_VERTEBRA_GAP_MM, offset=chain_offset),
                     "breaks the cranio-caudal vertebral order or spacing")
    for chain in ORDER_CHAINS:
        order = [names.index(n) for n in chain if n in names]
        if len(order) >= 2:
            choice = chain_choice(order, points, state.ok, scores, offset=chain_offset)
            state.settle({c: k for c, k in choice.items() if not state.decided[c]},
                         "breaks the superior-inferior order " + " > ".join(n for n in chain if n in names))
    for right, left in mirror_pairs(names):
        c, cl = names.index(right), names.index(left)
        kr, kl = pair_choice(c, cl, points, state.ok, scores)
        # a right/left pair overrides an earlier chain's choice of either class
        for cc, k, other in ((c, kr, cl), (cl, kl, c)):
            state.keep(cc, k, f"right/left order with {names[other]} (the patient's right is -x in LPS)")
    ok = state.ok
    for c in np.flatnonzero(~state.decided):
        state.chosen[c] = int(np.argmax(np.where(ok[c], scores[c], -np.inf))) if ok[c].any() else -1
    return state.chosen, reasons


def _shape_prior(names, points, scores, ok, reasons, atlas: Atlas, shape_weight: float):
    """Drop candidates outside the shape gate (saying why in ``reasons``) and, with a
    ``shape_weight``, lower each score by its distance from the predicted place.
    Returns (ok, ranking scores, atlas points (C, 3))."""
    atlas_points, radius = atlas.lookup(names)
    gate = shape_gate(atlas_points, radius, points, ok, scores, atlas.min_agree)
    if gate is None:
        return ok, scores, atlas_points
    inside_gate, predicted = gate
    for c in np.flatnonzero(ok.any(1) & ~(ok & inside_gate).any(1)):
        reasons[c] = "far from where the other landmarks place it (shape prior)"
    ok = ok & (inside_gate | ~np.isfinite(atlas_points).all(1)[:, None])
    if shape_weight > 0:
        sigma = radius / atlas.gate_sigmas
        z2 = (np.linalg.norm(points - predicted[:, None], axis=2) / sigma[:, None]) ** 2
        scores = scores - shape_weight * np.nan_to_num(0.5 * z2, nan=0.0)
    return ok, scores, atlas_points


class _Choices:
    """The decision so far: per class the chosen candidate (-1: none), whether a prior has
    decided it, and the candidates still allowed (``ok``, narrowed to the chosen one)."""

    def __init__(self, ok: np.ndarray, reasons: list):
        self.ok, self.reasons = ok, reasons
        self.chosen = np.full(len(ok), -1)
        self.decided = np.zeros(len(ok), bool)

    def keep(self, c: int, k: int, why: str) -> None:
        """Class ``c`` takes candidate ``k`` (-1: none, ``why`` when it had eligible ones)."""
        if k < 0 and self.ok[c].any():
            self.reasons[c] = why
        self.chosen[c] = k
        self.decided[c] = True
        keep = np.zeros_like(self.ok[c])
        if k >= 0:
            keep[k] = True
        self.ok[c] = self.ok[c] & keep

    def settle(self, choice: dict, why: str) -> None:
        """Apply a prior's choice to the classes no earlier prior decided."""
        for c, k in choice.items():
            if not self.decided[c]:
                self.keep(c, k, why)
