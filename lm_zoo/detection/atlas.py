"""The shape prior: a mean landmark layout (:class:`Atlas`) and the similarity transform of it
that most candidates agree on (:func:`shape_gate`)."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

__all__ = ["Atlas", "build_atlas", "shape_gate"]


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


