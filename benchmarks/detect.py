"""Whole-volume landmark detection (lm_zoo.detection): speed and quality.

Speed (default): one phantom torso resampled onto a 512x512x300 grid (0.8 x 0.8 x 1.5 mm, a
clinical CT size; synthetic data), detected with the weights' patch spacing; prints seconds per
volume split into mask+grid / patch extraction / inference, against a naive dense scan (one
patch at every point of a lattice of the weights' spacing inside the body), measured in the same
run on a sample of those points and extrapolated to all of them.

Quality (``--quality``): N held-out phantom cases ``generate_case(case_seed(SEED, i))`` with
SEED != 0 (the training cohort is seed 0), against the phantom's analytic landmarks; and the real
TotalSegmentator example (``--shared-data``/totalseg_example) against
``lm_zoo.landmarks.landmarks_from_segmentation`` when that is available. Per landmark: median
error of found points, fraction of in-view landmarks found within 10 mm, misses (in view, not
found) and false detections (found > 10 mm away, or found while outside the view).

    python benchmarks/detect.py [--quality --cases 10 --seed 1 --json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]


def _evaluate(detections, truth: dict, image) -> dict:
    from lm_zoo.io import continuous_index

    rows = {}
    for n, p, s, f in zip(detections.names, detections.points, detections.scores, detections.found):
        ref = truth.get(n)
        if ref is None:
            rows[n] = {"reference": False, "found": bool(f), "score": float(s)}
            continue
        idx = continuous_index(image, ref)[0]
        in_view = bool(np.all((idx >= -0.5) & (idx <= np.asarray(image.GetSize()) - 0.5)))
        rows[n] = {"reference": True, "in_view": in_view, "found": bool(f), "score": float(s),
                   "error_mm": float(np.linalg.norm(p - ref))}
    return rows


def _summarise(cases: list[dict], names) -> dict:
    per = {}
    all_err, within, in_view_total, misses, false = [], 0, 0, 0, 0
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
    overall = {"median_error_mm": float(np.median(all_err)) if all_err else None,
               "within_10mm": within / in_view_total if in_view_total else None,
               "in_view": in_view_total, "misses": misses, "false_detections": false}
    return {"per_landmark": per, "overall": overall}


def _print_table(title, summary):
    print(f"\n{title}")
    print(f"{'landmark':<30} {'n':>3} {'median mm':>9} {'<=10mm':>7} {'miss':>5} {'false':>5}")
    for n, r in summary["per_landmark"].items():
        med = f"{r['median_error_mm']:.1f}" if r["median_error_mm"] is not None else "-"
        w = f"{r['within_10mm']:.2f}" if r["within_10mm"] is not None else "-"
        print(f"{n:<30} {r['in_view']:>3} {med:>9} {w:>7} {r['misses']:>5} {r['false_detections']:>5}")
    o = summary["overall"]
    print(f"OVERALL: median error {o['median_error_mm']} mm, within 10 mm {o['within_10mm']}, "
          f"{o['in_view']} in-view landmark instances, misses {o['misses']}, false detections {o['false_detections']}")


def quality(args, model) -> dict:
    from lm_zoo.detection import detect_landmarks
    from lm_zoo.phantoms.torso_ct import case_seed, generate_case

    if args.seed == 0:
        raise SystemExit("--seed 0 is the training cohort's seed; use another one for held-out cases")
    cases, scores = [], []
    for i in range(args.cases):
        seed = case_seed(args.seed, i)
        image, truth = generate_case(seed)
        t0 = time.perf_counter()
        d = detect_landmarks(image, model=model)
        rows = _evaluate(d, truth.as_dict(), image)
        cases.append(rows)
        o = _summarise([rows], d.names)["overall"]
        print(f"phantom case {i} (seed {seed}) {image.GetSize()}: {time.perf_counter() - t0:.1f} s, {d.n_patches} patches, "
              f"median {o['median_error_mm']:.1f} mm, within 10 mm {o['within_10mm']:.2f}, misses {o['misses']}, "
              f"false {o['false_detections']}", flush=True)
    out = {"phantom": {"data": f"synthetic phantom CT, held-out seeds case_seed({args.seed}, 0..{args.cases - 1})",
                       "cases": args.cases, **_summarise(cases, d.names)}}
    _print_table(f"PHANTOM (synthetic, {args.cases} held-out cases, seed {args.seed})", out["phantom"])
    real = _real(args, model)
    if real is not None:
        out["real"] = real
    return out


def _real(args, model):
    from lm_zoo.detection import detect_landmarks

    folder = Path(args.shared_data) / "totalseg_example"
    ct, seg = folder / "example_ct.nii.gz", folder / "example_seg_fast_force_split.nii.gz"
    try:
        from lm_zoo.landmarks import landmarks_from_segmentation
    except ImportError:
        print("\nREAL: skipped (lm_zoo.landmarks.landmarks_from_segmentation not available)")
        return None
    if not (ct.exists() and seg.exists()):
        print(f"\nREAL: skipped ({ct} or {seg} absent)")
        return None
    import warnings

    image = sitk.ReadImage(str(ct))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = landmarks_from_segmentation(str(seg), image=image)
    t0 = time.perf_counter()
    d = detect_landmarks(image, model=model)
    rows = _evaluate(d, reference.as_dict(), image)
    summary = _summarise([rows], [n for n in d.names if n in reference.names])
    summary["found_without_reference"] = sorted(n for n, r in rows.items() if not r["reference"] and r["found"])
    summary["data"] = f"real CT {ct.name}, reference landmarks_from_segmentation({seg.name}); {len(reference)} reference landmarks"
    print(f"real CT {image.GetSize()} {image.GetSpacing()}: {time.perf_counter() - t0:.1f} s")
    _print_table(f"REAL (TotalSegmentator example, {len(reference)} reference landmarks)", summary)
    print("found where the segmentation gives no reference:", summary["found_without_reference"])
    return summary


def clinical_sized_case(seed: int = 12345) -> sitk.Image:
    from lm_zoo.phantoms.torso_ct import generate_case

    image, truth = generate_case(seed)
    ref = sitk.Image([512, 512, 300], sitk.sitkInt16)
    spacing = np.array([0.8, 0.8, 1.5])
    ref.SetSpacing(spacing.tolist())
    centre = truth.points.mean(0)
    ref.SetOrigin((centre - spacing * (np.array([512, 512, 300]) - 1) / 2).tolist())
    return sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkInt16)


def speed(args, model) -> dict:
    from lm_zoo.applications import preprocess_input
    from lm_zoo.detection import _body_lattice, detect_landmarks, landmark_weight_set, patch_spacing_mm
    from lm_zoo.patch_datasets import CT_OUTSIDE_HU
    from lm_zoo.patches import extract_25d

    image = clinical_sized_case()
    spacing = patch_spacing_mm(landmark_weight_set("landmark"))
    print(f"synthetic phantom CT {image.GetSize()} spacing {image.GetSpacing()} mm; patches at {spacing} mm; "
          f"{os.cpu_count()} CPU cores")
    detect_landmarks(image, names=["vertebra_l1"], model=model)  # warm-up: numba kernels, predict function
    t0 = time.perf_counter()
    d = detect_landmarks(image, model=model)
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
            "cpu_count": os.cpu_count()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", action="store_true", help="measure localisation quality instead of speed")
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1, help="held-out cohort seed (not 0, the training cohort)")
    parser.add_argument("--dense-sample", type=int, default=2048)
    parser.add_argument("--shared-data", default=os.environ.get("LM_ZOO_SHARED_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    from lm_zoo.applications import MiniVGG25D

    model = MiniVGG25D(weights="landmark")
    result = quality(args, model) if args.quality else speed(args, model)
    if args.json:
        from lm_zoo._atomic import atomic_write_json

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
