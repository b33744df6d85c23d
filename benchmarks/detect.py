"""Whole-volume landmark detection (lm_zoo.detection): speed and quality, printed.

Speed (default): one phantom torso resampled onto a 512x512x300 grid (0.8 x 0.8 x 1.5 mm, a
clinical CT size; synthetic data), detected with the weights' patch spacing; prints seconds per
volume split into mask+grid / patch extraction / inference, against a naive dense scan (one
patch at every point of a lattice of the weights' spacing inside the body), measured in the same
run on a sample of those points and extrapolated to all of them, and the ratio of the two.

Quality (``--quality``): N held-out phantom cases ``generate_case(case_seed(SEED, i))``
(default SEED 1), against the phantom's analytic landmarks, whole and cut to a chest or
abdomen-pelvis field of view (``lm_zoo.detection.calibration.partial_view``); and the real
TotalSegmentator example (``--shared-data``/totalseg_example) against
``lm_zoo.landmarks.landmarks_from_segmentation``. Per landmark: median error of found points,
fraction of in-view landmarks found within 10 mm, misses (in view, not found) and false
detections (found > 10 mm away, or found while outside the view).

This script only measures and prints (``--json OUT`` saves the figures where you say). The
calibration (threshold, shape weight, atlas) and the model card's detection figures are written
by the library's command::

    lm-zoo weights calibrate landmark [--metrics]

    python benchmarks/detect.py [--quality --cases 8 --seed 1 --json OUT]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def print_table(title: str, summary: dict) -> None:
    print(f"\n{title}")
    print(f"{'landmark':<30} {'n':>3} {'median mm':>9} {'<=10mm':>7} {'miss':>5} {'false':>5}")
    for n, r in summary["per_landmark"].items():
        med = f"{r['median_error_mm']:.1f}" if r["median_error_mm"] is not None else "-"
        w = f"{r['within_10mm']:.2f}" if r["within_10mm"] is not None else "-"
        print(f"{n:<30} {r['in_view']:>3} {med:>9} {w:>7} {r['misses']:>5} {r['false_detections']:>5}")
    o = summary["overall"]
    med = "-" if o["median_error_mm"] is None else f"{o['median_error_mm']:.1f}"
    share = "-" if o["within_10mm"] is None else f"{o['within_10mm']:.3f}"
    print(f"OVERALL: median error {med} mm, within 10 mm {share} ({o['n_within_10mm']} of {o['in_view']} in-view "
          f"landmark instances), misses {o['misses']}, false detections {o['false_detections']}")


def quality(args, model, search) -> dict:
    from lm_zoo.commands.weights_calibrate import held_out_quality

    result = held_out_quality(args.weights, model, search, args.cases, args.seed, args.shared_data,
                              log=lambda line: print(line, flush=True))
    print_table(f"PHANTOM (synthetic, {args.cases} held-out cases, seed {args.seed})", result["phantom"])
    print_table(f"PHANTOM PARTIAL VIEWS (synthetic, {args.cases} held-out cases cut to chest / abdomen-pelvis)",
                result["phantom_partial"])
    if "real" in result:
        print_table(f"REAL (TotalSegmentator example, {len(result['real']['per_landmark'])} reference landmarks)",
                    result["real"])
        print("found where the segmentation gives no reference:", result["real"]["found_without_reference"])
    return result


def speed(args, model, search) -> dict:
    from lm_zoo.commands.weights_calibrate import clinical_sized_case
    from lm_zoo.detection.calibration import measure_speed

    print("synthetic phantom CT resampled to a clinical size;", end=" ")
    result = measure_speed(clinical_sized_case(), args.weights, model=model, search=search,
                           dense_sample=args.dense_sample, log=print,
                           data="synthetic phantom resampled to 512x512x300 at 0.8x0.8x1.5 mm")
    wall = result["seconds_per_volume"]
    print(f"speed-up of the coarse-to-fine search: {result['dense_seconds_extrapolated'] / wall:.0f}x; goal <= 60 s "
          f"per volume: {'met' if wall <= 60 else 'NOT met'}")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", action="store_true", help="measure localisation quality instead of speed")
    parser.add_argument("--weights", default="landmark")
    parser.add_argument("--cases", type=int, default=8, help="held-out phantom cases")
    parser.add_argument("--seed", type=int, default=1, help="held-out cohort seed")
    parser.add_argument("--dense-sample", type=int, default=2048)
    parser.add_argument("--shared-data", default=os.environ.get("LM_ZOO_SHARED_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--json", help="also save the figures to this JSON file")
    args = parser.parse_args(argv)
    from lm_zoo.applications import MiniVGG25D
    from lm_zoo.detection import SearchParams

    model = MiniVGG25D(weights=args.weights)
    search = SearchParams()
    try:
        result = quality(args, model, search) if args.quality else speed(args, model, search)
    except ValueError as err:  # e.g. a held-out seed that is the training or calibration seed
        parser.error(str(err))
    if args.json:
        from lm_zoo._atomic import atomic_write_json

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
