"""``lm-zoo phantom torso-ct|head-mra``: write a deterministic phantom cohort (synthetic data)."""
from __future__ import annotations


def add_arguments(parser):
    from lm_zoo.commands.options import add_no_progress

    parser.add_argument("kind", choices=["torso-ct", "head-mra"], help="which phantom cohort")
    parser.add_argument("--cases", type=int, required=True, help="number of cases (> 0)")
    parser.add_argument("--out", required=True, help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (case i is the same whatever --cases)")
    parser.add_argument("--overwrite", action="store_true", help="replace the cohort files of a non-empty --out")
    parser.add_argument("--workers", type=int, default=1, help="torso-ct: processes writing cases in parallel")
    parser.add_argument("--segmentations", action="store_true",
                        help="torso-ct: also write segmentations/<case>.nii.gz, TotalSegmentator 'total' label maps")
    add_no_progress(parser)


def run(args) -> int:
    from lm_zoo.outputs import OutputDirError, check_output_dir, staged_output

    out = check_output_dir(args.out, argument="--out")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise OutputDirError(f"--out {str(out)!r} is not empty; pass --overwrite to replace its cohort files")
    # Written aside and moved into place: an interrupted or failed run leaves --out as it was.
    with staged_output(out, argument="--out") as staging:
        if args.kind == "torso-ct":
            from lm_zoo.phantoms import torso_ct

            ids = torso_ct.write_cohort(staging, args.cases, seed=args.seed, overwrite=True,
                                        progress=not args.no_progress, workers=args.workers, segmentations=args.segmentations)
        else:
            from lm_zoo.phantoms import head_mra

            ids = head_mra.write_cohort(staging, args.cases, seed=args.seed, overwrite=True, progress=not args.no_progress)
    print(f"wrote {len(ids)} synthetic {args.kind} phantom cases to {args.out}")
    return 0
