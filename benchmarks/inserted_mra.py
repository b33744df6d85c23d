"""The transfer comparison on aneurysms inserted into the one real TOF-MRA sample (chris_MRA).

    python benchmarks/inserted_mra.py layout --cases 30 --out runs/chris_healthy
    lm-zoo evaluate --dataset mra_aneurysm_patches/inserted --manual-dir runs/chris_healthy \\
        --data-dir runs/tfds_inserted --output runs/eval_inserted
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
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path(os.environ.get("LM_ZOO_SHARED_DATA", HERE.parent.parent / "shared" / "data")) / "mra" / "chris_MRA.nii.gz"
NEAR_MM = 1.0


def layout(out_dir, n_cases: int, source=DEFAULT_SOURCE, *, copy: bool = False) -> list[str]:
    """Write ``out_dir`` as a healthy cohort of ``n_cases`` case ids that all hold ``source``;
    returns the case ids. Refuses a missing or unreadable source, and an ``out_dir`` that already
    holds an ``images/`` folder (a half-old cohort would change the cache key silently)."""
    import SimpleITK as sitk

    from lm_zoo import cohorts
    from lm_zoo.errors import CohortError, CohortNotFoundError
    from lm_zoo.outputs import staged_output

    if isinstance(n_cases, bool) or not isinstance(n_cases, int) or n_cases < 3:
        # 2/3 : 1/3 split stratified by aneurysm: fewer than 3 cases leave a split empty.
        raise CohortError(f"--cases must be an integer >= 3, got {n_cases!r}")
    source = Path(source).expanduser().absolute()
    if not source.is_file():
        raise CohortNotFoundError(f"source volume {source} not found (set LM_ZOO_SHARED_DATA, or pass --source)")
    parts = cohorts._split_suffix(source.name, cohorts.IMAGE_SUFFIXES)
    if parts is None or source.name.lower().endswith((".mhd", ".nhdr")):
        raise CohortError(f"source volume {source}: not a single-file volume ({', '.join(cohorts.IMAGE_SUFFIXES)}; "
                          "not .mhd/.nhdr, whose pixel data sits in a second file)")
    stem, suffix = parts
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(source))
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise CohortError(f"source volume {source}: not readable as an image: {str(err).strip().splitlines()[-1]}") from None
    out = Path(out_dir)
    if (out / "images").exists():
        raise CohortError(f"--out {out} already holds images/: remove it or choose another folder")
    ids = [f"{stem}_{k:03d}" for k in range(n_cases)]
    with staged_output(out, argument="--out") as tmp:
        (tmp / "images").mkdir()
        for cid in ids:
            target = tmp / "images" / f"{cid}{suffix}"
            if copy:
                shutil.copyfile(source, target)
            else:
                target.symlink_to(source)
        (tmp / "cases.txt").write_text("".join(f"{c}\n" for c in ids))
        (tmp / "SOURCE.txt").write_text(
            f"{n_cases} case ids, every one the same healthy volume {source} ({'copies' if copy else 'symbolic links'}).\n"
            "One real subject: the inserted config inserts aneurysms per case id (distinct insertions), the split\n"
            "is by case id, but all cases share the subject's anatomy (see benchmarks/inserted_mra.py overlap).\n"
            "chris_MRA: real TOF-MRA, Chris Rorden (niivue-images), CC BY-NC 4.0: attribution, non-commercial.\n")
    return ids


def overlap(data_dir, dataset: str = "mra_aneurysm_patches/inserted", montage=None) -> dict:
    """How much the test split of a built one-subject ``inserted`` dataset repeats its train split."""
    from scipy.spatial import cKDTree

    from lm_zoo import tfds_loader

    builder = tfds_loader.get_builder(dataset, data_dir=data_dir)
    if not builder.is_prepared():
        raise tfds_loader.DatasetError(f"{dataset} is not built in {data_dir}: run lm-zoo evaluate first")
    feats = ["case_id", "label", "point_lps_mm", "source"] + (["patch"] if montage else [])
    split = {s: tfds_loader.split_arrays(builder, s, feats) for s in ("train", "test")}
    pos = builder.info.features["label"].str2int("aneurysm")
    cases = {s: sorted(set(a["case_id"])) for s, a in split.items()}
    res = {"train_cases": len(cases["train"]), "test_cases": len(cases["test"]),
           "cases_in_both": sorted(set(cases["train"]) & set(cases["test"])),
           "sources": sorted({str(v) for a in split.values() for v in a["source"]})}
    for name, label in (("normal", 1 - pos), ("aneurysm", pos)):
        tr = np.unique(split["train"]["point_lps_mm"][split["train"]["label"] == label], axis=0)
        te = np.unique(split["test"]["point_lps_mm"][split["test"]["label"] == label], axis=0)
        d = cKDTree(tr).query(te)[0] if len(tr) and len(te) else np.zeros(0)
        res[name] = {"train_points": len(tr), "test_points": len(te),
                     "test_within_1mm_of_train": float(np.mean(d <= NEAR_MM)) if d.size else float("nan"),
                     "nearest_train_mm_p50": float(np.median(d)) if d.size else float("nan")}
    if montage:
        from lm_zoo.patches import save_montage

        te = split["test"]
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
                  "--data-dir DATA_DIR --output OUT")
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
