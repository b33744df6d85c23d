"""Whole-volume landmark detection (lm_zoo.detection): speed, quality, calibration, model card.

Speed (default): one phantom torso resampled onto a 512x512x300 grid (0.8 x 0.8 x 1.5 mm, a
clinical CT size; synthetic data), detected with the weights' patch spacing; prints seconds per
volume split into mask+grid / patch extraction / inference, against a naive dense scan (one
patch at every point of a lattice of the weights' spacing inside the body), measured in the same
run on a sample of those points and extrapolated to all of them.

Quality (``--quality``): N held-out phantom cases ``generate_case(case_seed(SEED, i))``
(default SEED 1, :data:`HELD_OUT_SEED`), against the phantom's analytic landmarks, whole and cut
to a chest or abdomen-pelvis field of view (:func:`partial_view`); and the real
TotalSegmentator example (``--shared-data``/totalseg_example) against
``lm_zoo.landmarks.landmarks_from_segmentation``. Per landmark: median error of found points,
fraction of in-view landmarks found within 10 mm, misses (in view, not found) and false
detections (found > 10 mm away, or found while outside the view).

Calibration (``--calibrate``): writes ``<weights stem>.detection.json`` beside the weights, which
:func:`lm_zoo.detection.detection_config` reads:

- the **atlas** of the shape prior: generalised-Procrustes mean of the landmarks of the training
  cohort (``case_seed(0, 0..59)``, :data:`TRAINING_SEED`: the cases the weights were trained on,
  so no evaluation case shapes it);
- the found/not-found **threshold** and the **shape weight** (how much the shape prior's
  predicted position ranks candidates, :func:`lm_zoo.detection.decide`): detection runs once on
  the calibration cases ``case_seed(2, i)`` (:data:`CALIBRATION_SEED`; never the training seed 0,
  never the reported held-out seed 1), then every threshold of a 0.05 grid times every weight of
  :data:`SHAPE_WEIGHT_GRID` is applied to the same candidates; the chosen pair maximises
  (landmarks found within 10 mm) - (false detections), i.e. a false detection costs as much as
  a missed correct one. Each calibration case is used whole and cut to a clinical field of view
  (:func:`partial_view`: chest or abdomen-pelvis), so a landmark outside the scan that is
  reported as found counts as a false detection: the threshold has to say "not found" for them.
  Rows within 0.5 % of the in-view instances of the best are ties (:func:`calibration_choice`);
  ties go to the higher threshold, then to the lower shape weight.

Model card (``--update-metrics METRICS``): the one command that refreshes the detection figures of
a weight set's card, e.g. after retraining::

    python benchmarks/detect.py --update-metrics pretrained/mini_vgg25d_landmark.metrics.json

recalibrates when the detection file was made for other weights (or with ``--calibrate``),
measures speed and quality (held-out phantom cases + the real CT), writes them as the
``detection`` entry of METRICS and regenerates the shipped cards
(``lm_zoo.train.regenerate_shipped_cards``). About 40 min on 2 CPU cores.

    python benchmarks/detect.py [--quality --cases 8 --seed 1 --json OUT]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
TRAINING_SEED = 0      # the landmark_ct_patches phantom cohort the weights were trained on
HELD_OUT_SEED = 1      # reported quality
CALIBRATION_SEED = 2   # threshold calibration
ATLAS_CASES = 60
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.951, 0.05))
SHAPE_WEIGHT_GRID = (0.0, 0.01, 0.02, 0.05, 0.1)  # lm_zoo.detection.decide(shape_weight=)
REFRESH_COMMAND = "python benchmarks/detect.py --update-metrics pretrained/mini_vgg25d_landmark.metrics.json"


# ----------------------------------------------------------------------------------- scoring
def _in_view(image, points) -> np.ndarray:
    from lm_zoo.io import continuous_index

    idx = continuous_index(image, np.asarray(points, float).reshape(-1, 3))
    return np.all((idx >= -0.5) & (idx <= np.asarray(image.GetSize()) - 0.5), axis=1)


def _evaluate(names, points, found, scores, truth: dict, image) -> dict:
    rows = {}
    refs = [n for n in names if n in truth]
    view = dict(zip(refs, _in_view(image, [truth[n] for n in refs]))) if refs else {}
    for n, p, s, f in zip(names, points, scores, found):
        if n not in truth:
            rows[n] = {"reference": False, "found": bool(f), "score": float(s)}
            continue
        rows[n] = {"reference": True, "in_view": bool(view[n]), "found": bool(f), "score": float(s),
                   "error_mm": float(np.linalg.norm(np.asarray(p) - truth[n]))}
    return rows


def _summarise(cases: list[dict], names) -> dict:
    per = {}
    all_err, within, in_view_total, misses, false, outside, found_outside = [], 0, 0, 0, 0, 0, 0
    for n in names:
        rows = [c[n] for c in cases if c.get(n, {}).get("reference")]
        errs = [r["error_mm"] for r in rows if r["found"] and r["in_view"]]
        inv = [r for r in rows if r["in_view"]]
        w = sum(1 for r in inv if r["found"] and r["error_mm"] <= 10)
        m = sum(1 for r in inv if not r["found"])
        fd = sum(1 for r in rows if r["found"] and (not r["in_view"] or r["error_mm"] > 10))
        per[n] = {"cases": len(rows), "in_view": len(inv), "median_error_mm": float(np.median(errs)) if errs else None,
                  "within_10mm": w / len(inv) if inv else None, "misses": m, "false_detections": fd}
        all_err += errs
        within += w
        in_view_total += len(inv)
        misses += m
        false += fd
        outside += len(rows) - len(inv)
        found_outside += sum(1 for r in rows if r["found"] and not r["in_view"])
    overall = {"median_error_mm": float(np.median(all_err)) if all_err else None,
               "within_10mm": within / in_view_total if in_view_total else None, "n_within_10mm": within,
               "in_view": in_view_total, "misses": misses, "false_detections": false,
               "outside_view": outside, "found_outside_view": found_outside}
    return {"per_landmark": per, "overall": overall}


def _print_table(title, summary):
    print(f"\n{title}")
    print(f"{'landmark':<30} {'n':>3} {'median mm':>9} {'<=10mm':>7} {'miss':>5} {'false':>5}")
    for n, r in summary["per_landmark"].items():
        med = f"{r['median_error_mm']:.1f}" if r["median_error_mm"] is not None else "-"
        w = f"{r['within_10mm']:.2f}" if r["within_10mm"] is not None else "-"
        print(f"{n:<30} {r['in_view']:>3} {med:>9} {w:>7} {r['misses']:>5} {r['false_detections']:>5}")
    o = summary["overall"]
    med = "-" if o["median_error_mm"] is None else f"{o['median_error_mm']:.1f}"
    share = "-" if o["within_10mm"] is None else f"{o['within_10mm']:.3f}"
    print(f"OVERALL: median error {med} mm, within 10 mm {share} ({o['n_within_10mm']} of {o['in_view']} in-view "
          f"landmark instances), misses {o['misses']}, false detections {o['false_detections']}")


def _search_json(search) -> dict:
    return {k: (list(map(list, v)) if k == "refine" else v) for k, v in dataclasses.asdict(search).items()
            if k != "threshold"}


# ----------------------------------------------------------------------------------- quality
PARTIAL_VIEWS = ("chest", "abdomen_pelvis")


def partial_view(image: sitk.Image, truth, kind: str) -> sitk.Image:
    """The phantom cut to a clinical field of view, so part of the 60 landmarks lie outside it:
    ``chest`` from 20 mm above the lung apices to the kidneys' upper poles, ``abdomen_pelvis``
    from 15 mm above the liver dome to 40 mm below the pubic symphysis. Whole-torso cases never
    test that a landmark outside the scan is reported as not found; these do."""
    t = truth.as_dict()
    if kind == "chest":
        z_top = max(t["lung_apex_left"][2], t["lung_apex_right"][2]) + 20.0
        z_bottom = (t["kidney_left_upper_pole"][2] + t["kidney_right_upper_pole"][2]) / 2
    elif kind == "abdomen_pelvis":
        z_top, z_bottom = t["liver_dome"][2] + 15.0, t["pubic_symphysis"][2] - 40.0
    else:
        raise ValueError(f"partial view {kind!r}: expected one of {PARTIAL_VIEWS}")
    from lm_zoo.io import continuous_index

    centre = np.asarray(truth.points, float).mean(0)
    k = continuous_index(image, [[centre[0], centre[1], z] for z in (z_bottom, z_top)])[:, 2]
    k0 = max(int(np.floor(min(k))), 0)
    k1 = min(int(np.ceil(max(k))), image.GetSize()[2] - 1)
    return image[:, :, k0:k1 + 1]


def _phantom_cases(seed: int, n: int, model, search, label: str, partial: bool = False):
    """(detections, rows, image, truth) of cases case_seed(seed, 0..n-1), printed as they finish;
    with ``partial``, case i is cut to the field of view ``PARTIAL_VIEWS[i % 2]``."""
    from lm_zoo.detection import detect_landmarks
    from lm_zoo.phantoms.torso_ct import case_seed, generate_case

    for i in range(n):
        image, truth = generate_case(case_seed(seed, i))
        kind = PARTIAL_VIEWS[i % len(PARTIAL_VIEWS)] if partial else None
        if kind:
            image = partial_view(image, truth, kind)
        t0 = time.perf_counter()
        d = detect_landmarks(image, model=model, search=search)
        rows = _evaluate(d.names, d.points, d.found, d.scores, truth.as_dict(), image)
        o = _summarise([rows], d.names)["overall"]
        view = f" {kind} view" if kind else ""
        print(f"{label} case {i} (case_seed({seed}, {i})){view} {image.GetSize()}: {time.perf_counter() - t0:.1f} s, "
              f"{d.n_patches} patches, median {o['median_error_mm'] or float('nan'):.1f} mm, within 10 mm "
              f"{o['n_within_10mm']} of {o['in_view']}, misses {o['misses']}, false {o['false_detections']} "
              f"({o['found_outside_view']} of {o['outside_view']} outside the view found)", flush=True)
        yield d, rows, image, truth


def quality(args, model, search) -> dict:
    from lm_zoo.detection import detection_config, landmark_weight_set

    if args.seed in (TRAINING_SEED, CALIBRATION_SEED):
        raise SystemExit(f"--seed {args.seed} is the {'training' if args.seed == TRAINING_SEED else 'calibration'} "
                         f"seed; use another one (default {HELD_OUT_SEED}) for held-out cases")
    config = detection_config(landmark_weight_set(args.weights))
    cases, names, threshold = [], None, None
    for d, rows, _, _ in _phantom_cases(args.seed, args.cases, model, search, "held-out phantom"):
        cases.append(rows)
        names, threshold = d.names, d.threshold
    phantom = {"data": f"synthetic phantom CT (lm_zoo.phantoms.torso_ct), held-out cases case_seed({args.seed}, "
                       f"0..{args.cases - 1}); training cohort seed {TRAINING_SEED}, calibration seed "
                       f"{CALIBRATION_SEED}", "cases": args.cases, **_summarise(cases, names)}
    _print_table(f"PHANTOM (synthetic, {args.cases} held-out cases, seed {args.seed})", phantom)
    cases = [rows for _, rows, _, _ in _phantom_cases(args.seed, args.cases, model, search,
                                                       "held-out phantom, partial view", partial=True)]
    partial = {"data": f"synthetic phantom CT, the same held-out cases cut to a clinical field of view (even cases "
                       f"{PARTIAL_VIEWS[0]}, odd cases {PARTIAL_VIEWS[1]}; benchmarks/detect.py partial_view)",
               "cases": args.cases, **_summarise(cases, names)}
    _print_table(f"PHANTOM PARTIAL VIEWS (synthetic, {args.cases} held-out cases cut to chest / abdomen-pelvis)",
                 partial)
    out = {"threshold": threshold, "shape_weight": config.shape_weight,
           "threshold_source": config.path and Path(config.path).name,
           "calibration": config.calibration, "search": _search_json(search), "phantom": phantom,
           "phantom_partial": partial}
    real = _real(args, model, search)
    if real is not None:
        out["real"] = real
    return out


def _real(args, model, search):
    from lm_zoo.detection import detect_landmarks
    from lm_zoo.landmarks import landmarks_from_segmentation

    folder = Path(args.shared_data) / "totalseg_example"
    ct, seg = folder / "example_ct.nii.gz", folder / "example_seg_fast_force_split.nii.gz"
    if not (ct.exists() and seg.exists()):
        print(f"\nREAL: skipped ({ct} or {seg} absent)")
        return None
    import warnings

    image = sitk.ReadImage(str(ct))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = landmarks_from_segmentation(str(seg), image=image)
    t0 = time.perf_counter()
    d = detect_landmarks(image, model=model, search=search)
    rows = _evaluate(d.names, d.points, d.found, d.scores, reference.as_dict(), image)
    summary = _summarise([rows], [n for n in d.names if n in reference.names])
    summary["found_without_reference"] = sorted(n for n, r in rows.items() if not r["reference"] and r["found"])
    summary["data"] = (f"real CT (TotalSegmentator example, shared/data): totalseg_example/{ct.name}, reference "
                       f"lm_zoo.landmarks.landmarks_from_segmentation(totalseg_example/{seg.name}); "
                       f"{len(reference)} reference landmarks")
    print(f"real CT {image.GetSize()} {image.GetSpacing()}: {time.perf_counter() - t0:.1f} s")
    _print_table(f"REAL (TotalSegmentator example, {len(reference)} reference landmarks)", summary)
    print("found where the segmentation gives no reference:", summary["found_without_reference"])
    return summary


# ----------------------------------------------------------------------------------- calibration
def training_atlas(n_cases: int = ATLAS_CASES, seed: int = TRAINING_SEED):
    """Atlas of the 60 phantom landmarks from the training cohort (landmark positions do not
    depend on the voxel size, so the cases are drawn at 6 mm for speed)."""
    from lm_zoo.detection import build_atlas
    from lm_zoo.phantoms.torso_ct import LM60, case_seed, generate_case

    sets = [generate_case(case_seed(seed, i), spacing_mm=6.0)[1].subset(LM60).points for i in range(n_cases)]
    return build_atlas(sets, LM60, source=f"generalised-Procrustes (similarity) mean of the landmarks of the training "
                                          f"cohort's phantom cases case_seed({seed}, 0..{n_cases - 1})")


TIE_TOLERANCE = 0.005  # objective differences under this share of the in-view instances are ties


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


def calibrate(args, model, search) -> dict:
    """Write ``<weights stem>.detection.json``: training atlas + threshold calibrated on the
    calibration seed's cases. Returns its content."""
    from lm_zoo import pretrained
    from lm_zoo._atomic import atomic_write_json
    from lm_zoo.detection import decide, detection_config_path, landmark_weight_set

    ws = landmark_weight_set(args.weights)
    path = detection_config_path(ws)
    t0 = time.perf_counter()
    atlas = training_atlas()
    print(f"atlas of {len(atlas.names)} landmarks from {ATLAS_CASES} training cases in {time.perf_counter() - t0:.0f} s")
    # Candidates do not depend on the threshold: detect once, decide at every threshold.
    runs, lowest = [], dataclasses.replace(search, threshold=THRESHOLD_GRID[0])
    for partial in (False, True):
        label = f"calibration{', partial view' if partial else ''} (figures at threshold {THRESHOLD_GRID[0]:g})"
        for d, _, image, truth in _phantom_cases(CALIBRATION_SEED, args.calibration_cases, model, lowest, label,
                                                 partial=partial):
            runs.append((d, image, truth.as_dict()))
    table = []
    for w in SHAPE_WEIGHT_GRID:
        for t in THRESHOLD_GRID:
            cases = []
            for d, image, truth in runs:
                chosen, _ = decide(d.names, d.candidate_points, d.candidate_scores, d.candidate_inside, t, atlas,
                                   shape_weight=w)
                pick = np.where(chosen >= 0, chosen, 0)
                points = d.candidate_points[np.arange(len(d.names)), pick]
                cases.append(_evaluate(d.names, points, chosen >= 0, np.zeros(len(d.names)), truth, image))
            o = _summarise(cases, runs[0][0].names)["overall"]
            table.append({"threshold": t, "shape_weight": w, "n_within_10mm": o["n_within_10mm"],
                          "false_detections": o["false_detections"], "misses": o["misses"], "in_view": o["in_view"],
                          "found_outside_view": o["found_outside_view"], "outside_view": o["outside_view"]})
    best = calibration_choice(table)
    print("shape_weight  threshold  within10  false  misses  found outside view  (calibration cases)")
    for r in table:
        print(f"{r['shape_weight']:12.2f} {r['threshold']:10.2f} {r['n_within_10mm']:9d} {r['false_detections']:6d} "
              f"{r['misses']:7d} {r['found_outside_view']:7d} of {r['outside_view']}" + ("   <- chosen" if r is best else ""))
    entry = {
        "about": f"lm_zoo.detection settings of {Path(ws.filename).name}; written by benchmarks/detect.py --calibrate "
                 "(do not edit by hand)",
        "weights_sha256": ws.sha256 or pretrained.sha256_file(pretrained.local_path(ws)),
        "threshold": best["threshold"],
        "shape_weight": best["shape_weight"],
        "calibration": {
            "data": f"synthetic phantom CT, calibration cases case_seed({CALIBRATION_SEED}, "
                    f"0..{args.calibration_cases - 1}) (not the training seed {TRAINING_SEED}, not the held-out "
                    f"seed {HELD_OUT_SEED}), each whole and cut to a chest or abdomen-pelvis field of view",
            "objective": "max (found within 10 mm) - (false detections) over threshold x shape_weight; "
                         f"ties (within {TIE_TOLERANCE:.1%} of the in-view instances of the best): higher threshold, "
                         "then lower shape_weight",
            "search": _search_json(search),
            "table": table,
        },
        "atlas": atlas.to_json(),
    }
    atomic_write_json(path, entry, sort_keys=False)
    print(f"wrote {path} (threshold {best['threshold']:g}, shape_weight {best['shape_weight']:g})")
    return entry


# ----------------------------------------------------------------------------------- speed
def clinical_sized_case(seed: int = 12345) -> sitk.Image:
    from lm_zoo.phantoms.torso_ct import generate_case

    image, truth = generate_case(seed)
    ref = sitk.Image([512, 512, 300], sitk.sitkInt16)
    spacing = np.array([0.8, 0.8, 1.5])
    ref.SetSpacing(spacing.tolist())
    centre = truth.points.mean(0)
    ref.SetOrigin((centre - spacing * (np.array([512, 512, 300]) - 1) / 2).tolist())
    return sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkInt16)


def speed(args, model, search) -> dict:
    from lm_zoo.applications import preprocess_input
    from lm_zoo.detection import _body_lattice, detect_landmarks, landmark_weight_set, patch_spacing_mm
    from lm_zoo.patch_datasets import CT_OUTSIDE_HU
    from lm_zoo.patches import extract_25d

    image = clinical_sized_case()
    spacing = patch_spacing_mm(landmark_weight_set(args.weights))
    load = round(os.getloadavg()[0], 1)  # other processes on the same cores slow every figure below
    print(f"synthetic phantom CT {image.GetSize()} spacing {image.GetSpacing()} mm; patches at {spacing} mm; "
          f"{os.cpu_count()} CPU cores, 1-minute load average {load}")
    detect_landmarks(image, names=["vertebra_l1"], model=model, search=search)  # warm-up: numba kernels, predict
    t0 = time.perf_counter()
    d = detect_landmarks(image, model=model, search=search)
    wall = time.perf_counter() - t0
    t = d.timings
    print(f"detect_landmarks: {wall:.1f} s per volume ({d.n_patches} patches: {t['coarse_points']} coarse + refinement) "
          f"| mask+grid {t['mask_and_grid_s']:.1f} s | extraction {t['extract_s']:.1f} s | inference {t['inference_s']:.1f} s "
          f"| {int(d.found.sum())} of {len(d)} found")
    # naive dense scan: every lattice point at the weights' spacing inside the body
    coarse = _body_lattice(image, 6.0, -500.0, "benchmark")
    n_dense = int(len(coarse) * (6.0 / spacing) ** 3)
    sample = coarse[np.random.default_rng(0).choice(len(coarse), min(args.dense_sample, len(coarse)), replace=False)]
    t0 = time.perf_counter()
    for start in range(0, len(sample), 512):
        x = preprocess_input(extract_25d(image, sample[start:start + 512], 32, spacing, CT_OUTSIDE_HU))
        model.predict_on_batch(x)
    per_patch = (time.perf_counter() - t0) / len(sample)
    dense_s = per_patch * n_dense
    print(f"naive dense scan: {n_dense} body points at {spacing} mm x {per_patch * 1e3:.2f} ms/patch "
          f"(measured on {len(sample)}) = {dense_s:.0f} s per volume (extrapolated)")
    print(f"speed-up of the coarse-to-fine search: {dense_s / wall:.0f}x; goal <= 60 s per volume: "
          f"{'met' if wall <= 60 else 'NOT met'}")
    return {"data": "synthetic phantom resampled to 512x512x300 at 0.8x0.8x1.5 mm", "seconds_per_volume": wall,
            "patches": d.n_patches, "timings": t, "dense_patches": n_dense, "dense_seconds_extrapolated": dense_s,
            "cpu_count": os.cpu_count(), "load_average_1min": load}


# ----------------------------------------------------------------------------------- card
REAL_CASE = "example_ct"


def _label_training_scan(result: dict, metrics: dict) -> dict:
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


def update_metrics(path, result: dict, command: str) -> None:
    """Write ``result`` (quality + speed) as the ``detection`` entry of a metrics.json and
    regenerate the shipped cards from it."""
    from lm_zoo._atomic import atomic_write_json
    from lm_zoo.train import regenerate_shipped_cards

    path = Path(path)
    metrics = json.loads(path.read_text(encoding="utf-8"))
    result = _label_training_scan(result, metrics)
    metrics["detection"] = {"command": command, **result}
    atomic_write_json(path, metrics, sort_keys=False)
    print(f"wrote the detection entry of {path}")
    for written in regenerate_shipped_cards(path.parent):
        print(f"regenerated {written}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", action="store_true", help="measure localisation quality instead of speed")
    parser.add_argument("--calibrate", action="store_true",
                        help="rebuild the weights' detection file (atlas, threshold, shape weight) before measuring")
    parser.add_argument("--update-metrics", metavar="METRICS",
                        help="measure speed and quality and write them as the 'detection' entry of this metrics.json, "
                             "then regenerate the shipped cards (recalibrates first when the detection file is stale)")
    parser.add_argument("--weights", default="landmark")
    parser.add_argument("--cases", type=int, default=8, help="held-out phantom cases")
    parser.add_argument("--calibration-cases", type=int, default=8)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="held-out cohort seed")
    parser.add_argument("--dense-sample", type=int, default=2048)
    parser.add_argument("--shared-data", default=os.environ.get("LM_ZOO_SHARED_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.update_metrics and not Path(args.update_metrics).is_file():
        parser.error(f"--update-metrics {args.update_metrics}: no such metrics.json")
    from lm_zoo.applications import MiniVGG25D
    from lm_zoo.detection import SearchParams, detection_config, landmark_weight_set

    model = MiniVGG25D(weights=args.weights)
    search = SearchParams()
    config = detection_config(landmark_weight_set(args.weights))
    stale = config.path is None or config.weights_sha256 != landmark_weight_set(args.weights).sha256
    if args.calibrate or (args.update_metrics and stale):
        calibrate(args, model, search)
    if args.update_metrics:
        result = quality(args, model, search)
        result["speed"] = speed(args, model, search)
        command = "python benchmarks/detect.py " + " ".join(sys.argv[1:] if argv is None else argv)
        update_metrics(args.update_metrics, result, command)
    else:
        result = quality(args, model, search) if args.quality else speed(args, model, search)
    if args.json:
        from lm_zoo._atomic import atomic_write_json

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
