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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--workers", type=int, default=None, help="LM_ZOO_DATASET_WORKERS (default: all CPUs)")
    parser.add_argument("--work-dir", default=None, help="where to build (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    if args.workers:
        os.environ["LM_ZOO_DATASET_WORKERS"] = str(args.workers)

    import tensorflow_datasets as tfds

    import lm_zoo.datasets  # noqa: F401
    from lm_zoo.dataset_builder import local_workers

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="lm_zoo_bench_datasets_"))
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
