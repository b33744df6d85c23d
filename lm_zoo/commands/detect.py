"""``lm-zoo detect``: find the landmarks of a weight set in one CT volume or in a cohort.

One scan, ``lm-zoo detect CT --out points.mrk.json``: writes the found landmarks (3D Slicer
``.mrk.json``, ``.fcsv`` or ``.csv`` by the suffix of ``--out``), a PNG montage beside it
(``<out stem>.png``: coronal and sagittal MIPs of the body with the points labelled, the status
lists) and prints one row per landmark with its status (``found``, ``not_found``, ``out_of_view``);
the landmark file holds the found ones. Nothing is written until the detection has finished, and
both files are written to temporary paths and moved into place.

A cohort, ``lm-zoo detect DIR_OR_FILES... --out-dir OUT``: see :mod:`lm_zoo.commands.detect_cohort`.
"""
from __future__ import annotations

from pathlib import Path

SUFFIXES = (".mrk.json", ".fcsv", ".csv")
# lm_zoo.cli imports TensorFlow quietly (no CUDA start-up noise) before run(): the detector needs it.
NEEDS_TENSORFLOW = True

_EPILOG = """\
exit status:
  0  every scan was written
  1  with --out-dir: some scans failed (unreadable, not CT, unusable spacing, no
     landmark found; each named on stderr and in OUT/summary.csv), others were written
  2  nothing could be done (bad arguments, or no scan written)"""


def add_arguments(parser) -> None:
    import argparse

    from lm_zoo.commands.options import add_no_progress

    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("ct", nargs="+", metavar="CT",
                        help="CT volume in HU (NIfTI, MHA, NRRD file or a DICOM series folder); with --out-dir, "
                             "any number of volumes and folders (searched for volume files and DICOM series)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="one scan: the landmark file to write: .mrk.json, .fcsv or .csv")
    target.add_argument("--out-dir", metavar="OUT",
                        help="a cohort: write <scan>.<format> and <scan>.png per scan and summary.csv (scan, landmark, "
                             "status, score, x, y, z, note, path) into this folder as each scan finishes; a scan that "
                             "fails is reported and the others go on")
    parser.add_argument("--format", choices=["mrk.json", "fcsv", "csv"], default=None,
                        help="landmark file type with --out-dir (default mrk.json)")
    parser.add_argument("--weights", default="landmark", help="landmark weight set name or .weights.h5 (default: landmark)")
    parser.add_argument("--names", help="comma-separated landmark classes to search (default: all of the weight set's)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="score needed to report a landmark as found (default: the threshold calibrated for the "
                             "weights in their .detection.json, else 0.5; see lm_zoo.detection)")
    parser.add_argument("--batch-size", type=int, default=512, help="patches per extraction + inference batch")
    parser.add_argument("--coordinate-system", choices=["LPS", "RAS"], default="LPS",
                        help="coordinate system of the landmark files and the summary's x, y, z (default LPS; Slicer "
                             "reads both)")
    add_no_progress(parser)


def montage_path(out) -> Path:
    out = Path(out)
    name = out.name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return out.with_name(name[: -len(suffix)] + ".png")
    return out.with_name(name + ".png")


def search_options(args):
    """(SearchParams, names) from the command line; refuses non-landmark weights before any volume is read."""
    import dataclasses

    from lm_zoo.detection import SearchParams, landmark_weight_set

    landmark_weight_set(args.weights)
    search = SearchParams()
    if args.threshold is not None:
        search = dataclasses.replace(search, threshold=args.threshold)
    names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    return search, names


def write_results(image, detections, out: Path, coordinate_system: str, title: str) -> Path:
    """Write the found landmarks to ``out`` and the montage beside it; returns the montage path."""
    from lm_zoo._atomic import atomic_path
    from lm_zoo.detection import save_detection_montage
    from lm_zoo.landmarks import write_landmarks

    png = montage_path(out)
    png.parent.mkdir(parents=True, exist_ok=True)
    # the montage is renamed into place only after the landmark file is written: a failure of
    # either write leaves neither file
    with atomic_path(png) as tmp_png:
        save_detection_montage(image, detections, tmp_png, title=title)
        write_landmarks(out, detections.to_landmarks(), coordinate_system=coordinate_system)
    return png


def run(args) -> int:
    if args.out_dir is not None:
        from lm_zoo.commands.detect_cohort import run_cohort

        args.format = args.format or "mrk.json"
        return run_cohort(args)
    if args.format is not None:
        raise ValueError("--format applies to --out-dir; with --out the file type is the suffix of --out")
    if len(args.ct) != 1:
        raise ValueError(f"--out writes one scan's landmarks but {len(args.ct)} scans were given; "
                         f"use --out-dir OUT for several")
    ct = args.ct[0]
    from lm_zoo.detection import detect_landmarks

    out = Path(args.out)
    if not out.name.lower().endswith(SUFFIXES):
        raise ValueError(f"--out {out}: unknown landmark file type; use one of {', '.join(SUFFIXES)}")
    if out.exists() and out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name ending in {', '.join(SUFFIXES)}")
    search, names = search_options(args)
    from lm_zoo.io import read_image

    image = read_image(ct)  # read once: the detector and the montage share it
    detections = detect_landmarks(image, args.weights, source=str(ct), names=names, batch_size=args.batch_size,
                                  progress=not args.no_progress, search=search)
    print(detections.table())
    t = detections.timings
    print(f"{detections.n_patches} patches in {t['total_s']:.1f} s (extraction {t['extract_s']:.1f} s, "
          f"inference {t['inference_s']:.1f} s)")
    if not detections.found.any():
        raise ValueError(f"{ct}: no landmark found ({detections.summary()}); nothing written")
    png = write_results(image, detections, out, args.coordinate_system, Path(ct).name)
    print(f"wrote {out} ({int(detections.found.sum())} found landmarks, {args.coordinate_system}) and {png}")
    return 0
