"""``lm-zoo detect CT --out points.mrk.json``: find the landmarks of a weight set in a CT volume.

Writes the found landmarks (3D Slicer ``.mrk.json``, ``.fcsv`` or ``.csv`` by the suffix of
``--out``), a PNG montage beside it (``<out stem>.png``: coronal and sagittal MIPs with the points
labelled) and prints one row per landmark. Nothing is written until the detection has finished,
and both files are written to temporary paths and moved into place.
"""
from __future__ import annotations

from pathlib import Path

SUFFIXES = (".mrk.json", ".fcsv", ".csv")
# lm_zoo.cli imports TensorFlow quietly (no CUDA start-up noise) before run(): the detector needs it.
NEEDS_TENSORFLOW = True


def add_arguments(parser) -> None:
    from lm_zoo.commands.options import add_no_progress

    parser.add_argument("ct", help="CT volume in HU (NIfTI, MHA, NRRD file or a DICOM series folder)")
    parser.add_argument("--out", required=True, help="landmark file to write: .mrk.json, .fcsv or .csv")
    parser.add_argument("--weights", default="landmark", help="landmark weight set name or .weights.h5 (default: landmark)")
    parser.add_argument("--names", help="comma-separated landmark classes to search (default: all of the weight set's)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="score needed to report a landmark as found (default: the threshold calibrated for the "
                             "weights in their .detection.json, else 0.5; see lm_zoo.detection)")
    parser.add_argument("--batch-size", type=int, default=512, help="patches per extraction + inference batch")
    parser.add_argument("--coordinate-system", choices=["LPS", "RAS"], default="LPS",
                        help="coordinate system written in the landmark file (default LPS; Slicer reads both)")
    add_no_progress(parser)


def montage_path(out) -> Path:
    out = Path(out)
    name = out.name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return out.with_name(name[: -len(suffix)] + ".png")
    return out.with_name(name + ".png")


def run(args) -> int:
    import dataclasses

    from lm_zoo.detection import SearchParams, detect_landmarks, landmark_weight_set, save_detection_montage
    from lm_zoo.landmarks import write_landmarks

    out = Path(args.out)
    if not out.name.lower().endswith(SUFFIXES):
        raise ValueError(f"--out {out}: unknown landmark file type; use one of {', '.join(SUFFIXES)}")
    if out.exists() and out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name ending in {', '.join(SUFFIXES)}")
    landmark_weight_set(args.weights)  # refuse non-landmark weights before reading any volume
    search = SearchParams()
    if args.threshold is not None:
        search = dataclasses.replace(search, threshold=args.threshold)
    names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    from lm_zoo.io import read_image

    image = read_image(args.ct)  # read once: the detector and the montage share it
    detections = detect_landmarks(image, args.weights, source=str(args.ct), names=names, batch_size=args.batch_size,
                                  progress=not args.no_progress, search=search)
    print(detections.table())
    t = detections.timings
    print(f"{detections.n_patches} patches in {t['total_s']:.1f} s (extraction {t['extract_s']:.1f} s, "
          f"inference {t['inference_s']:.1f} s)")
    if not detections.found.any():
        raise ValueError(f"{args.ct}: no landmark scored >= {detections.threshold:g}; nothing written")
    png = montage_path(out)
    from lm_zoo._atomic import atomic_path

    png.parent.mkdir(parents=True, exist_ok=True)
    # the montage is renamed into place only after the landmark file is written: a failure of
    # either write leaves neither file
    with atomic_path(png) as tmp_png:
        save_detection_montage(image, detections, tmp_png, title=Path(args.ct).name)
        write_landmarks(out, detections.to_landmarks(), coordinate_system=args.coordinate_system)
    print(f"wrote {out} ({int(detections.found.sum())} landmarks, {args.coordinate_system}) and {png}")
    return 0
