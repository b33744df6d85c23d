"""Calibration of the detector for one weight set, and the figures of its model card.

What :class:`lm_zoo.detection.DetectionConfig` reads from a weight set's preset (its
``.detection.json``) is made here, from cases with known landmarks (``(image, Landmarks)``
pairs; ``lm-zoo weights calibrate NAME`` draws them from the phantom, so this module never
imports :mod:`lm_zoo.phantoms`):

- the **atlas** of the shape prior: :func:`lm_zoo.detection.build_atlas` over the landmark sets of
  the cohort the weights were trained on (no evaluation case shapes it);
- the found/not-found **threshold** and the **shape weight** (how much the shape prior's predicted
  position ranks candidates, :func:`lm_zoo.detection.decide`): detection runs once per
  calibration case (candidates do not depend on the threshold), then every threshold of
  :data:`THRESHOLD_GRID` times every weight of :data:`SHAPE_WEIGHT_GRID` is applied to the same
  candidates; the chosen pair maximises (landmarks found within 10 mm) - (false detections), i.e.
  a false detection costs as much as a missed correct one. Each case is used whole and cut to a
  clinical field of view (:func:`partial_view`: chest or abdomen-pelvis), so a landmark outside the
  scan that is reported as found counts as a false detection: the threshold has to say "not
  found" for them. Rows within :data:`TIE_TOLERANCE` of the in-view instances of the best are
  ties (:func:`calibration_choice`): higher threshold first, then lower shape weight.

:func:`calibrate` returns the detection file's content, :func:`write_detection_settings` writes
it (atomically) to the weight set's preset. :func:`quality` and :func:`measure_speed` return the
``detection`` entry of a weight set's metrics (per landmark: median error of found points, share
of in-view landmarks found within 10 mm, misses, false detections; seconds per volume), which
:func:`write_detection_metrics` writes.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import SimpleITK as sitk

from lm_zoo.detection.config import SearchParams, detection_config, detection_config_path
from lm_zoo.detection.decide import decide
from lm_zoo.detection.detector import detect_landmarks
from lm_zoo.detection.search import body_lattice, inside_scan
from lm_zoo.detection.view import field_of_view
from lm_zoo.detection.weights import landmark_weight_set, patch_size_px, patch_spacing_mm

__all__ = [
    "THRESHOLD_GRID", "SHAPE_WEIGHT_GRID", "TIE_TOLERANCE", "PARTIAL_VIEWS", "WITHIN_MM",
    "partial_view", "evaluate_case", "summarise", "calibration_choice", "calibration_table", "calibrate",
    "write_detection_settings", "detect_cases", "quality", "evaluate_real", "measure_speed",
    "label_training_scan", "write_detection_metrics",
]

THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.951, 0.05))
SHAPE_WEIGHT_GRID = (0.0, 0.01, 0.02, 0.05, 0.1)  # decide(shape_weight=)
TIE_TOLERANCE = 0.005  # objective differences under this share of the in-view instances are ties
PARTIAL_VIEWS = ("chest", "abdomen_pelvis")
WITHIN_MM = 10.0  # a found point this close to the reference is correct
REAL_CASE = "example_ct"  # the real CT of the quality figures (TotalSegmentator example)


# ----------------------------------------------------------------------------------- scoring
def evaluate_case(names, points, found, scores, truth: dict, image: sitk.Image) -> dict:
    """Per searched landmark: whether it has a reference, lies in view, was found, and its error (mm)."""
    rows = {}
    refs = [n for n in names if n in truth]
    view = dict(zip(refs, inside_scan(image, np.asarray([truth[n] for n in refs], float).reshape(-1, 3)))) if refs else {}
    for n, p, s, f in zip(names, points, scores, found):
        if n not in truth:
            rows[n] = {"reference": False, "found": bool(f), "score": float(s)}
            continue
        rows[n] = {"reference": True, "in_view": bool(view[n]), "found": bool(f), "score": float(s),
                   "error_mm": float(np.linalg.norm(np.asarray(p) - truth[n]))}
    return rows


def _landmark_figures(rows: list) -> dict:
    """One landmark's figures over its case rows (those with a reference)."""
    errs = [r["error_mm"] for r in rows if r["found"] and r["in_view"]]
    inv = [r for r in rows if r["in_view"]]
    return {"cases": len(rows), "in_view": len(inv), "median_error_mm": float(np.median(errs)) if errs else None,
            "within_10mm": sum(1 for r in inv if r["found"] and r["error_mm"] <= WITHIN_MM) / len(inv) if inv else None,
            "misses": sum(1 for r in inv if not r["found"]),
            "false_detections": sum(1 for r in rows if r["found"] and (not r["in_view"] or r["error_mm"] > WITHIN_MM))}


def summarise(cases: list, names) -> dict:
    """Per-landmark and overall figures of :func:`evaluate_case` rows of several cases."""
    per = {}
    all_err, within, in_view_total, misses, false, outside, found_outside = [], 0, 0, 0, 0, 0, 0
    for n in names:
        rows = [c[n] for c in cases if c.get(n, {}).get("reference")]
        per[n] = figures = _landmark_figures(rows)
        all_err += [r["error_mm"] for r in rows if r["found"] and r["in_view"]]
        within += sum(1 for r in rows if r["in_view"] and r["found"] and r["error_mm"] <= WITHIN_MM)
        in_view_total += figures["in_view"]
        misses += figures["misses"]
        false += figures["false_detections"]
        outside += len(rows) - figures["in_view"]
        found_outside += sum(1 for r in rows if r["found"] and not r["in_view"])
    overall = {"median_error_mm": float(np.median(all_err)) if all_err else None,
               "within_10mm": within / in_view_total if in_view_total else None, "n_within_10mm": within,
               "in_view": in_view_total, "misses": misses, "false_detections": false,
               "outside_view": outside, "found_outside_view": found_outside}
    return {"per_landmark": per, "overall": overall}


def search_json(search: SearchParams) -> dict:
    """The search parameters as recorded in detection files and metrics (without the threshold)."""
    return {k: (list(map(list, v)) if k == "refine" else v) for k, v in dataclasses.asdict(search).items()
            if k != "threshold"}


# ----------------------------------------------------------------------------------- views
def _view_bounds(t: dict) -> dict:
    """(top, bottom) LPS z (mm) of each field of view of :func:`partial_view`, from the landmarks ``t``."""
    apex = max(t["lung_apex_left"][2], t["lung_apex_right"][2])
    return {
        "chest": (apex + 20.0, (t["kidney_left_upper_pole"][2] + t["kidney_right_upper_pole"][2]) / 2),
        "abdomen_pelvis": (t["liver_dome"][2] + 15.0, t["pubic_symphysis"][2] - 40.0),
        "abdomen": (t["liver_dome"][2] + 15.0, (t["iliac_crest_top_left"][2] + t["iliac_crest_top_right"][2]) / 2 - 20.0),
        "neck_to_liver": (apex + 60.0, t["liver_dome"][2] - 20.0),
    }


def partial_view(image: sitk.Image, truth, kind: str) -> sitk.Image:
    """A torso CT cut to a clinical field of view, so part of its landmarks lie outside it:
    ``chest`` from 20 mm above the lung apices to the kidneys' upper poles, ``abdomen_pelvis``
    from 15 mm above the liver dome to 40 mm below the pubic symphysis (the two of
    :data:`PARTIAL_VIEWS`, used by calibration), ``abdomen`` from 15 mm above the liver dome to
    20 mm below the iliac crests, ``neck_to_liver`` from 60 mm above the lung apices (or the top
    of the scan) to 20 mm below the liver dome (a chest CT that stops in the upper abdomen)
    (``truth``: its :class:`lm_zoo.landmarks.Landmarks`). Whole-torso cases never test that a
    landmark outside the scan is reported as not found; these do."""
    from lm_zoo.io import continuous_index

    bounds = _view_bounds(truth.as_dict())
    if kind not in bounds:
        raise ValueError(f"partial view {kind!r}: expected one of {tuple(bounds)}")
    z_top, z_bottom = bounds[kind]
    centre = np.asarray(truth.points, float).mean(0)
    k = continuous_index(image, [[centre[0], centre[1], z] for z in (z_bottom, z_top)])[:, 2]
    k0 = max(int(np.floor(min(k))), 0)
    k1 = min(int(np.ceil(max(k))), image.GetSize()[2] - 1)
    return image[:, :, k0:k1 + 1]


def detect_cases(cases: Iterable, weights, *, model=None, search: SearchParams | None = None, partial: bool = False,
                 label: str = "case", log: Callable[[str], None] | None = None):
    """Detect on each ``(image, truth Landmarks)`` of ``cases``; yields (detections, rows, image,
    truth). With ``partial``, case i is cut to the field of view ``PARTIAL_VIEWS[i % 2]``.
    ``log`` (e.g. ``print``) gets one line per case as it finishes."""
    for i, (image, truth) in enumerate(cases):
        kind = PARTIAL_VIEWS[i % len(PARTIAL_VIEWS)] if partial else None
        if kind:
            image = partial_view(image, truth, kind)
        t0 = time.perf_counter()
        d = detect_landmarks(image, weights, model=model, search=search)
        rows = evaluate_case(d.names, d.points, d.found, d.scores, truth.as_dict(), image)
        if log is not None:
            o = summarise([rows], d.names)["overall"]
            log(f"{label} {i}{f' {kind} view' if kind else ''} {image.GetSize()}: {time.perf_counter() - t0:.1f} s, "
                f"{d.n_patches} patches, median {o['median_error_mm'] or float('nan'):.1f} mm, within 10 mm "
                f"{o['n_within_10mm']} of {o['in_view']}, misses {o['misses']}, false {o['false_detections']} "
                f"({o['found_outside_view']} of {o['outside_view']} outside the view found)")
        yield d, rows, image, truth


# ----------------------------------------------------------------------------------- calibration
def calibration_choice(table: list[dict]) -> dict:
    """The row of the calibration table to ship. Objective: (found within 10 mm) - (false
    detections). Rows within :data:`TIE_TOLERANCE` of the best are ties (the objective is flat
    over a wide threshold range and wobbles by a few instances, because the threshold also moves
    the shape gate and the vertebral order); ties go to the higher threshold (a user's scan may cut
    the body where no calibration case does, and a guess there costs more than a miss), then to
    the weaker shape prior (the one closer to the network)."""
    objective = [r["n_within_10mm"] - r["false_detections"] for r in table]
    tolerance = TIE_TOLERANCE * max(r["in_view"] for r in table)
    near = [r for r, o in zip(table, objective) if o >= max(objective) - tolerance]
    return max(near, key=lambda r: (r["threshold"], -r.get("shape_weight", 0.0)))


def calibration_table(runs: Sequence, atlas, thresholds=THRESHOLD_GRID, shape_weights=SHAPE_WEIGHT_GRID) -> list[dict]:
    """Figures of every (shape weight, threshold) on the candidates of ``runs``: (detections,
    image, truth dict) of cases detected at the lowest threshold."""
    table = []
    for w in shape_weights:
        for t in thresholds:
            cases = []
            for d, image, truth in runs:
                chosen, reasons = decide(d.names, d.candidate_points, d.candidate_scores, d.candidate_inside, t,
                                         atlas, shape_weight=w)
                # the field-of-view check of detect_landmarks: a landmark expected out of view is not found
                v = field_of_view(image, d.names, d.candidate_points, d.candidate_scores, chosen, reasons, atlas,
                                  d.view_margin_mm)
                cases.append(evaluate_case(d.names, v["points"], v["found"], v["scores"], truth, image))
            o = summarise(cases, runs[0][0].names)["overall"]
            table.append({"threshold": t, "shape_weight": w, "n_within_10mm": o["n_within_10mm"],
                          "false_detections": o["false_detections"], "misses": o["misses"], "in_view": o["in_view"],
                          "found_outside_view": o["found_outside_view"], "outside_view": o["outside_view"]})
    return table


def calibrate(weights, cases: Sequence, atlas, *, model=None, search: SearchParams | None = None, data: str = "",
              thresholds=THRESHOLD_GRID, shape_weights=SHAPE_WEIGHT_GRID, log: Callable[[str], None] | None = None) -> dict:
    """The content of a weight set's detection file: ``atlas`` (:class:`lm_zoo.detection.Atlas`
    of its training cohort) plus the threshold and shape weight calibrated on ``cases``
    (a sequence of ``(image, truth Landmarks)``, each used whole and cut to a partial view;
    iterated twice). ``data`` describes the cases in the file. Nothing is written."""
    from lm_zoo import pretrained

    ws = landmark_weight_set(weights)
    search = SearchParams() if search is None else search
    lowest = dataclasses.replace(search, threshold=thresholds[0])
    runs = []
    for partial in (False, True):
        label = f"calibration{', partial view' if partial else ''} (figures at threshold {thresholds[0]:g}) case"
        for d, _, image, truth in detect_cases(cases, weights, model=model, search=lowest, partial=partial,
                                               label=label, log=log):
            runs.append((d, image, truth.as_dict()))
    table = calibration_table(runs, atlas, thresholds, shape_weights)
    best = calibration_choice(table)
    if log is not None:
        log(_table_text(table, best))
    return {
        "about": f"lm_zoo.detection settings of {Path(ws.filename).name}; written by `lm-zoo weights calibrate` "
                 "(lm_zoo.detection.calibration; do not edit by hand)",
        "weights_sha256": ws.sha256 or pretrained.sha256_file(pretrained.local_path(ws)),
        "threshold": best["threshold"],
        "shape_weight": best["shape_weight"],
        "calibration": {
            "data": data,
            "objective": "max (found within 10 mm) - (false detections) over threshold x shape_weight; "
                         f"ties (within {TIE_TOLERANCE:.1%} of the in-view instances of the best): higher threshold, "
                         "then lower shape_weight",
            "search": search_json(search),
            "table": table,
        },
        "atlas": atlas.to_json(),
    }


def _table_text(table: list[dict], best: dict) -> str:
    lines = ["shape_weight  threshold  within10  false  misses  found outside view  (calibration cases)"]
    for r in table:
        lines.append(f"{r['shape_weight']:12.2f} {r['threshold']:10.2f} {r['n_within_10mm']:9d} {r['false_detections']:6d} "
                     f"{r['misses']:7d} {r['found_outside_view']:7d} of {r['outside_view']}"
                     + ("   <- chosen" if r is best else ""))
    return "\n".join(lines)


def write_detection_settings(weights, entry: dict) -> Path:
    """Write :func:`calibrate`'s result as the weight set's detection file (atomically); its path."""
    from lm_zoo._atomic import atomic_write_json

    path = detection_config_path(landmark_weight_set(weights))
    atomic_write_json(path, entry, sort_keys=False)
    return path


# ----------------------------------------------------------------------------------- quality
def quality(weights, cases: Sequence, *, data: str, partial_data: str, model=None, search: SearchParams | None = None,
            real=None, log: Callable[[str], None] | None = None) -> dict:
    """Quality figures of held-out ``cases`` (``(image, truth Landmarks)``, iterated twice: whole
    and cut to partial views; ``data``/``partial_data`` describe them) and, with ``real``
    (the result of :func:`evaluate_real`), a real CT: the metrics' ``detection`` entry less speed."""
    search = SearchParams() if search is None else search
    config = detection_config(landmark_weight_set(weights))
    out = {"threshold": None, "shape_weight": config.shape_weight,
           "threshold_source": config.path and Path(config.path).name,
           "calibration": config.calibration, "search": search_json(search)}
    for key, partial, about in (("phantom", False, data), ("phantom_partial", True, partial_data)):
        rows, names = [], None
        label = f"held-out phantom{', partial view' if partial else ''} case"
        for d, case_rows, _, _ in detect_cases(cases, weights, model=model, search=search, partial=partial,
                                               label=label, log=log):
            rows.append(case_rows)
            names, out["threshold"] = d.names, d.threshold
        out[key] = {"data": about, "cases": len(rows), **summarise(rows, names)}
    if real is not None:
        out["real"] = real
    return out


def evaluate_real(image: sitk.Image, reference, weights, *, data: str, model=None, search: SearchParams | None = None,
                  log: Callable[[str], None] | None = None) -> dict:
    """Figures of one real CT against its reference :class:`lm_zoo.landmarks.Landmarks` (e.g.
    from its segmentation), only over the landmarks the reference has."""
    t0 = time.perf_counter()
    d = detect_landmarks(image, weights, model=model, search=search)
    rows = evaluate_case(d.names, d.points, d.found, d.scores, reference.as_dict(), image)
    summary = summarise([rows], [n for n in d.names if n in reference.names])
    summary["found_without_reference"] = sorted(n for n, r in rows.items() if not r["reference"] and r["found"])
    summary["data"] = data
    if log is not None:
        log(f"real CT {image.GetSize()} {image.GetSpacing()}: {time.perf_counter() - t0:.1f} s")
    return summary


# ----------------------------------------------------------------------------------- speed
def measure_speed(image: sitk.Image, weights, *, model=None, search: SearchParams | None = None,
                  dense_sample: int = 2048, data: str = "", log: Callable[[str], None] | None = None) -> dict:
    """Seconds per volume of :func:`lm_zoo.detection.detect_landmarks` on ``image`` (split into
    mask+grid, extraction, inference), against a naive dense scan (a patch at every point of a
    lattice of the weights' spacing inside the body) timed on ``dense_sample`` of its points and
    extrapolated. The first detection is a warm-up (numba kernels, compiled predict)."""
    if model is None:
        from lm_zoo.applications import MiniVGG25D

        model = MiniVGG25D(weights=weights)
    spacing = patch_spacing_mm(landmark_weight_set(weights))
    load = round(os.getloadavg()[0], 1)  # other processes on the same cores slow every figure below
    detect_landmarks(image, weights, names=["vertebra_l1"], model=model, search=search)  # warm-up
    t0 = time.perf_counter()
    d = detect_landmarks(image, weights, model=model, search=search)
    wall = time.perf_counter() - t0
    n_dense, per_patch = _dense_scan_cost(image, weights, model, spacing, dense_sample)
    out = {"data": data, "seconds_per_volume": wall, "patches": d.n_patches, "timings": d.timings,
           "dense_patches": n_dense, "dense_seconds_extrapolated": per_patch * n_dense,
           "cpu_count": os.cpu_count(), "load_average_1min": load}
    if log is not None:
        t = d.timings
        log(f"{image.GetSize()} spacing {image.GetSpacing()} mm; patches at {spacing} mm; {os.cpu_count()} CPU cores, "
            f"1-minute load average {load}\ndetect_landmarks: {wall:.1f} s per volume ({d.n_patches} patches: "
            f"{t['coarse_points']} coarse + refinement) | mask+grid {t['mask_and_grid_s']:.1f} s | extraction "
            f"{t['extract_s']:.1f} s | inference {t['inference_s']:.1f} s | {int(d.found.sum())} of {len(d)} found\n"
            f"naive dense scan: {n_dense} body points at {spacing} mm x {per_patch * 1e3:.2f} ms/patch (measured on "
            f"{min(dense_sample, n_dense)}) = {per_patch * n_dense:.0f} s per volume (extrapolated)")
    return out


def _dense_scan_cost(image, weights, model, spacing: float, dense_sample: int):
    """(points of a dense scan at ``spacing`` inside the body, seconds per patch on a sample)."""
    from lm_zoo.applications import predict_batched, preprocess_input
    from lm_zoo.intensity import CT_OUTSIDE_HU
    from lm_zoo.patches import extract_25d

    coarse = body_lattice(image, 6.0, -500.0, "benchmark")
    n_dense = int(len(coarse) * (6.0 / spacing) ** 3)
    sample = coarse[np.random.default_rng(0).choice(len(coarse), min(dense_sample, len(coarse)), replace=False)]
    size = patch_size_px(landmark_weight_set(weights))
    t0 = time.perf_counter()
    for start in range(0, len(sample), 512):
        x = preprocess_input(extract_25d(image, sample[start:start + 512], size, spacing, CT_OUTSIDE_HU), weights=weights)
        predict_batched(model, x, 512)
    return n_dense, (time.perf_counter() - t0) / len(sample)


# ----------------------------------------------------------------------------------- metrics
def label_training_scan(result: dict, metrics: dict) -> dict:
    """Say in the real-CT figures when the scan was training data of the weights (their
    ``real_training`` cases), so no card presents training-scan figures as held-out ones."""
    real = result.get("real")
    cases = (metrics.get("real_training") or {}).get("cases") or []
    if not real or REAL_CASE not in cases or "TRAINING scan" in real.get("data", ""):
        return result
    note = ("; this is the TRAINING scan of this set's real-CT stage, so these are training-data figures, "
            "not held-out ones")
    if metrics.get("init_from"):
        note += f" (held out, before that stage: {metrics['init_from']}'s card)"
    return {**result, "real": {**real, "data": real["data"] + note}}


def write_detection_metrics(weights, result: dict, command: str) -> Path:
    """Write ``result`` (:func:`quality` + ``speed``) as the ``detection`` entry of the weight
    set's metrics file (atomically; the file must exist); returns its path. The card is
    regenerated from it separately."""
    from lm_zoo import pretrained
    from lm_zoo._atomic import atomic_write_json

    path = pretrained.preset_file(landmark_weight_set(weights), "metrics")
    metrics = json.loads(path.read_text(encoding="utf-8"))
    metrics["detection"] = {"command": command, **label_training_scan(result, metrics)}
    atomic_write_json(path, metrics, sort_keys=False)
    return path
