"""Throughput of lm_zoo.patches.extract_25d against per-plane SimpleITK.Resample, same run.

Synthetic (phantom) data: a 512x512x300 int16 CT-sized volume of smooth random structure with
anisotropic spacing and an oblique direction, and random points inside it. Both methods get the
same points; the script checks they agree, then prints patches/s and the speed ratio. Numba's
first-call compile time is measured and reported separately (a warm-up run).

    python benchmarks/patches.py [--points 600] [--size 32] [--repeats 3] [--cold]

``--cold`` points numba at an empty cache folder, so the warm-up line is a real compile.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import SimpleITK as sitk
from scipy.spatial.transform import Rotation


def make_volume(shape_xyz=(512, 512, 300), seed=0) -> sitk.Image:
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0, 300, size=(shape_xyz[2] // 10 + 1, shape_xyz[1] // 16 + 1, shape_xyz[0] // 16 + 1))
    image = sitk.GetImageFromArray(coarse.astype(np.float32))
    reference = sitk.Image(list(shape_xyz), sitk.sitkFloat32)
    reference.SetSpacing([(c - 1) / (s - 1) for c, s in zip(image.GetSize(), shape_xyz)])
    volume = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear)
    volume = sitk.Cast(volume, sitk.sitkInt16)
    volume.SetSpacing((0.78, 0.78, 1.25))
    volume.SetOrigin((-200.0, -180.0, -350.0))
    volume.SetDirection(tuple(Rotation.from_euler("zyx", [8, -5, 3], degrees=True).as_matrix().ravel()))
    return volume


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=600)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="compile numba kernels from scratch (empty cache)")
    args = parser.parse_args(argv)
    if args.cold:
        import tempfile

        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="lm_zoo_numba_")
    # imported here so that --cold takes effect before numba reads its configuration
    from lm_zoo.patches import Augmentation, extract_25d, extract_25d_reference

    t0 = time.perf_counter()
    image = make_volume()
    print(f"phantom volume {image.GetSize()} int16, spacing {image.GetSpacing()}, oblique direction "
          f"(built in {time.perf_counter() - t0:.1f} s); {os.cpu_count()} CPU cores")
    rng = np.random.default_rng(1)
    index = rng.uniform(0, np.array(image.GetSize()) - 1, size=(args.points, 3))
    points = np.array([image.TransformContinuousIndexToPhysicalPoint(i.tolist()) for i in index])
    augment = Augmentation(max_rotation_deg=15, scale_range=(0.9, 1.1), jitter_mm=2)

    t0 = time.perf_counter()
    extract_25d(image, points[:2], size=args.size)  # serial kernel (small jobs)
    extract_25d(image, points[:32], size=args.size)  # parallel kernel
    compile_s = time.perf_counter() - t0
    print(f"numba warm-up ({'compile from scratch' if args.cold else 'compile or load from on-disk cache'}, "
          f"int16 kernels): {compile_s:.2f} s (not included below)")

    results = {}
    for name, kwargs in [("axis-aligned planes", {}), ("augmented (rotated) planes", {"augment": augment, "seed": 0})]:
        t0 = time.perf_counter()
        reference = extract_25d_reference(image, points, size=args.size, **kwargs)
        ref_s = time.perf_counter() - t0
        best = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fast = extract_25d(image, points, size=args.size, **kwargs)
            best = min(best, time.perf_counter() - t0)
        value_range = float(np.ptp(sitk.GetArrayViewFromImage(image)))
        error = float(np.abs(fast - reference).max()) / value_range
        results[name] = ref_s / best
        print(f"{name}: {args.points} patches {args.size}x{args.size}x3 | SimpleITK.Resample per plane "
              f"{args.points / ref_s:8.1f} patches/s | extract_25d {args.points / best:10.1f} patches/s | "
              f"ratio {ref_s / best:7.1f}x | max |diff| / range {error:.2e}")
        if error > 1e-3:
            print("ERROR: extract_25d disagrees with the SimpleITK reference", file=sys.stderr)
            return 1
    ok = all(r >= 10 for r in results.values())
    print("goal >= 10x:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
