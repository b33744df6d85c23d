"""Adaptation to unlabelled real CT (``lm-zoo train landmark --adapt-to``): methods compared on the
same data and seeds, judged by labels they never saw.

Each method adapts ``--init-from`` (default ``landmark_phantom``, phantom-only) to random body
points of the unlabelled scans (``shared/data/real_ct``: two chest CTs and a 10-slice thorax
slab) with :func:`lm_zoo.training.adaptation.adapt_landmark`, then is judged on the
TotalSegmentator example (``example_ct``, 22 landmarks derived from its segmentation, never used
in training) by :func:`benchmarks.sim_to_real.run`: top-1, top-5, non-landmark recall at body
points >= 20 mm from every derived landmark, their mean (the balanced figure the methods are
chosen by) and the rank of the true class per landmark. ``--transductive`` adds ``example_ct``'s
own unlabelled voxels to the adapting scans (a separate variant: report it apart). The phantom
test top-1 of each run comes from its metrics. Nothing is written into ``pretrained/``.

    python benchmarks/adaptation.py [--methods none,adabn,dann] [--steps 600] [--transductive]
                                    [--out runs/adaptation] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sim_to_real  # noqa: E402  (benchmarks/ is not a package)


def adapt(method: str, args, scans) -> tuple[str, dict]:
    """The weights file ``method`` wrote and its run's metrics."""
    from lm_zoo.training.adaptation import AdaptSettings, adapt_landmark

    base = AdaptSettings()
    settings = dataclasses.replace(base, method=method, points_per_scan=args.points_per_scan,
                                   dann=dataclasses.replace(base.dann, steps=args.steps, seed=args.seed))
    out = Path(args.out) / (method + ("_transductive" if args.transductive else ""))
    metrics = adapt_landmark(out, scans, init_from=args.init_from, settings=settings, data_dir=args.data_dir,
                             command=" ".join(sys.argv))
    return str(out / "mini_vgg25d_landmark.weights.h5"), metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="none,adabn,dann")
    parser.add_argument("--init-from", default="landmark_phantom")
    parser.add_argument("--shared-data", type=Path, default=sim_to_real.DEFAULT_SHARED)
    parser.add_argument("--steps", type=int, default=600, help="dann: adversarial steps")
    parser.add_argument("--points-per-scan", type=int, default=2000)
    parser.add_argument("--transductive", action="store_true", help="also adapt on example_ct's unlabelled voxels")
    parser.add_argument("--negatives", type=int, default=200, help="judging body points on example_ct")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="TFDS data_dir of the phantom dataset")
    parser.add_argument("--out", default="runs/adaptation")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    shared = args.shared_data
    # The scans themselves: real_ct/ also holds each chest CT's lesion mask, which adaptation refuses.
    scans = [shared / sim_to_real.CASES[c][0] for c in ("lung1", "lung2", "thorax10")]
    scans += [shared / sim_to_real.CASES["example_ct"][0]] if args.transductive else []
    results = []
    for method in args.methods.split(","):
        weights, metrics = (args.init_from, {}) if method == "none" else adapt(method, args, scans)
        judged = sim_to_real.run(weights, "example_ct", shared, args.negatives, args.seed)
        phantom = metrics.get("test_top1", judged["phantom_test_top1"])
        results.append({"method": method, "transductive": args.transductive, "weights": weights,
                        "adapting_scans": [str(s) for s in scans] if method != "none" else [],
                        "phantom_test_top1": phantom, **{k: judged[k] for k in (
                            "data", "real_top1", "real_top5", "non_landmark_recall", "n_landmarks", "n_non_landmark")},
                        "balanced": (judged["real_top1"] + judged["non_landmark_recall"]) / 2,
                        "ranks": {r["landmark"]: r["rank_of_truth"] for r in judged["per_landmark"]}})
        print(json.dumps(results[-1]), flush=True)
    print(f"\njudged on: {results[0]['data']}")
    print(f"adapting scans (unlabelled): {', '.join(str(s) for s in scans)}\n")
    print(f"{'method':10s} {'top-1':>6s} {'top-5':>6s} {'NL rec':>6s} {'balanced':>8s} {'phantom':>8s}")
    for r in results:
        print(f"{r['method']:10s} {r['real_top1']:6.3f} {r['real_top5']:6.3f} {r['non_landmark_recall']:6.3f} "
              f"{r['balanced']:8.3f} {r['phantom_test_top1'] or float('nan'):8.3f}")
    names = list(results[0]["ranks"])
    print("\nrank of the true class per landmark (1 = top-1)\n" + f"{'landmark':28s}" + "".join(f"{r['method']:>8s}" for r in results))
    for n in names:
        print(f"{n:28s}" + "".join(f"{r['ranks'][n]:8d}" for r in results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
