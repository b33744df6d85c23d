"""Cost of the phantom generators (synthetic data), against the I/O of the same cases, same run.

    python benchmarks/phantoms.py [--cases 4] [--only torso_ct]

Each ``bench_*`` function below times one phantom kind on one core and prints seconds per case
and the ratio to a baseline measured in the same run; ``__main__`` runs all of them.

Goals: torso CT at the default cohort spacing (~1.5 mm in-plane, 1.5-3 mm slices) generates in
"a few seconds" per case (issue 5; aim ~1 s), so that the 120-case landmark dataset builds in
< 3 min on 2 cores including writing, reading and patch extraction.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as the goal is stated per core


def bench_torso_ct(n_cases: int = 4) -> bool:
    import SimpleITK as sitk

    from lm_zoo.phantoms import torso_ct

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    t0 = time.perf_counter()
    torso_ct.generate_case(10_000, spacing_mm=4.0)  # numba load/compile, imports
    print(f"torso CT: warm-up (numba cache load or compile) {time.perf_counter() - t0:.2f} s, not counted")
    gen, cpu, write, read, voxels = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n_cases):
            t0, c0 = time.perf_counter(), time.process_time()
            image, landmarks = torso_ct.generate_case(torso_ct.case_seed(0, i))
            gen.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            voxels.append(int(np.prod(image.GetSize())))
            path = os.path.join(tmp, f"case{i}.nii.gz")
            t0 = time.perf_counter()
            sitk.WriteImage(image, path, True)
            write.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sitk.ReadImage(path)
            read.append(time.perf_counter() - t0)
            print(f"  case {i}: {image.GetSize()} voxels, spacing {np.round(image.GetSpacing(), 2).tolist()} mm: "
                  f"generate {gen[-1]:.2f} s (CPU {cpu[-1]:.2f} s) | write .nii.gz {write[-1]:.2f} s | read {read[-1]:.2f} s")
    g, w, r = np.mean(gen), np.mean(write), np.mean(read)
    print(f"torso CT (synthetic phantom, default cohort spacing, 1 core): {g:.2f} s/case generate "
          f"(CPU time {np.mean(cpu):.2f} s; wall > CPU means other processes shared the core), "
          f"{np.mean(voxels) / g / 1e6:.1f} Mvoxel/s; baseline NIfTI write {w:.2f} s, read {r:.2f} s; "
          f"ratio generate / write = {g / w:.2f}")
    projected = 120 * (g + w + r) / 2
    print(f"  projected 120-case cohort on 2 cores (generate + write + read, no patches): {projected:.0f} s")
    ok = min(g, np.mean(cpu)) <= 3.0
    print("  goal: <= 3 s per case ('a few seconds'; aim ~1 s):", "met" if ok else "NOT met")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--only", default=None, help="run only bench_<ONLY>")
    args = parser.parse_args(argv)
    benches = {name[len("bench_"):]: fn for name, fn in globals().items() if name.startswith("bench_") and callable(fn)}
    if args.only:
        benches = {args.only: benches[args.only]}
    results = {name: fn(args.cases) for name, fn in benches.items()}
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
