"""Cohort scale: seconds per case, peak memory and worker / Beam ratios of a clinical-size build.

An N-case cohort of clinical-size CTs is made from phantoms: each torso phantom
(``lm_zoo.phantoms.torso_ct.write_cohort``, cohort resolution, synthetic data) is resampled onto a
512 x 512 x 600 grid at 0.7 x 0.7 x 1.0 mm centred on the volume
(``lm_zoo.commands.weights_calibrate.on_clinical_grid``, as ``benchmarks/detect.py``'s case), written
as ``images/<case>.nii.gz`` int16 with its landmark file (or, with ``--segmentations``, only its
TotalSegmentator-style label map, resampled nearest-neighbour). Then ``landmark_ct_patches/manual``
is built from it several ways, each in a fresh process, data_dir and download folder:

- ``local, 1 worker``: the baseline (``LM_ZOO_DATASET_WORKERS=1``);
- ``local, automatic``: the worker count the builder chooses (``LM_ZOO_DATASET_WORKERS`` unset);
- ``local, W workers``: forced (``--workers W``, default: the usable CPUs);
- ``beam, 1 worker`` / ``beam, W workers``: Beam's DirectRunner (``direct_num_workers``; pinned to
  the in-process engine by lm_zoo, worker processes for W > 1); ``--no-beam`` skips them.

Each row prints wall seconds, seconds per case, the speed-up against the baseline measured in this
run (the mean of two 1-worker builds, first and last, over the row's s; their difference says how
much the machine's load moved meanwhile), CPU seconds (``getrusage`` of the build process and its waited-for
worker processes), the build process's peak RSS (``ru_maxrss``), and, sampled every 0.1 s, the
peak RSS of the build process and all its worker processes together and of the largest worker.
``procs``: the worker processes the build used (1: the build process itself). The Beam rows set
``LM_ZOO_DATASET_WORKERS=1``: with ``--segmentations`` their landmark derivation (the name scan,
in the main process before the pipeline) is serial, and only the patches run in Beam's workers.

    python benchmarks/cohort_scale.py [--cases 4] [--workers 2] [--segmentations] [--no-beam]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = (512, 512, 600)  # x, y, z voxels
SPACING = (0.7, 0.7, 1.0)  # mm
CONFIG = "landmark_ct_patches/manual"


def write_clinical_cohort(root: Path, n_cases: int, segmentations: bool) -> None:
    """The N-case clinical-size cohort of the module doc, in ``root``."""
    import SimpleITK as sitk

    from lm_zoo.commands.weights_calibrate import on_clinical_grid
    from lm_zoo.phantoms.torso_ct import write_cohort

    phantom = root.parent / "phantom"
    ids = write_cohort(phantom, n_cases, seed=0, progress=False, montage=False, segmentations=segmentations)
    annotations = "segmentations" if segmentations else "landmarks"
    for folder in ("images", annotations):
        (root / folder).mkdir(parents=True)
    for case_id in ids:
        image = sitk.ReadImage(str(phantom / "images" / f"{case_id}.nii.gz"))
        centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
        sitk.WriteImage(on_clinical_grid(image, centre, SIZE, SPACING), str(root / "images" / f"{case_id}.nii.gz"))
        if segmentations:
            labels = sitk.ReadImage(str(phantom / "segmentations" / f"{case_id}.nii.gz"))
            sitk.WriteImage(on_clinical_grid(labels, centre, SIZE, SPACING, nearest=True),
                            str(root / "segmentations" / f"{case_id}.nii.gz"))
        else:
            shutil.copy(phantom / "landmarks" / f"{case_id}.csv", root / "landmarks" / f"{case_id}.csv")
    shutil.rmtree(phantom)


def one_build(spec: dict) -> dict:
    """Run one build as ``spec`` says (in this fresh process); its figures."""
    import platform
    import resource
    import threading

    import tensorflow_datasets as tfds

    import lm_zoo.datasets  # noqa: F401

    config = {"manual_dir": spec["cohort"]}
    if spec["beam_workers"]:
        from apache_beam.options.pipeline_options import PipelineOptions

        config["beam_options"] = PipelineOptions(["--runner=DirectRunner",
                                                  f"--direct_num_workers={spec['beam_workers']}"])
    work = Path(spec["work"])
    builder = tfds.builder(CONFIG, data_dir=str(work / "data"))
    platform.processor()  # TFDS asks during the build: a forked `uname -p` whose RSS is this process's
    peaks, stop = {"all_mib": 0.0, "worker_mib": 0.0}, threading.Event()
    sampler = threading.Thread(target=sample_memory, args=(peaks, stop), daemon=True)
    before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    sampler.start()
    start = time.perf_counter()
    builder.download_and_prepare(download_dir=str(work / "downloads"),
                                 download_config=tfds.download.DownloadConfig(**config))
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before))
    from lm_zoo.dataset_builder import workers_for

    n_cases = len(list((Path(spec["cohort"]) / "images").iterdir()))
    return {"s": seconds, "cpu_s": cpu, "examples": builder.info.splits.total_num_examples,
            "workers": spec["beam_workers"] or workers_for(n_cases), "main_mib": after[0].ru_maxrss / 1024, **peaks}


def sample_memory(peaks: dict, stop, every_s: float = 0.1) -> None:
    """Peak RSS of this process and its descendants together, and of the largest descendant,
    sampled every ``every_s`` until ``stop`` is set (a worker's peak between samples is missed)."""
    import psutil

    me = psutil.Process()
    while not stop.wait(every_s):
        sizes = []
        for process in [me, *me.children(recursive=True)]:
            try:
                sizes.append(process.memory_info().rss / 2**20)
            except psutil.Error:  # ended meanwhile
                sizes.append(0.0)
        peaks["all_mib"] = max(peaks["all_mib"], sum(sizes))
        peaks["worker_mib"] = max(peaks["worker_mib"], max(sizes[1:], default=0.0))


def run_row(label: str, cohort: Path, work: Path, local_workers: str | None, beam_workers: int) -> dict:
    """One build in a fresh process (its own imports, pool and peak memory)."""
    env = dict(os.environ)
    env.pop("LM_ZOO_DATASET_WORKERS", None)
    if local_workers is not None:
        env["LM_ZOO_DATASET_WORKERS"] = local_workers
    spec = {"cohort": str(cohort), "work": str(work / label.replace(" ", "_").replace(",", "")),
            "beam_workers": beam_workers}
    done = subprocess.run([sys.executable, __file__, "--one-build", json.dumps(spec)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{label}: build failed\n{done.stderr[-3000:]}")
    shutil.rmtree(spec["work"], ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows(workers: int, beam: bool) -> list[tuple[str, str | None, int]]:
    """(label, LM_ZOO_DATASET_WORKERS or None for the automatic choice, Beam workers or 0)."""
    found = [("local, 1 worker", "1", 0), ("local, automatic", None, 0), (f"local, {workers} workers", str(workers), 0)]
    if beam:
        found += [("beam, 1 worker", "1", 1), (f"beam, {workers} workers", "1", workers)]
    return found


def table(planned, work: Path, n_cases: int) -> None:
    """Run the ``planned`` rows, then the baseline again, and print the table of the module doc."""
    results = [(label, run_row(label, work / "cohort", work, local, beam)) for label, local, beam in planned]
    # The baseline again, last: the machine's load may have changed meanwhile (the drift shows it).
    results.append(("local, 1 worker, again", run_row("again", work / "cohort", work, "1", 0)))
    first, last = results[0][1]["s"], results[-1][1]["s"]
    baseline = (first + last) / 2
    print(f"{'build':24s} {'procs':>5s} {'s':>7s} {'s/case':>7s} {'speed-up':>9s} {'CPU s':>7s} {'main MiB':>9s} "
          f"{'all MiB':>8s} {'worker MiB':>11s} {'examples':>9s}")
    for label, row in results:
        print(f"{label:24s} {row['workers']:5d} {row['s']:7.1f} {row['s'] / n_cases:7.2f} {baseline / row['s']:9.2f} "
              f"{row['cpu_s']:7.1f} {row['main_mib']:9.0f} {row['all_mib']:8.0f} {row['worker_mib']:11.0f} "
              f"{row['examples']:9d}")
    print(f"speed-up: the mean of the two 1-worker builds ({baseline:.1f} s; they differ by "
          f"{abs(first - last) / baseline:.0%}) over the row's s; load average {os.getloadavg()[0]:.1f} at the end")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=4, help="cohort size (default 4)")
    parser.add_argument("--workers", type=int, default=None, help="W of the forced rows (default: the usable CPUs)")
    parser.add_argument("--segmentations", action="store_true",
                        help="annotate the cases by TotalSegmentator-style label maps only (landmarks derived)")
    parser.add_argument("--no-beam", dest="beam", action="store_false", help="skip the Beam rows")
    parser.add_argument("--work-dir", default=None, help="where to build (default: a temporary folder, removed)")
    parser.add_argument("--one-build", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_build:
        print(json.dumps(one_build(json.loads(args.one_build))))
        return 0
    if args.cases < 1:
        parser.error(f"--cases must be at least 1, got {args.cases}")
    workers = args.workers or len(os.sched_getaffinity(0))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="lm_zoo_bench_cohort_"))
    try:
        start = time.perf_counter()
        write_clinical_cohort(work / "cohort", args.cases, args.segmentations)
        made = time.perf_counter() - start
        annotated = "segmentations/ only" if args.segmentations else "landmark files"
        print(f"{CONFIG}: {args.cases} synthetic phantom CTs resampled to {SIZE[0]}x{SIZE[1]}x{SIZE[2]} at "
              f"{SPACING[0]}x{SPACING[1]}x{SPACING[2]} mm, {annotated}; cohort written in {made:.0f} s; "
              f"{len(os.sched_getaffinity(0))} usable CPUs, load average {os.getloadavg()[0]:.1f} at start")
        table(rows(workers, args.beam), work, args.cases)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
