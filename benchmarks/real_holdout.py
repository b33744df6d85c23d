"""Real-CT adaptation, judged on landmarks it never saw: a 2-fold hold-out over anatomical groups.

The shipped ``landmark`` weights are the phantom-trained weights (``landmark_phantom``) adapted in a
second stage to real patches (``lm-zoo train landmark --real-dataset landmark_ct_patches/manual_adapt``)
of the one real CT with a segmentation in ``shared/data``: the TotalSegmentator example
``example_ct``, its landmarks derived by ``lm_zoo.landmarks.landmarks_from_segmentation``. Figures
of the shipped weights on that scan are therefore training-data figures. This benchmark measures
what the second stage does for landmarks whose real patches it never saw:

- the derived landmarks are cut into two folds by anatomical group, whole groups and left/right
  pairs together (``lm_zoo.training.holdout.anatomical_folds``; fold A: lumbar vertebrae, sacral promontory, iliac crests, ASIS, femoral heads;
  fold B: kidneys, rib 12 tips, liver tip, aortic bifurcation), so a held-out landmark's mirror
  twin or neighbouring vertebra is never in training either;
- for each fold the second stage runs on the other fold's landmarks only (written as a landmark
  file, so negatives keep 20 mm only from those), from the same initial weights and recipe;
- each landmark is then classified by the model that never saw it (``benchmarks/sim_to_real.py``),
  and non-landmark recall is measured on real chest CTs never used anywhere in training
  (``real_ct/lung1``, ``lung2``, ``thorax10``).

    python benchmarks/real_holdout.py --data-dir DATA_DIR [--init-from landmark_phantom] [--json OUT.json]
    python benchmarks/real_holdout.py --cohort-only DIR   # lay out the shipped stage's manual_dir

It trains twice (about 4 min each on 2 CPU cores, after the phantom dataset is prepared) and
prints the held-out figures next to the initial weights' on the same landmarks.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sim_to_real  # noqa: E402  (the real-CT classification benchmark beside this file)

CASE_ID = "example_ct"
NEGATIVE_ONLY_CASES = ("lung1", "lung2", "thorax10")


def derived_landmarks(shared: Path):
    from lm_zoo.training.real_ct import derive_landmarks

    ct, seg, _ = sim_to_real.load_case(shared, CASE_ID)
    return derive_landmarks(ct, seg)[0]  # the FOV cut-offs are listed by sim_to_real


def layout_cohort(dest: Path, shared: Path, only=None) -> Path:
    """``dest`` as a manual_dir of the landmark builder: the example CT (linked) with its
    segmentation, or, with ``only``, a landmark file of just those derived landmarks."""
    from lm_zoo.training.holdout import layout_cohort as layout

    ct_rel, seg_rel = sim_to_real.CASES[CASE_ID]
    landmarks = None if only is None else derived_landmarks(shared).subset(list(only))
    return layout(dest, CASE_ID, shared / ct_rel, shared / seg_rel, landmarks)


def run(data_dir, init_from="landmark_phantom", shared: Path = sim_to_real.DEFAULT_SHARED, epochs=None,
        work=None) -> dict:
    from lm_zoo import pretrained, training
    from lm_zoo.training.holdout import anatomical_folds, pooled

    t0 = time.perf_counter()
    shared = Path(shared)
    init_path = str(init_from)  # a registered name or a .weights.h5 (with its sidecar: classes, hash)
    names = [n for n in derived_landmarks(shared).names if n in pretrained.describe_weights(init_path).class_names]
    split = anatomical_folds(names)
    work = Path(work or tempfile.mkdtemp(prefix="lm_zoo_real_holdout_"))
    held, before, negatives, negatives_before = [], [], [], []
    for fold, held_out in split.items():
        seen = [n for n in names if n not in held_out]
        cohort = layout_cohort(work / f"cohort_{fold}", shared, only=seen)
        out = work / f"run_{fold}"
        training.train_landmark(out, recipe=training.LANDMARK_REAL_RECIPE, epochs=epochs, init_from=init_path,
                                data_dir=data_dir, real_dataset="landmark_ct_patches/manual_adapt",
                                real_manual_dir=cohort, real_data_dir=work / f"tfds_{fold}", verbose=0,
                                command=f"benchmarks/real_holdout.py fold {fold} (real patches of {len(seen)} landmarks)")
        weights = str(out / "mini_vgg25d_landmark.weights.h5")
        for w, rows, negs in ((weights, held, negatives), (init_path, before, negatives_before)):
            r = sim_to_real.run(w, CASE_ID, shared, only=held_out)
            rows += [dict(row, fold=fold) for row in r["per_landmark"]]
            for case in NEGATIVE_ONLY_CASES:
                rn = sim_to_real.run(w, case, shared)
                negs.append((rn["non_landmark_recall"], rn["n_non_landmark"]))
    data = ("real CT: landmarks of totalseg_example/example_ct derived from its TotalSegmentator segmentation, each "
            "classified by the fold model that never saw its real patches (2 folds by anatomical group); "
            f"non-landmark points: random body points of {', '.join('real_ct/' + c for c in NEGATIVE_ONLY_CASES)} "
            "(never in training)")
    return {
        "title": "held-out landmarks of the training scan (2-fold over anatomical groups, benchmarks/real_holdout.py)",
        "case": CASE_ID, "data": data, "folds": split, "init_from": str(init_from),
        **pooled(held, negatives),
        "initial_weights": {"weights": str(init_from), **pooled(before, negatives_before)},
        "seconds": round(time.perf_counter() - t0, 1),
    }


def report(result: dict) -> str:
    b = result["initial_weights"]
    by_name = {r["landmark"]: r for r in b["per_landmark"]}
    lines = [result["title"], f"data: {result['data']}", "",
             f"{'landmark':28s} {'fold':>4s} {'rank before':>11s} {'rank after':>10s}  top-1 after"]
    for r in result["per_landmark"]:
        lines.append(f"{r['landmark']:28s} {r['fold']:>4s} {by_name[r['landmark']]['rank_of_truth']:11d} "
                     f"{r['rank_of_truth']:10d}  {r['top1']}")
    lines += ["",
              f"held out, after adaptation: top-1 {result['real_top1']:.3f}  top-5 {result['real_top5']:.3f}  "
              f"({result['n_landmarks']} landmarks); non-landmark recall {result['non_landmark_recall']:.3f} "
              f"({result['n_non_landmark']} points x 2 fold models)",
              f"initial weights ({b['weights']}): top-1 {b['real_top1']:.3f}  top-5 {b['real_top5']:.3f}; "
              f"non-landmark recall {b['non_landmark_recall']:.3f}",
              f"time {result['seconds']} s"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="TFDS data_dir (landmark_ct_patches/phantom_lm60 is built there if absent)")
    parser.add_argument("--init-from", default="landmark_phantom", help="weight set name or .weights.h5 of stage 1")
    parser.add_argument("--shared-data", type=Path, default=sim_to_real.DEFAULT_SHARED)
    parser.add_argument("--epochs", type=int, default=None, help="override the second stage's epoch count")
    parser.add_argument("--work", type=Path, default=None, help="folder for the fold cohorts and runs (default: a temp folder)")
    parser.add_argument("--json", type=Path, help="write the result here (JSON; a metrics.json real_ct entry)")
    parser.add_argument("--cohort-only", type=Path, metavar="DIR",
                        help="only lay out DIR as the manual_dir of the shipped second stage (CT + segmentation) and exit")
    args = parser.parse_args(argv)
    if args.cohort_only:
        print(layout_cohort(args.cohort_only, args.shared_data))
        return 0
    result = run(args.data_dir, args.init_from, args.shared_data, args.epochs, args.work)
    print(report(result))
    if args.json:
        from lm_zoo._atomic import atomic_write_json

        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
