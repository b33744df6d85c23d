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
metrics file, side by side. The figures are :func:`lm_zoo.training.real_ct.real_ct_accuracy`'s.

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
import os
import sys
import time
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


def load_case(shared: Path, case: str):
    """(CT image, segmentation on the CT grid or None, description) of a case of ``shared``."""
    from lm_zoo.training.real_ct import read_ct_and_segmentation

    ct_rel, seg_rel = CASES[case]
    ct_path, seg_path = shared / ct_rel, (shared / seg_rel if seg_rel else None)
    for p in (ct_path, seg_path):
        if p is not None and not p.exists():
            raise FileNotFoundError(f"sim_to_real: {p} is absent (set LM_ZOO_SHARED_DATA or --shared-data)")
    ct, seg, resampled = read_ct_and_segmentation(ct_path, seg_path)
    if seg is None:
        return ct, None, f"{ct_rel} (no segmentation: non-landmark points only)"
    text = f"{ct_rel} + {seg_rel}" + (" (segmentation resampled onto the CT grid, nearest neighbour)" if resampled else "")
    return ct, seg, text


def run(weights: str = "landmark", case: str = "example_ct", shared: Path = DEFAULT_SHARED,
        negatives: int = 40, seed: int = 0, only=None) -> dict:
    """``only``: judge just these derived landmarks (e.g. the ones held out of a training run)."""
    from lm_zoo.training.real_ct import derive_landmarks, real_ct_accuracy, run_metrics

    t0 = time.perf_counter()
    ct, seg, data_text = load_case(Path(shared), case)
    derived, skipped = derive_landmarks(ct, seg)
    figures = real_ct_accuracy(weights, ct, derived, negatives, seed, only)
    metrics = run_metrics(weights)
    return {
        "weights": str(weights),
        "case": case,
        "data": (f"real CT (TotalSegmentator example, shared/data): {data_text}; landmarks derived from the "
                 "TotalSegmentator segmentation by lm_zoo.landmarks.landmarks_from_segmentation") if seg is not None
        else f"real CT (shared/data, no annotation): {data_text}",
        **{k: figures[k] for k in ("n_landmarks", "n_non_landmark", "real_top1", "real_top5", "non_landmark_recall")},
        "phantom_test_top1": metrics.get("test_top1"),
        "phantom_data": metrics.get("data"),
        "landmarks_not_derived": figures["landmarks_not_derived"],
        "derivation_warnings": skipped,
        "per_landmark": figures["per_landmark"],
        "patch": figures["patch"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def save_montage(result: dict, shared: Path, path: Path, phantom_seed: int = 10_000) -> Path:
    """PNG: per judged landmark, the real patch's three planes next to the same landmark's patch in
    a phantom case no training split holds (seed ``phantom_seed``), CT window level 50 / width 1000."""
    from lm_zoo.figures import new_figure, save_png
    from lm_zoo.intensity import CT_OUTSIDE_HU
    from lm_zoo.patches import extract_25d
    from lm_zoo.phantoms import torso_ct

    rows = result["per_landmark"]
    if not rows:
        raise ValueError(f"sim_to_real: no landmark on case {result['case']} to show in a montage")
    ct, _, _ = load_case(Path(shared), result["case"])
    size, spacing = result["patch"]["size"], result["patch"]["spacing_mm"]  # the judged weights' geometry
    real = extract_25d(ct, np.array([r["point_lps_mm"] for r in rows]), size, spacing, CT_OUTSIDE_HU)
    image, landmarks = torso_ct.generate_case(phantom_seed)
    where = landmarks.as_dict()
    phantom = extract_25d(image, np.array([where[r["landmark"]] for r in rows]), size, spacing, CT_OUTSIDE_HU)
    fig, axes = new_figure(len(rows), 6, figsize=(7.5, 1.3 * len(rows)), squeeze=False)
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
    return save_png(fig, path, dpi=110)


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
