"""``lm-zoo detect DIR_OR_FILES... --out-dir OUT``: the detector over a cohort of CT scans.

The weights are loaded once; one progress bar counts scans. Each scan's landmark file
(``<scan>.<format>``) and montage (``<scan>.png``) are written atomically into ``OUT`` as the
scan finishes, and ``OUT/summary.csv`` is rewritten (atomically) after every scan: a run of
hours interrupted at scan 150 keeps its first 149 results. A scan that cannot be used
(unreadable, not CT, a spacing the weights cannot use, no landmark found) is named on stderr
with the reason and in the summary, and the run goes on. ``OUT`` is locked for the run.

Scan names: a volume file's name without its suffix, a DICOM folder's name. Scans sharing a
name are told apart by their folders (``a/ct.nii.gz``, ``b/ct.nii.gz`` -> ``a_ct``, ``b_ct``);
names still equal get ``-2``, ``-3``, ... in path order.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

SUMMARY = "summary.csv"
COLUMNS = ("scan", "landmark", "status", "score", "x", "y", "z", "note", "path")


def scan_name(path: Path) -> str:
    """A scan's name: the volume file's name without its suffix, or the DICOM folder's name."""
    from lm_zoo.io import FILE_SUFFIXES

    name = path.name
    if path.is_dir():
        return name
    for suffix in sorted(FILE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def unique_names(paths: list[Path], reserved: set = frozenset()) -> list[str]:
    """One distinct output name per scan (see the module doc); ``reserved`` names are never used."""
    names = [scan_name(p) for p in paths]
    for name in set(names):
        group = [i for i, n in enumerate(names) if n == name]
        if len(group) < 2:
            continue
        parents = [paths[i].absolute().parent.parts for i in group]
        common = 0
        while all(len(p) > common and p[common] == parents[0][common] for p in parents):
            common += 1
        for i, parts in zip(group, parents):
            names[i] = "_".join([*parts[common:], name])
    out, used = [], set(reserved)
    for name in names:
        candidate, k = name, 1
        while candidate in used:
            k += 1
            candidate = f"{name}-{k}"
        used.add(candidate)
        out.append(candidate)
    return out


def _scans(given) -> list[Path]:
    from lm_zoo.training.unlabelled import find_scans

    scans = find_scans(given, argument="CT")
    if not scans:
        raise ValueError(f"{', '.join(map(str, given))}: no volume file (.nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr) "
                         f"and no DICOM series folder found")
    return scans


def _rows(name: str, path: Path, detections, system: str) -> list[dict]:
    from lm_zoo.landmarks import to_lps

    rows = []
    for n, p, s, st, r in zip(detections.names, detections.points, detections.scores, detections.status,
                              detections.reasons):
        p = to_lps(p, system)[0]  # the flip is its own inverse: LPS -> the file's system
        rows.append({"scan": name, "landmark": n, "status": st, "score": f"{s:.4f}",
                     "x": f"{p[0]:.2f}", "y": f"{p[1]:.2f}", "z": f"{p[2]:.2f}", "note": r, "path": str(path)})
    return rows


def _failed_row(name: str, path: Path, reason: str) -> dict:
    return {"scan": name, "landmark": "", "status": "failed", "score": "", "x": "", "y": "", "z": "",
            "note": reason, "path": str(path)}


def _write_summary(path: Path, rows: list[dict]) -> None:
    from lm_zoo._atomic import atomic_write_text

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def _detect_one(path: Path, name: str, out_dir: Path, model, args, search, names):
    """Detect and write one scan's files; returns its Detections. Raises on a scan that cannot be used."""
    from lm_zoo.commands.detect import write_results
    from lm_zoo.detection import detect_landmarks
    from lm_zoo.io import read_image

    image = read_image(path)
    detections = detect_landmarks(image, args.weights, source=str(path), names=names, batch_size=args.batch_size,
                                  search=search, model=model)
    if detections.found.any():
        write_results(image, detections, out_dir / f"{name}.{args.format}", args.coordinate_system, path.name)
    return detections


def run_cohort(args) -> int:
    """The cohort form of ``lm-zoo detect``; exit code 0 (all written), 1 (some failed), 2 (none written)."""
    from tqdm.auto import tqdm

    from lm_zoo.commands.detect import search_options
    from lm_zoo.errors import LmZooError
    from lm_zoo.outputs import check_output_dir, output_lock

    out_dir = check_output_dir(args.out_dir, argument="--out-dir")
    search, names = search_options(args)
    scans = _scans(args.ct)
    scan_names = unique_names(scans, reserved={"summary"} if args.format == "csv" else set())
    with output_lock(out_dir, argument="--out-dir"):
        from lm_zoo.applications import MiniVGG25D

        model = MiniVGG25D(weights=args.weights)  # once for the cohort
        out_dir.mkdir(parents=True, exist_ok=True)  # after the weights loaded: no empty folder left on a bad set
        rows, written, failed = [], 0, 0
        bar = tqdm(list(zip(scans, scan_names)), desc="detecting", unit="scan", disable=args.no_progress)
        try:
            for path, name in bar:
                try:
                    detections = _detect_one(path, name, out_dir, model, args, search, names)
                except (LmZooError, ValueError, OSError) as err:
                    failed += 1
                    rows.append(_failed_row(name, path, str(err)))
                    # the library's messages usually name the scan already
                    said = str(err) if str(path) in str(err) else f"{path}: {err}"
                    tqdm.write(f"lm-zoo detect: failed: {said}", file=sys.stderr)
                else:
                    rows += _rows(name, path, detections, args.coordinate_system)
                    n_found = int(detections.found.sum())
                    if n_found:
                        written += 1
                        seconds = detections.timings.get("total_s", 0.0)
                        tqdm.write(f"{name}: {detections.summary()} in {seconds:.1f} s "
                                   f"-> {name}.{args.format}, {name}.png")
                    else:
                        failed += 1
                        tqdm.write(f"lm-zoo detect: {path}: no landmark found ({detections.summary()}); "
                                   f"no landmark file written", file=sys.stderr)
                _write_summary(out_dir / SUMMARY, rows)
        except KeyboardInterrupt:
            bar.close()
            print(f"lm-zoo detect: interrupted after {written + failed} of {len(scans)} scans; their files and "
                  f"{SUMMARY} are in {out_dir}", file=sys.stderr)
            return 130
        bar.close()
    print(f"{len(scans)} scan{'' if len(scans) == 1 else 's'}: {written} written, {failed} failed; "
          f"summary in {out_dir / SUMMARY}")
    if failed == 0:
        return 0
    return 1 if written else 2
