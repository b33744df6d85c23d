"""Sim-to-real: what a landmark weight set recognises on real CT, next to its phantom test top-1.

Real data: the TotalSegmentator example CT in ``shared/data/totalseg_example`` (3 mm isotropic,
abdomen/pelvis and lower thorax) with its TotalSegmentator ``total`` label map. Landmarks are
derived from the segmentation by :func:`lm_zoo.landmarks.landmarks_from_segmentation` (the same
anatomical definitions as the phantom's table), so nobody placed them by looking at the model.
Each landmark the weights know gets one unaugmented 2.5D patch (``lm_zoo.patches.extract_25d``
at the dataset's 32 px x 1.5 mm, the weights' ``preprocess_input``), plus ``--negatives`` body
points >= 20 mm from every derived landmark (``lm_zoo.landmarks.sample_negatives``) that should
come out ``non_landmark``. Printed: one line per landmark (truth, top-1, rank of the truth),
real-CT top-1 / top-5, non-landmark recall, and the weight set's phantom test top-1 from its
metrics file, side by side.

    python benchmarks/sim_to_real.py [--weights landmark|PATH.weights.h5] [--case example_ct|dicom]
                                     [--json OUT.json] [--negatives 40] [--seed 0]

``--case dicom`` is the held-out pair (the 20-slice DICOM series and ``example_seg_dicom.nii.gz``,
whose grid differs: the segmentation is resampled onto the CT in physical space, nearest
neighbour). Project policy: develop on ``example_ct``; ``dicom`` is the final check.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_SHARED = Path(os.environ.get("LM_ZOO_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
CASES = {
    "example_ct": ("totalseg_example/example_ct.nii.gz", "totalseg_example/example_seg_fast_force_split.nii.gz"),
    "dicom": ("totalseg_example/dicom", "totalseg_example/example_seg_dicom.nii.gz"),
}
PATCH_SIZE, PATCH_SPACING_MM, NEGATIVE_MIN_DISTANCE_MM = 32, 1.5, 20.0


def phantom_metrics(weights: str) -> dict:
    """The weight set's own test metrics (metrics file beside the weights), {} when none."""
    from lm_zoo import pretrained

    if weights in pretrained.WEIGHT_SETS:
        path = pretrained.local_path(pretrained.WEIGHT_SETS[weights])
    else:
        path = Path(weights)
    stem = path.name[: -len(".weights.h5")] if path.name.endswith(".weights.h5") else path.stem
    for candidate in (path.with_name(stem + ".metrics.json"), path.with_name("metrics.json")):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    return {}


def load_case(shared: Path, case: str):
    """(CT image, segmentation on the CT grid, description)."""
    import SimpleITK as sitk

    from lm_zoo.io import read_image

    ct_rel, seg_rel = CASES[case]
    ct_path, seg_path = shared / ct_rel, shared / seg_rel
    for p in (ct_path, seg_path):
        if not p.exists():
            raise FileNotFoundError(f"sim_to_real: {p} is absent (set LM_ZOO_SHARED_DATA or --shared-data)")
    ct = read_image(ct_path)
    seg = sitk.ReadImage(str(seg_path))
    resampled = False
    if (seg.GetSize() != ct.GetSize() or not np.allclose(seg.GetOrigin(), ct.GetOrigin(), atol=1e-3)
            or not np.allclose(seg.GetDirection(), ct.GetDirection(), atol=1e-3)
            or not np.allclose(seg.GetSpacing(), ct.GetSpacing(), atol=1e-3)):
        seg = sitk.Resample(seg, ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0, seg.GetPixelID())
        resampled = True
    text = f"{ct_rel} + {seg_rel}" + (" (segmentation resampled onto the CT grid, nearest neighbour)" if resampled else "")
    return ct, seg, text


def run(weights: str = "landmark", case: str = "example_ct", shared: Path = DEFAULT_SHARED,
        negatives: int = 40, seed: int = 0) -> dict:
    from lm_zoo import MiniVGG25D, preprocess_input
    from lm_zoo.landmarks import landmarks_from_segmentation, sample_negatives
    from lm_zoo.patch_datasets import CT_OUTSIDE_HU
    from lm_zoo.patches import extract_25d
    from lm_zoo.pretrained import describe_weights

    t0 = time.perf_counter()
    ct, seg, data_text = load_case(Path(shared), case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        derived = landmarks_from_segmentation(seg, image=ct)
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
    ws = describe_weights(weights)
    classes = list(ws.class_names)
    known = [n for n in derived.names if n in classes]
    lm = derived.subset(known)
    neg = sample_negatives(ct, derived.points, negatives, NEGATIVE_MIN_DISTANCE_MM, seed=seed, body_threshold=-500.0)
    points = np.concatenate([lm.points, neg])
    truth = known + ["non_landmark"] * len(neg)
    patches = extract_25d(ct, points, PATCH_SIZE, PATCH_SPACING_MM, CT_OUTSIDE_HU)
    model = MiniVGG25D(weights=weights)
    scores = np.asarray(model.predict(preprocess_input(patches, weights=weights), verbose=0))
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.array([int(np.flatnonzero(order[i] == classes.index(t))[0]) + 1 for i, t in enumerate(truth)])
    rows = [{"landmark": t, "top1": classes[order[i, 0]], "top1_score": float(scores[i, order[i, 0]]),
             "rank_of_truth": int(rank[i]), "point_lps_mm": [round(float(v), 2) for v in points[i]]}
            for i, t in enumerate(truth[: len(known)])]
    is_lm = np.arange(len(truth)) < len(known)
    metrics = phantom_metrics(weights)
    result = {
        "weights": str(weights),
        "case": case,
        "data": f"real CT (TotalSegmentator example, shared/data): {data_text}; landmarks derived from the "
                "TotalSegmentator segmentation by lm_zoo.landmarks.landmarks_from_segmentation",
        "n_landmarks": int(is_lm.sum()),
        "n_non_landmark": int((~is_lm).sum()),
        "real_top1": float(np.mean(rank[is_lm] == 1)) if is_lm.any() else None,
        "real_top5": float(np.mean(rank[is_lm] <= 5)) if is_lm.any() else None,
        "non_landmark_recall": float(np.mean(rank[~is_lm] == 1)) if (~is_lm).any() else None,
        "phantom_test_top1": metrics.get("test_top1"),
        "phantom_data": metrics.get("data"),
        "landmarks_not_derived": [n for n in classes if n != "non_landmark" and n not in derived.names],
        "derivation_warnings": skipped,
        "per_landmark": rows,
        "patch": {"size": PATCH_SIZE, "spacing_mm": PATCH_SPACING_MM, "negative_min_distance_mm": NEGATIVE_MIN_DISTANCE_MM,
                  "seed": seed},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return result


def report(result: dict) -> str:
    lines = [f"sim-to-real, weights {result['weights']!r}, case {result['case']}",
             f"data: {result['data']}", "",
             f"{'landmark':32s} {'top-1 prediction':32s} {'score':>6s} {'rank':>5s}"]
    for r in result["per_landmark"]:
        mark = "ok" if r["rank_of_truth"] == 1 else ""
        lines.append(f"{r['landmark']:32s} {r['top1']:32s} {r['top1_score']:6.3f} {r['rank_of_truth']:5d} {mark}")

    def f(v):
        return "n/a" if v is None else f"{v:.3f}"

    lines += ["",
              f"real CT   top-1 {f(result['real_top1'])}  top-5 {f(result['real_top5'])}  ({result['n_landmarks']} landmarks)"
              f"   non-landmark recall {f(result['non_landmark_recall'])} ({result['n_non_landmark']} points)",
              f"phantom   test top-1 {f(result['phantom_test_top1'])}  ({result['phantom_data'] or 'no metrics file beside the weights'})",
              f"not derivable on this scan: {len(result['landmarks_not_derived'])} landmarks",
              f"time {result['seconds']} s"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="landmark", help="registered weight set name or a .weights.h5 path")
    parser.add_argument("--case", choices=sorted(CASES), default="example_ct")
    parser.add_argument("--shared-data", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--negatives", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here (JSON)")
    args = parser.parse_args(argv)
    result = run(args.weights, args.case, args.shared_data, args.negatives, args.seed)
    print(report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(f".{args.json.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
