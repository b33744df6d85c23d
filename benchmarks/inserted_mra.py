"""The transfer comparison on aneurysms inserted into the one real TOF-MRA sample (chris_MRA).

    python benchmarks/inserted_mra.py layout --cases 30 --out runs/chris_healthy
    lm-zoo evaluate --dataset mra_aneurysm_patches/inserted --manual-dir runs/chris_healthy \\
        --data-dir runs/tfds_inserted --out runs/eval_inserted
    python benchmarks/inserted_mra.py overlap --data-dir runs/tfds_inserted [--montage runs/inserted_patches.png]

``layout`` writes a healthy cohort folder for the ``inserted`` config from ONE volume
(default ``$LM_ZOO_SHARED_DATA/mra/chris_MRA.nii.gz``, ../shared/data; CC BY-NC 4.0, so it is
linked, never copied into the repository): ``images/chris_MRA_000.nii.gz`` ... as symbolic links to
the source (``--copy`` copies instead), ``cases.txt`` and ``SOURCE.txt``. The builder seeds
everything per case id (which cases get aneurysms, where, their shape and noise, and the candidate
sampling), so the cases are distinct insertions into the same subject, and its split is by case id:
all patches of one inserted case are in one split.

What that split cannot separate: every case is the same head. The normal-vessel patches of the
test cases are the same arteries as those of the training cases (the candidate grid shifts with the
case seed, but bifurcations, origins and ends are the same points), and inserted aneurysms may sit
at sites used in training cases. ``overlap`` measures how much: the share of test normal-vessel
points within 1 mm of a training normal-vessel point, and each test aneurysm centre's distance to
the nearest training aneurysm centre. So the example tells "this subject's vessels vs lesions
inserted into them", not generalisation to other heads. ``--montage`` writes a PNG of the built
dataset's test patches (inserted aneurysms, then normal vessel); it is derived from CC BY-NC data:
keep it out of the repository.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path(os.environ.get("LM_ZOO_SHARED_DATA", HERE.parent.parent / "shared" / "data")) / "mra" / "chris_MRA.nii.gz"
NEAR_MM = 1.0


def layout(out_dir, n_cases: int, source=DEFAULT_SOURCE, *, copy: bool = False) -> list[str]:
    """``lm_zoo.cohorts.write_repeated_cohort``: ``n_cases`` case ids that all hold ``source``."""
    from lm_zoo.cohorts import write_repeated_cohort

    return write_repeated_cohort(out_dir, n_cases, source, copy=copy)


def overlap(data_dir, dataset: str = "mra_aneurysm_patches/inserted", montage=None) -> dict:
    """How much the test split of a built one-subject ``inserted`` dataset repeats its train split
    (``lm_zoo.tfds_loader.split_overlap``), with a montage of its test patches when asked."""
    from lm_zoo import tfds_loader

    builder = tfds_loader.get_builder(dataset, data_dir=data_dir)
    if not builder.is_prepared():
        raise tfds_loader.DatasetError(f"{dataset} is not built in {data_dir}: run lm-zoo evaluate first")
    res = tfds_loader.split_overlap(builder, NEAR_MM)
    if montage:
        from lm_zoo.patches import save_montage

        te = tfds_loader.split_arrays(builder, "test", ["case_id", "label", "patch"])
        pos = builder.info.features["label"].str2int("aneurysm")
        names = builder.info.features["label"].names
        order = np.concatenate([np.flatnonzero(te["label"] == pos)[:24], np.flatnonzero(te["label"] != pos)[:24]])
        save_montage(te["patch"][order], [f"{names[te['label'][i]]} {te['case_id'][i][-3:]}" for i in order],
                     montage, max_patches=48, columns=6)
        res["montage"] = str(montage)
    return res


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("layout", help="write the one-subject healthy cohort folder")
    p.add_argument("--cases", type=int, default=30, help="case ids (distinct insertions); default %(default)s")
    p.add_argument("--out", required=True, help="folder to write (must not hold images/ yet)")
    p.add_argument("--source", default=str(DEFAULT_SOURCE), help="the healthy volume (default: %(default)s)")
    p.add_argument("--copy", action="store_true", help="copy the volume instead of linking it")
    p = sub.add_parser("overlap", help="how much the built dataset's test split repeats its train split")
    p.add_argument("--data-dir", required=True, help="the --data-dir of lm-zoo evaluate")
    p.add_argument("--dataset", default="mra_aneurysm_patches/inserted")
    p.add_argument("--montage", default=None, help="PNG of test patches (derived from CC BY-NC data: not for the repo)")
    args = parser.parse_args(argv)
    from lm_zoo.errors import LmZooError

    try:
        if args.command == "layout":
            ids = layout(args.out, args.cases, args.source, copy=args.copy)
            print(f"wrote {args.out}: {len(ids)} case ids ({ids[0]} .. {ids[-1]}) -> {args.source}")
            print(f"next: lm-zoo evaluate --dataset mra_aneurysm_patches/inserted --manual-dir {args.out} "
                  "--data-dir DATA_DIR --out OUT")
        else:
            res = overlap(args.data_dir, args.dataset, args.montage)
            print(f"cases: train {res['train_cases']}, test {res['test_cases']}, in both: {res['cases_in_both'] or 'none'}; "
                  f"source {res['sources']}")
            for name in ("normal", "aneurysm"):
                r = res[name]
                print(f"{name}: {r['test_points']} test points, {r['test_within_1mm_of_train']:.1%} within {NEAR_MM:g} mm "
                      f"of one of {r['train_points']} train points; nearest train point median {r['nearest_train_mm_p50']:.1f} mm")
    except LmZooError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
