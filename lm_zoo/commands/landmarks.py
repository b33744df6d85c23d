"""``lm-zoo landmarks from-segmentation SEG --out points.mrk.json``: TotalSegmentator output -> landmarks."""
from __future__ import annotations


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "from-segmentation",
        help="derive the package's landmarks from a TotalSegmentator segmentation",
        description="Derive the 60-landmark table's points (LPS mm) from TotalSegmentator output: a multi-label "
        "'total' map (TotalSegmentator --ml) or a folder of per-structure masks (subtask masks such as "
        "vertebrae_body.nii.gz are used when present). Rules: lm_zoo.segmentation.RULES.",
    )
    p.add_argument("segmentation", help="multi-label .nii.gz or a folder of TotalSegmentator masks")
    p.add_argument("--image", help="the CT the segmentation belongs to (file or DICOM folder); its grid is checked")
    p.add_argument("--out", required=True, help="output file: .csv, .fcsv or .mrk.json (by suffix)")
    p.add_argument("--coordinate-system", choices=["LPS", "RAS"], default="LPS",
                   help="coordinates written (Slicer files are often RAS; default LPS)")


def run(args) -> int:
    import warnings

    from lm_zoo.landmarks import landmarks_from_segmentation, write_landmarks

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        landmarks = landmarks_from_segmentation(args.segmentation, image=args.image)
    for w in caught:
        print(f"warning: {w.message}")
    if len(landmarks) == 0:
        raise ValueError(f"{args.segmentation}: no landmark could be derived (no known, uncut structure)")
    write_landmarks(args.out, landmarks, coordinate_system=args.coordinate_system)
    print(f"wrote {len(landmarks)} landmarks derived from {args.segmentation} to {args.out} ({args.coordinate_system})")
    return 0
