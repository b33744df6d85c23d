"""Build time of each default TFDS config, split into its two stages, against the 3-minute goal.

For each config a fresh data_dir is used (phantom data, not real data):

1. cohort: the phantom generator writing the cohort (``lm_zoo.cohorts.phantom_cohort``, the
   call the builder makes; the build below then finds it in its cache);
2. patches: ``download_and_prepare`` with the cohort cached: reading volumes and annotations,
   vessel candidates (MRA), 2.5D extraction and TFDS writing.

The same-run baseline is the cohort generation itself: ``patches / cohort`` says what the dataset
code adds on top of the phantom, and ``total / 180 s`` checks the goal (< 3 min per config on 2
cores). phantom_lm20 shares phantom_lm60's cohort (same cases), so its cohort stage is the cache hit.

    python benchmarks/datasets.py [--configs landmark_ct_patches/phantom_lm60 ...] [--workers N]

``--segmentations N`` times instead a ``landmark_ct_patches/manual`` build from ``segmentations/``
only (an N-case phantom cohort written with its TotalSegmentator-style label maps, landmark files
removed), three ways: without the derived-landmark cache (the code before issue 25 item 1: every
case derived by the scan of names and again by the example step), a first build with the cache
(derived once per case) and a rebuild into a fresh data_dir with the same download folder
(derived never). Derivations are counted in this process (all of them with ``--workers 1``).

    python benchmarks/datasets.py --segmentations 3 [--spacing-mm 1.5] [--workers 1]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_CONFIGS = (
    "landmark_ct_patches/phantom_lm60",
    "landmark_ct_patches/phantom_lm20",
    "mra_aneurysm_patches/phantom",
)
GOAL_S = 180.0


def cohort_stage(builder, download_dir: Path) -> float:
    """Write the builder's phantom cohort into the cache its build reads; seconds (~0 when cached)."""
    start = time.perf_counter()
    builder.phantom_cohort_dir(download_dir / "lm_zoo_phantoms")
    return time.perf_counter() - start


def segmentation_builds(n_cases: int, spacing_mm: float, work: Path) -> None:
    """Print seconds per case and derivations per case of the three manual builds (module doc)."""
    import tensorflow_datasets as tfds

    import lm_zoo.landmarks
    from lm_zoo.dataset_builder import PatchBuilderMixin
    from lm_zoo.phantoms.torso_ct import write_cohort

    root = work / "cohort"
    write_cohort(root, n_cases, seed=0, progress=False, spacing_mm=spacing_mm, montage=False, segmentations=True)
    shutil.rmtree(root / "landmarks")
    calls = []
    derive = lm_zoo.landmarks.landmarks_from_segmentation

    def counted(*args, **kwargs):
        calls.append(1)
        return derive(*args, **kwargs)

    lm_zoo.landmarks.landmarks_from_segmentation = counted
    cached = PatchBuilderMixin.derived_cache
    runs = (("no cache (before)", "before", "downloads_before", lambda self: None),
            ("first build, cached", "first", "downloads", cached),
            ("rebuild, same downloads", "again", "downloads", cached))
    print(f"landmark_ct_patches/manual from segmentations/: {n_cases} phantom cases at {spacing_mm} mm")
    print(f"{'build':28s} {'s':>8s} {'s/case':>8s} {'derivations/case':>17s}")
    try:
        for label, data_dir, downloads, cache in runs:
            PatchBuilderMixin.derived_cache = cache
            calls.clear()
            builder = tfds.builder("landmark_ct_patches/manual", data_dir=str(work / data_dir))
            start = time.perf_counter()
            builder.download_and_prepare(download_dir=str(work / downloads),
                                         download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
            seconds = time.perf_counter() - start
            print(f"{label:28s} {seconds:8.1f} {seconds / n_cases:8.2f} {len(calls) / n_cases:17.1f}", flush=True)
    finally:
        PatchBuilderMixin.derived_cache = cached
        lm_zoo.landmarks.landmarks_from_segmentation = derive


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--workers", type=int, default=None, help="LM_ZOO_DATASET_WORKERS (default: all CPUs)")
    parser.add_argument("--work-dir", default=None, help="where to build (default: a temporary folder, removed)")
    parser.add_argument("--segmentations", type=int, default=0, metavar="N",
                        help="time manual builds from segmentations of N phantom cases instead (module doc)")
    parser.add_argument("--spacing-mm", type=float, default=1.5, help="phantom voxel size for --segmentations")
    args = parser.parse_args(argv)
    if args.workers:
        os.environ["LM_ZOO_DATASET_WORKERS"] = str(args.workers)

    import tensorflow_datasets as tfds

    import lm_zoo.datasets  # noqa: F401
    from lm_zoo.dataset_builder import local_workers

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="lm_zoo_bench_datasets_"))
    if args.segmentations:
        try:
            segmentation_builds(args.segmentations, args.spacing_mm, work)
        finally:
            if args.work_dir is None:
                shutil.rmtree(work, ignore_errors=True)
        return 0
    downloads = work / "downloads"  # shared: phantom_lm20 reuses phantom_lm60's cohort, as a user's build would
    print(f"phantom data; {local_workers()} worker process(es); work dir {work}")
    print(f"{'config':40s} {'cohort s':>9s} {'patches s':>10s} {'total s':>8s} {'examples':>9s} "
          f"{'patches/cohort':>15s} {'total/goal':>11s}")
    try:
        for name in args.configs:
            data_dir = work / name.replace("/", "_")
            builder = tfds.builder(name, data_dir=str(data_dir))
            t_cohort = cohort_stage(builder, downloads)
            start = time.perf_counter()
            builder.download_and_prepare(download_dir=str(downloads))
            t_patches = time.perf_counter() - start
            total = t_cohort + t_patches
            examples = builder.info.splits.total_num_examples
            ratio = f"{t_patches / t_cohort:15.2f}" if t_cohort > 1 else f"{'(cached)':>15s}"
            print(f"{name:40s} {t_cohort:9.1f} {t_patches:10.1f} {total:8.1f} {examples:9d} {ratio} "
                  f"{total / GOAL_S:11.2f}", flush=True)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
