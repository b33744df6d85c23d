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
                                     [--json OUT.json] [--montage OUT.png]
                                     [--negatives 40] [--seed 0]

``--case lung1|lung2|thorax10``: real chest CTs without segmentation (``shared/data/real_ct``, other
scanners and patients), never used in training: non-landmark recall only.

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
    # Real chest CTs without segmentation (other scanners and patients): only non-landmark recall,
    # at random body points. A point that happens to lie within a few mm of a landmark is rare
    # (60 points in a torso of ~15 l), so this counts a handful of false alarms at most too many.
    "lung1": ("real_ct/lung1_image.nrrd", None),
    "lung2": ("real_ct/lung2_image.nrrd", None),
    "thorax10": ("real_ct/thorax10_dicom", None),
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
    ct_path, seg_path = shared / ct_rel, (shared / seg_rel if seg_rel else None)
    for p in (ct_path, seg_path):
        if p is not None and not p.exists():
            raise FileNotFoundError(f"sim_to_real: {p} is absent (set LM_ZOO_SHARED_DATA or --shared-data)")
    ct = read_image(ct_path)
    if seg_path is None:
        return ct, None, f"{ct_rel} (no segmentation: non-landmark points only)"
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
        negatives: int = 40, seed: int = 0, only=None) -> dict:
    """``only``: judge just these derived landmarks (e.g. the ones held out of a training run)."""
    from lm_zoo import MiniVGG25D, preprocess_input
    from lm_zoo.landmarks import landmarks_from_segmentation, sample_negatives
    from lm_zoo.patch_datasets import CT_OUTSIDE_HU
    from lm_zoo.patches import extract_25d
    from lm_zoo.pretrained import describe_weights

    t0 = time.perf_counter()
    ct, seg, data_text = load_case(Path(shared), case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if seg is None:
            from lm_zoo.landmarks import Landmarks

            derived = Landmarks([], np.empty((0, 3)))
        else:
            derived = landmarks_from_segmentation(seg, image=ct)
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
    ws = describe_weights(weights)
    classes = list(ws.class_names)
    known = [n for n in derived.names if n in classes and (only is None or n in set(only))]
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
        "data": (f"real CT (TotalSegmentator example, shared/data): {data_text}; landmarks derived from the "
                 "TotalSegmentator segmentation by lm_zoo.landmarks.landmarks_from_segmentation") if seg is not None
        else f"real CT (shared/data, no annotation): {data_text}",
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


def save_montage(result: dict, shared: Path, path: Path, phantom_seed: int = 10_000) -> Path:
    """PNG: per judged landmark, the real patch's three planes next to the same landmark's patch in
    a phantom case no training split holds (seed ``phantom_seed``), CT window level 50 / width 1000."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lm_zoo._atomic import atomic_path
    from lm_zoo.patch_datasets import CT_OUTSIDE_HU
    from lm_zoo.patches import extract_25d
    from lm_zoo.phantoms import torso_ct

    rows = result["per_landmark"]
    if not rows:
        raise ValueError(f"sim_to_real: no landmark on case {result['case']} to show in a montage")
    ct, _, _ = load_case(Path(shared), result["case"])
    real = extract_25d(ct, np.array([r["point_lps_mm"] for r in rows]), PATCH_SIZE, PATCH_SPACING_MM, CT_OUTSIDE_HU)
    image, landmarks = torso_ct.generate_case(phantom_seed)
    where = landmarks.as_dict()
    phantom = extract_25d(image, np.array([where[r["landmark"]] for r in rows]), PATCH_SIZE, PATCH_SPACING_MM, CT_OUTSIDE_HU)
    fig, axes = plt.subplots(len(rows), 6, figsize=(7.5, 1.3 * len(rows)), squeeze=False)
    for i, r in enumerate(rows):
        for c in range(3):
            axes[i, c].imshow(real[i, :, :, c], cmap="gray", vmin=-450, vmax=550)
            axes[i, 3 + c].imshow(phantom[i, :, :, c], cmap="gray", vmin=-450, vmax=550)
        axes[i, 0].set_ylabel(f"{r['landmark']}\nrank {r['rank_of_truth']}", fontsize=6)
    for a in axes.ravel():
        a.set_xticks([])
        a.set_yticks([])
    axes[0, 1].set_title(f"real: {result['case']} (axial, coronal, sagittal)", fontsize=7)
    axes[0, 4].set_title(f"phantom seed {phantom_seed} (held out)", fontsize=7)
    fig.suptitle(f"weights {result['weights']}: rank of the true class on the real patch", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


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
    parser.add_argument("--montage", type=Path, help="write a PNG of the real patches next to phantom ones here")
    args = parser.parse_args(argv)
    result = run(args.weights, args.case, args.shared_data, args.negatives, args.seed)
    print(report(result))
    if args.montage:
        print(f"montage: {save_montage(result, args.shared_data, args.montage)}")
    if args.json:
        from lm_zoo._atomic import atomic_write_json

        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
