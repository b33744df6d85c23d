"""Field of view: which landmarks a scan cannot show, from where the shape prior expects them.

A landmark is ``out_of_view`` when its expected position lies outside the scan or within a patch
half-width of its edge (:func:`view_margin_mm`: half the side of the weights' patch, in mm). There
the network sees a patch that is partly padding (:data:`lm_zoo.intensity.CT_OUTSIDE_HU`), and on
partial views it gives confident scores to the wrong structure at the cut (a chest CT's lowest
slices "holding" the celiac trunk and the spleen tips). The expected position is the atlas
(:class:`lm_zoo.detection.Atlas`) mapped by the similarity transform that the *found*
landmarks agree on (:func:`expected_positions`: a found point outside its gate is left out of
the fit, so it does not move the others' expected positions).

Every landmark gets one status of :data:`STATUSES`; see :func:`view_status` for the rule.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk

from lm_zoo.detection.atlas import Atlas, _umeyama
from lm_zoo.io import continuous_index, inside_grid

__all__ = ["STATUSES", "FOUND", "NOT_FOUND", "OUT_OF_VIEW", "view_margin_mm", "edge_depth_mm", "expected_positions",
           "view_status", "field_of_view"]

FOUND, NOT_FOUND, OUT_OF_VIEW = "found", "not_found", "out_of_view"
STATUSES = (FOUND, NOT_FOUND, OUT_OF_VIEW)


def view_margin_mm(patch_size_px: int, spacing_mm: float) -> float:
    """The band at the scan's edge where a landmark counts as out of view: half a patch's side (mm)."""
    return float(patch_size_px) * float(spacing_mm) / 2.0


def edge_depth_mm(image: sitk.Image, points) -> np.ndarray:
    """How deep LPS ``points`` (N, 3) lie inside the scan: the distance (mm) to the nearest face of
    its voxel grid (the border of :func:`lm_zoo.io.inside_grid`), negative outside it."""
    points = np.asarray(points, float).reshape(-1, 3)
    index = continuous_index(image, points)
    size = np.asarray(image.GetSize(), float)
    spacing = np.asarray(image.GetSpacing(), float)
    depth = (np.minimum(index + 0.5, size - 0.5 - index) * spacing).min(axis=1)
    # the sign follows the package's one border rule, also exactly on a face
    return np.where(inside_grid(image, points), np.maximum(depth, 0.0), np.minimum(depth, -1e-9))


def expected_positions(names: Sequence[str], points: np.ndarray, found: np.ndarray, scores: np.ndarray,
                       atlas: Atlas | None, scale_range=(0.6, 1.6)) -> np.ndarray:
    """Where the shape prior expects each landmark (C, 3) LPS mm: the atlas mapped by the
    similarity transform fitted to the found landmarks (weighted by score), refitted without the
    worst one while any lies farther than its gate radius (:meth:`Atlas.lookup`) from it. NaN rows when there is no atlas,
    the atlas lacks the class, fewer than ``atlas.min_agree`` found landmarks agree, or the scale
    leaves ``scale_range`` (the shape gate's). No RANSAC: :func:`lm_zoo.detection.decide` already
    kept only found points that one transform of the atlas explains (when its shape prior applied),
    and calibration replays this for every threshold."""
    expected = np.full((len(names), 3), np.nan)
    if atlas is None:
        return expected
    atlas_points, radius = atlas.lookup(list(names))
    points, scores = np.asarray(points, float), np.asarray(scores, float)
    use = np.asarray(found, bool) & np.isfinite(atlas_points).all(1)
    while np.count_nonzero(use) >= max(3, atlas.min_agree):
        s, rot, t = _umeyama(atlas_points[use], points[use], np.clip(scores[use], 1e-3, None))
        predicted = s * atlas_points @ rot.T + t
        off = np.where(use, np.linalg.norm(predicted - points, axis=1) / radius, -np.inf)
        worst = int(np.argmax(off))
        if off[worst] <= 1.0:
            return predicted if scale_range[0] <= s <= scale_range[1] else expected
        use[worst] = False  # one at a time: a gross outlier pulls the fit off the others too
    return expected


def view_status(image: sitk.Image, points: np.ndarray, found: np.ndarray, expected: np.ndarray,
                margin_mm: float) -> tuple[list, list]:
    """(status per landmark, a note per landmark ("" when nothing to say)).

    ``points`` (C, 3): the chosen (found) or best candidate; ``expected`` (C, 3) from
    :func:`expected_positions` (NaN: no expectation). The rule, with depth = :func:`edge_depth_mm`:

    - not found, expected at depth < ``margin_mm`` (or outside): ``out_of_view``, else ``not_found``;
    - found, expected outside the scan or in the band: ``out_of_view``, wherever the point. Beyond
      the edge, prior and point disagree by at least the distance to it, and on partial views such a
      point is the neighbouring structure at the cut (a vertebra one level off, the lowest slices'
      soft tissue); in the band the network saw a cut patch. A gentler rule that kept a point found
      deeper than ``margin_mm`` when the prior puts it in the band reported 8 of 215 out-of-view
      landmarks found (4 of them within 10 mm) against 1 of 215 for this one, for one more in-view
      landmark within 10 mm (131 vs 130 of 145) (``benchmarks/detect_partial_views.py``, held-out
      phantoms case_seed(1, 0..1) cut to chest / abdomen / neck-to-liver, shipped ``landmark``
      weights); the issue's goal is <= 2 % of out-of-view landmarks reported found;
    - found, expected deeper than ``margin_mm``: ``found``, wherever the point (it passed the shape
      gate of :func:`lm_zoo.detection.decide`, so it lies near that expected position; a point at
      the edge of a landmark expected well inside is a near miss, not a view question);
    - found, no expectation: ``found`` (:func:`lm_zoo.detection.decide` already required it inside
      the scan; a point alone cannot tell a landmark at the edge from a structure cut by it).
    """
    found = np.asarray(found, bool)
    has = np.isfinite(expected).all(axis=1)
    exp_depth = np.full(len(found), np.inf)
    if has.any():
        exp_depth[has] = edge_depth_mm(image, expected[has])
    depth = edge_depth_mm(image, points)
    status, notes = [], []
    for c in range(len(found)):
        e, d = exp_depth[c], depth[c]
        where = (f"expected {-e:.0f} mm outside the scan" if e < 0 else
                 f"expected {e:.0f} mm inside the scan's edge (< {margin_mm:g} mm, half a patch)")
        if not found[c]:
            out = e < margin_mm
            status.append(OUT_OF_VIEW if out else NOT_FOUND)
            notes.append(where if out else "")
        elif e < margin_mm:
            status.append(OUT_OF_VIEW)
            notes.append(f"{where}; the point found {d:.0f} mm inside the edge is not taken")
        else:
            status.append(FOUND)
            notes.append("")
    return status, notes


def field_of_view(image, names, cand_points, cand_scores, chosen, reasons, atlas, margin_mm: float) -> dict:
    """From :func:`lm_zoo.detection.decide`'s choice (``chosen``, ``reasons``) to the reported rows:
    the chosen point (not found: the best candidate, for inspection only), its score, the status of
    :func:`view_status` and the reasons; a dict of :class:`lm_zoo.detection.Detections` fields.
    Calibration replays it with each threshold."""
    rows = np.arange(len(names))
    decided = chosen >= 0
    pick = np.where(decided, chosen, np.argmax(cand_scores, axis=1))
    points, scores = cand_points[rows, pick], cand_scores[rows, pick]
    expected = expected_positions(names, points, decided, scores, atlas)
    status, notes = view_status(image, points, decided, expected, margin_mm)
    reasons = [note or reason for note, reason in zip(notes, reasons)]
    return {"points": points, "scores": scores.astype(float), "found": np.array([s == FOUND for s in status]),
            "status": status, "reasons": reasons, "expected_points": expected}

