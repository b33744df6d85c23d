"""Cohort folders: the on-disk layout of a set of cases, found, validated and split by case.

Users' real cohorts (a TFDS ``manual_dir``) and the phantom cohorts written by
``lm_zoo.phantoms.*.write_cohort`` share one layout, so the dataset builders read both through
the same code:

landmark cohort (torso CT)::

    images/<case_id>.<nii.gz|nii|mha|mhd|nrrd|nhdr>   or   images/<case_id>/  (one DICOM series)
    landmarks/<case_id>.<csv|fcsv|mrk.json|json>     (one file per image, see lm_zoo.landmarks)
    segmentations/<case_id>.nii.gz  or  segmentations/<case_id>/   (instead of a landmark file:
                                                     TotalSegmentator output, multi-label "total"
                                                     map or its folder of masks; landmarks are
                                                     derived by landmarks_from_segmentation)
    classes.txt                                      (optional: allowed landmark names, one a line)

aneurysm cohort (head TOF-MRA)::

    images/<case_id>.<...>  or  images/<case_id>/    (as above)
    aneurysms.csv   case_id,x,y,z,radius_mm,site     (LPS mm unless a ``# coordinate_system = RAS``
                                                     line precedes the header; one row per aneurysm)
    masks/<case_id>.nii.gz                           (alternative to aneurysms.csv: ADAM-style label
                                                     masks, label 1 = aneurysm, one per image)
    cases.txt                                        (optional: the case ids to use, one a line)

Every error names the offending case or file and what was expected.
"""
from __future__ import annotations

import csv
import hashlib
import io as _io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lm_zoo.errors import AneurysmTableError, CohortError, CohortNotFoundError
from lm_zoo.io import FILE_SUFFIXES
from lm_zoo.landmarks import parse_coordinate_system

__all__ = [
    "CohortError",
    "CohortNotFoundError",
    "LandmarkCase",
    "AneurysmCase",
    "Aneurysm",
    "AneurysmRow",
    "AneurysmTableError",
    "LANDMARK_FILE_SUFFIXES",
    "find_images",
    "read_class_names",
    "read_landmark_cohort",
    "read_case_landmarks",
    "is_segmentation",
    "read_aneurysm_cohort",
    "read_aneurysm_table",
    "aneurysms_from_mask",
    "split_cases",
    "split_exact",
    "case_seed",
    "phantom_cohort",
    "write_repeated_cohort",
]

# Suffixes longest first, so that "a.nii.gz" is case "a" (not "a.nii") and "a.mrk.json" is "a".
IMAGE_SUFFIXES = tuple(sorted(FILE_SUFFIXES, key=len, reverse=True))
# Pixel data of .mhd/.nhdr headers: not volumes of their own.
DETACHED_DATA_SUFFIXES = (".raw", ".zraw", ".raw.gz")
LANDMARK_FILE_SUFFIXES = (".mrk.json", ".fcsv", ".csv", ".json")
ANEURYSM_COLUMNS = ("case_id", "x", "y", "z", "radius_mm", "site")
# ADAM (Timmins et al. 2021) masks: 1 = untreated aneurysm, 2 = treated aneurysm (not a target).
ADAM_ANEURYSM_LABEL = 1

LANDMARK_LAYOUT = (
    "images/<case_id>.<nii.gz|nii|mha|mhd|nrrd|nhdr> (or images/<case_id>/ holding one DICOM series), "
    "landmarks/<case_id>.<csv|fcsv|mrk.json|json> or segmentations/<case_id>.nii.gz | segmentations/<case_id>/ "
    "(TotalSegmentator output), optional classes.txt"
)
SEGMENTATION_SUFFIXES = (".nii.gz", ".nii", ".mha", ".nrrd")
ANEURYSM_LAYOUT = (
    "images/<case_id>.<nii.gz|nii|mha|mhd|nrrd|nhdr> (or images/<case_id>/ holding one DICOM series), "
    "aneurysms.csv (case_id,x,y,z,radius_mm,site) or masks/<case_id>.nii.gz, optional cases.txt"
)


@dataclass(frozen=True)
class LandmarkCase:
    """One case of a landmark cohort: paths are strings so that the case pickles for Beam."""

    case_id: str
    image: str
    landmarks: str


@dataclass(frozen=True)
class Aneurysm:
    """One aneurysm, LPS mm: the record of annotation tables, masks and the phantom generator."""

    center_lps: tuple[float, float, float]
    radius_mm: float
    site: str = ""

    def __post_init__(self):
        # Plain floats whatever the caller passed (an array, ints), so records compare and hash.
        center = tuple(float(v) for v in np.asarray(self.center_lps, dtype=float).reshape(3))
        object.__setattr__(self, "center_lps", center)
        object.__setattr__(self, "radius_mm", float(self.radius_mm))
        object.__setattr__(self, "site", str(self.site))


AneurysmRow = Aneurysm  # the name this record had before it was shared with lm_zoo.phantoms.head_mra


@dataclass(frozen=True)
class AneurysmCase:
    """One case of an aneurysm cohort: CSV rows (possibly none) or a label mask path."""

    case_id: str
    image: str
    aneurysms: tuple[Aneurysm, ...] = ()
    mask: str | None = None


# ------------------------------------------------------------------------------ discovery
def _split_suffix(name: str, suffixes) -> tuple[str, str] | None:
    lower = name.lower()
    for suffix in suffixes:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return None


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _require_dir(path: Path, what: str, layout: str) -> None:
    if not path.is_dir():
        raise CohortNotFoundError(f"{what} not found: {path} (expected layout: {layout})")


def find_images(images_dir, layout: str = LANDMARK_LAYOUT) -> dict[str, str]:
    """{case_id: path} of the volumes in ``images_dir``: image files and DICOM series folders.

    A file with another suffix, or two volumes with the same case id (``a.nii.gz`` and ``a.mha``),
    is a CohortError naming both.
    """
    images_dir = Path(images_dir)
    _require_dir(images_dir, "images folder", layout)
    found: dict[str, str] = {}
    for path in _visible(images_dir):
        if path.is_dir():
            case_id = path.name
        else:
            if path.name.lower().endswith(DETACHED_DATA_SUFFIXES):
                continue  # pixel data of a .mhd/.nhdr header; SimpleITK finds it via the header
            parts = _split_suffix(path.name, IMAGE_SUFFIXES)
            if parts is None:
                raise CohortError(
                    f"{path}: not a volume file; images/ holds <case_id> with suffix one of "
                    f"{', '.join(IMAGE_SUFFIXES)} or <case_id>/ DICOM folders"
                )
            case_id = parts[0]
        if case_id in found:
            raise CohortError(
                f"duplicate case id {case_id!r}: {found[case_id]} and {path}; each case must have "
                "exactly one volume in images/"
            )
        found[case_id] = str(path)
    if not found:
        raise CohortNotFoundError(f"images folder {images_dir} holds no volume (expected layout: {layout})")
    return found


def read_class_names(path) -> list[str]:
    """Names in a ``classes.txt``: one a line; ``#`` comments and blank lines skipped; text after a
    tab is an optional free-text definition. Duplicates are a CohortError."""
    path = Path(path)
    names: list[str] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        name = line.split("\t", 1)[0].strip()
        if not name or name.startswith("#"):
            continue
        if name in names:
            raise CohortError(f"{path}:{line_no}: class {name!r} listed twice")
        names.append(name)
    if not names:
        raise CohortError(f"{path}: lists no class name (one name per line)")
    return names


def read_case_list(path: Path) -> list[str]:
    """The case ids of a ``cases.txt`` (one per line, ``#`` comments), refusing duplicates and none."""
    ids = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    ids = [i for i in ids if i and not i.startswith("#")]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CohortError(f"{path}: case ids listed twice: {duplicates}")
    if not ids:
        raise CohortError(f"{path}: lists no case id (one per line)")
    return ids


def check_root(root, layout: str) -> Path:
    """``root`` as a Path if it is a non-empty folder, else CohortNotFoundError naming ``layout``."""
    if root is None:
        raise CohortNotFoundError(f"no cohort folder given (expected layout: {layout})")
    root = Path(os.fspath(root))
    if not root.is_dir():
        raise CohortNotFoundError(f"cohort folder not found: {root} (expected layout: {layout})")
    if not any(True for _ in _visible(root)):
        raise CohortNotFoundError(f"cohort folder {root} is empty (expected layout: {layout})")
    return root


def read_landmark_cohort(root) -> tuple[list[LandmarkCase], list[str] | None]:
    """Cases (sorted by id) of a landmark cohort folder and the names in ``classes.txt`` (or None).

    Every image must have exactly one landmark file or, failing that, one TotalSegmentator
    segmentation (``segmentations/<case_id>.nii.gz`` or a ``segmentations/<case_id>/`` folder of
    masks; see :func:`read_case_landmarks`); every annotation must have an image. A hand-placed
    landmark file wins over a segmentation of the same case.
    """
    root = check_root(root, LANDMARK_LAYOUT)
    images = find_images(root / "images", LANDMARK_LAYOUT)
    landmarks_dir = root / "landmarks"
    segmentations_dir = root / "segmentations"
    if not segmentations_dir.is_dir():
        _require_dir(landmarks_dir, "landmarks folder", LANDMARK_LAYOUT)
    annotations: dict[str, str] = {}
    for path in _visible(landmarks_dir) if landmarks_dir.is_dir() else []:
        parts = _split_suffix(path.name, LANDMARK_FILE_SUFFIXES)
        if parts is None or path.is_dir():
            raise CohortError(
                f"{path}: not a landmark file; landmarks/ holds <case_id> with suffix one of "
                f"{', '.join(LANDMARK_FILE_SUFFIXES)}"
            )
        case_id = parts[0]
        if case_id in annotations:
            raise CohortError(f"case {case_id!r} has two landmark files: {annotations[case_id]} and {path}")
        annotations[case_id] = str(path)
    segmentations: dict[str, str] = {}
    for path in _visible(segmentations_dir) if segmentations_dir.is_dir() else []:
        parts = (path.name, "") if path.is_dir() else _split_suffix(path.name, SEGMENTATION_SUFFIXES)
        if parts is None:
            raise CohortError(
                f"{path}: not a segmentation; segmentations/ holds <case_id>.<{'|'.join(s[1:] for s in SEGMENTATION_SUFFIXES)}> "
                "(a TotalSegmentator multi-label map) or <case_id>/ (its folder of masks)"
            )
        if parts[0] in segmentations:
            raise CohortError(f"case {parts[0]!r} has two segmentations: {segmentations[parts[0]]} and {path}")
        segmentations[parts[0]] = str(path)
    hand_placed = set(annotations)
    for case_id, path in segmentations.items():
        annotations.setdefault(case_id, path)
    _check_pairs(images, annotations, hand_placed, root)
    classes_path = root / "classes.txt"
    classes = read_class_names(classes_path) if classes_path.exists() else None
    cases = [LandmarkCase(cid, images[cid], annotations[cid]) for cid in sorted(images)]
    return cases, classes


def _check_pairs(images: dict, annotations: dict, hand_placed: set, root: Path) -> None:
    """CohortError naming the cases with an image but no annotation, else those with an annotation
    (a landmark file in ``hand_placed``, or a segmentation) but no image."""
    no_landmarks = sorted(set(images) - set(annotations))
    no_image = sorted(set(annotations) - set(images))
    if no_landmarks:
        problem = (f"case(s) {no_landmarks} have an image but no landmark file in {root / 'landmarks'} "
                   f"(expected landmarks/<case_id>.<{'|'.join(s[1:] for s in LANDMARK_FILE_SUFFIXES)}>) and no "
                   f"segmentation in {root / 'segmentations'}")
    elif no_image:
        kind = "landmark file" if no_image[0] in hand_placed else "segmentation"
        problem = f"case(s) {no_image} have a {kind} but no image in {root / 'images'} (first: {annotations[no_image[0]]})"
    else:
        return
    raise CohortError(problem)


def is_segmentation(annotation: str) -> bool:
    """Whether a case's annotation path is a TotalSegmentator segmentation (a ``segmentations/``
    entry), not a landmark file."""
    path = Path(annotation)
    return path.parent.name == "segmentations" and (path.is_dir() or _split_suffix(path.name, SEGMENTATION_SUFFIXES) is not None)


def read_case_landmarks(annotation: str, image=None):
    """The landmarks of a case annotation: a landmark file (:func:`lm_zoo.landmarks.read_landmarks`)
    or a TotalSegmentator segmentation (:func:`lm_zoo.landmarks.landmarks_from_segmentation`,
    checked against ``image``'s grid when given)."""
    from lm_zoo.landmarks import landmarks_from_segmentation, read_landmarks

    if is_segmentation(annotation):
        return landmarks_from_segmentation(annotation, image=image)
    return read_landmarks(annotation, image=image)


# ------------------------------------------------------------------------------ aneurysms
def read_aneurysm_table(path) -> dict[str, list[Aneurysm]]:
    """Rows of an ``aneurysms.csv`` grouped by case id, converted to LPS mm.

    Columns ``case_id,x,y,z,radius_mm,site`` (``site`` may be empty or absent). Coordinates are LPS
    unless a ``# coordinate_system = RAS`` comment line precedes the header row. A UTF-8 byte-order
    mark is skipped; two rows with the same case and centre (to 0.01 mm) are an AneurysmTableError
    naming both lines. Errors give the line number in the file. Cases without aneurysm have no row.
    The one reader of this table (cohorts, phantoms, tests).
    """
    path = Path(path)
    system = "LPS"
    body_lines, line_numbers = [], []
    for file_line, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            key, _, value = stripped.lstrip("#").partition("=")
            if key.strip().lower().replace(" ", "_") in ("coordinate_system", "coordinatesystem"):
                system = parse_coordinate_system(value, path, error=AneurysmTableError)
            continue
        if stripped:
            body_lines.append(line)
            line_numbers.append(file_line)
    reader = csv.DictReader(_io.StringIO("\n".join(body_lines)))
    missing = [c for c in ANEURYSM_COLUMNS[:5] if c not in (reader.fieldnames or [])]
    if missing:
        raise AneurysmTableError(
            f"{path}: missing column(s) {missing}; header must be {','.join(ANEURYSM_COLUMNS)}"
        )
    table: dict[str, list[Aneurysm]] = {}
    flip = np.array([-1.0, -1.0, 1.0]) if system == "RAS" else np.ones(3)
    seen: dict[tuple, int] = {}
    for row_index, row in enumerate(reader, start=1):
        line_no = line_numbers[row_index] if row_index < len(line_numbers) else row_index + 1
        case_id = (row["case_id"] or "").strip()
        try:
            xyz = np.array([float(row[k]) for k in ("x", "y", "z")]) * flip
            radius = float(row["radius_mm"])
        except (TypeError, ValueError):
            raise AneurysmTableError(f"{path}: line {line_no} (case {case_id!r}) has a non-numeric x, y, z or radius_mm") from None
        if not case_id or not np.isfinite(xyz).all() or not np.isfinite(radius) or radius <= 0:
            raise AneurysmTableError(
                f"{path}: line {line_no} (case {case_id!r}) needs a case_id, finite x, y, z and radius_mm > 0"
            )
        # The same centre twice in one case would sample one aneurysm twice: refused (not
        # collapsed), since a copy-paste slip may hide a missing second aneurysm.
        key = (case_id, *np.round(xyz, 2).tolist())
        if key in seen:
            raise AneurysmTableError(
                f"{path}: line {line_no} repeats the aneurysm of line {seen[key]} (case {case_id!r}, centre "
                f"{np.round(xyz, 2).tolist()} LPS mm); list each aneurysm once"
            )
        seen[key] = line_no
        site = (row.get("site") or "").strip()
        table.setdefault(case_id, []).append(Aneurysm(tuple(float(v) for v in xyz), radius, site))
    return table


def aneurysms_from_mask(mask, label: int = ADAM_ANEURYSM_LABEL) -> list[Aneurysm]:
    """One aneurysm per connected component of ``mask == label``: centroid (LPS mm) and the radius
    of the sphere of equal volume. ``mask`` is a SimpleITK image or a path."""
    import SimpleITK as sitk

    from lm_zoo.io import read_image

    image = read_image(mask)
    binary = sitk.Equal(sitk.Cast(image, sitk.sitkInt32), int(label))
    components = sitk.ConnectedComponent(binary)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(components)
    rows = []
    for component in sorted(stats.GetLabels()):
        volume = stats.GetPhysicalSize(component)
        radius = float((3.0 * volume / (4.0 * np.pi)) ** (1.0 / 3.0))
        rows.append(Aneurysm(tuple(float(v) for v in stats.GetCentroid(component)), radius, ""))
    return rows


def _refuse_extra(ids, known, message) -> None:
    """CohortError ``message(extra)`` when ``ids`` holds ids outside ``known`` (sorted)."""
    extra = sorted(set(ids) - set(known))
    if extra:
        raise CohortError(message(extra))


def read_aneurysm_cohort(root) -> list[AneurysmCase]:
    """Cases (sorted by id) of an aneurysm cohort folder.

    Annotations come from ``aneurysms.csv`` when present (cases without a row have no aneurysm),
    else from ``masks/<case_id>.nii.gz`` (one per image). ``cases.txt``, when present, selects the
    cases; each listed case must have an image.
    """
    root = check_root(root, ANEURYSM_LAYOUT)
    images = find_images(root / "images", ANEURYSM_LAYOUT)
    selected = sorted(images)
    cases_path = root / "cases.txt"
    if cases_path.exists():
        listed = read_case_list(cases_path)
        _refuse_extra(listed, images, lambda ids: f"{cases_path}: case(s) {ids} have no image in {root / 'images'}")
        selected = sorted(listed)
    table_path = root / "aneurysms.csv"
    masks_dir = root / "masks"
    if table_path.exists():
        table = read_aneurysm_table(table_path)
        _refuse_extra(table, images, lambda ids: f"{table_path}: case(s) {ids} have no image in {root / 'images'}")
        _refuse_extra(table, selected,
                      lambda ids: f"{table_path}: case(s) {ids} are annotated but not listed in {cases_path}")
        return [AneurysmCase(cid, images[cid], tuple(table.get(cid, ()))) for cid in selected]
    if masks_dir.is_dir():
        masks: dict[str, str] = {}
        for path in _visible(masks_dir):
            parts = _split_suffix(path.name, IMAGE_SUFFIXES)
            if parts is None:
                raise CohortError(f"{path}: not a mask volume; masks/ holds <case_id>.nii.gz label masks")
            if parts[0] in masks:
                raise CohortError(f"case {parts[0]!r} has two masks: {masks[parts[0]]} and {path}")
            masks[parts[0]] = str(path)
        _refuse_extra(selected, masks, lambda ids: f"case(s) {ids} have an image but no mask in {masks_dir}")
        _refuse_extra(masks, images, lambda ids: f"case(s) {ids} have a mask but no image in {root / 'images'}")
        return [AneurysmCase(cid, images[cid], (), masks[cid]) for cid in selected]
    raise CohortNotFoundError(
        f"no annotations in {root}: neither aneurysms.csv nor masks/ found (expected layout: {ANEURYSM_LAYOUT})"
    )


# ------------------------------------------------------------------------------ splits, seeds
def case_seed(seed: int, case_id: str) -> int:
    """A per-case seed that depends only on ``seed`` and the case id (not on case order), so a
    case's examples are the same whichever worker builds them (:func:`lm_zoo.seeds.case_seed`)."""
    from lm_zoo.seeds import case_seed as _seed

    return _seed(seed, case_id)


def _split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of ``n * fraction``; every split with a positive fraction gets at
    least one case when there are enough cases."""
    names = list(fractions)
    exact = np.array([fractions[k] for k in names], dtype=float) * n
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    positive = [i for i, k in enumerate(names) if fractions[k] > 0]
    if n >= len(positive):
        for i in positive:
            if counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] = 1
    return dict(zip(names, counts.tolist()))


def split_cases(case_ids, fractions: dict[str, float], seed: int, strata: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Assign whole cases to splits: {split: sorted case ids}, no case in two splits.

    Cases are shuffled with ``seed`` (after sorting, so the input order does not matter) and cut
    by ``fractions`` (normalised); with ``strata`` ({case_id: group}) each group is cut on its own
    so that e.g. aneurysm and aneurysm-free cases are spread over the splits alike. Splits that
    receive no case are omitted.
    """
    ids = sorted(set(case_ids))
    if len(ids) != len(list(case_ids)):
        raise CohortError("split_cases: duplicate case ids")
    total = float(sum(fractions.values()))
    if total <= 0 or any(v < 0 for v in fractions.values()):
        raise ValueError(f"split_cases: fractions must be >= 0 with a positive sum, got {fractions}")
    fractions = {k: v / total for k, v in fractions.items()}
    groups: dict[str, list[str]] = {}
    for cid in ids:
        groups.setdefault((strata or {}).get(cid, ""), []).append(cid)
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {k: [] for k in fractions}
    for group in sorted(groups):
        members = [groups[group][i] for i in rng.permutation(len(groups[group]))]
        start = 0
        for name, count in _split_counts(len(members), fractions).items():
            out[name].extend(members[start : start + count])
            start += count
    return {k: sorted(v) for k, v in out.items() if v}


def split_exact(case_ids, counts: dict[str, int], seed: int, strata: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Like :func:`split_cases` but with exact case counts per split (e.g. 100 train / 50 test);
    the counts must add up to the number of cases."""
    ids = sorted(set(case_ids))
    if sum(counts.values()) != len(ids):
        raise CohortError(f"split_exact: counts {counts} do not add up to {len(ids)} cases")
    return split_cases(ids, {k: v / len(ids) for k, v in counts.items()}, seed, strata)


# ------------------------------------------------------------------------------ phantom cohorts
_SOURCE_DIGESTS: dict[str, str] = {}


def _source_digest(module) -> str:
    """Digest of the Python sources beside ``module`` (the phantom and its helper modules, e.g.
    torso_anatomy.py, _vessel_tree.py), once per process: a file edited during a build must not
    change the cache key half-way."""
    from lm_zoo.digests import files_digest

    if module.__name__ not in _SOURCE_DIGESTS:
        sources = sorted(Path(module.__file__).parent.glob("*.py"))
        _SOURCE_DIGESTS[module.__name__] = files_digest([(path.name, path) for path in sources])[:12]
    return _SOURCE_DIGESTS[module.__name__]


def phantom_cohort(cache_root, module, n_cases: int, seed: int, runtime_kwargs=None, **kwargs) -> Path:
    """Folder of a phantom cohort written by ``module.write_cohort(out_dir, n_cases, seed, **kwargs,
    **runtime_kwargs)``, written once under ``cache_root`` and reused.

    ``kwargs`` change the cohort's content and go into the folder name, with a digest of the phantom
    package's sources so that a changed generator never reuses an old cohort; ``runtime_kwargs``
    (workers, progress bars, montages) do not. The cohort is written to a temporary sibling and
    renamed, so an interrupted build never leaves a half-written cohort that a later build trusts.
    """
    cache_root = Path(os.fspath(cache_root))
    args = ",".join(f"{k}={kwargs[k]}" for k in sorted(kwargs))
    key = hashlib.sha256(f"{n_cases}|{seed}|{args}|{_source_digest(module)}".encode()).hexdigest()[:16]
    name = module.__name__.rsplit(".", 1)[-1]
    target = cache_root / f"{name}-n{n_cases}-seed{seed}-{key}"
    if target.is_dir():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_root))
    try:
        module.write_cohort(tmp, n_cases, seed=seed, **kwargs, **(runtime_kwargs or {}))
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.is_dir():  # a concurrent build may have won the race: theirs is as good
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# ------------------------------------------------------------------------------ one-subject cohorts
def write_repeated_cohort(out_dir, n_cases: int, source, *, copy: bool = False) -> list[str]:
    """Write ``out_dir`` as a healthy cohort (``images/``, ``cases.txt``, ``SOURCE.txt``) of
    ``n_cases`` case ids ``<stem>_000`` ... that all hold the one volume ``source`` (symbolic links,
    or copies with ``copy``); returns the case ids. Refuses a missing or unreadable source, and an
    ``out_dir`` that already holds an ``images/`` folder (a half-old cohort would change the cache
    key silently). Used to insert aneurysms into one real subject (mra_aneurysm_patches/inserted)."""
    from lm_zoo.outputs import staged_output

    if isinstance(n_cases, bool) or not isinstance(n_cases, int) or n_cases < 3:
        # 2/3 : 1/3 split stratified by aneurysm: fewer than 3 cases leave a split empty.
        raise CohortError(f"--cases must be an integer >= 3, got {n_cases!r}")
    source = Path(source).expanduser().absolute()
    stem, suffix = _single_file_volume(source)
    out = Path(out_dir)
    if (out / "images").exists():
        raise CohortError(f"--out {out} already holds images/: remove it or choose another folder")
    ids = [f"{stem}_{k:03d}" for k in range(n_cases)]
    with staged_output(out, argument="--out") as tmp:
        (tmp / "images").mkdir()
        for cid in ids:
            target = tmp / "images" / f"{cid}{suffix}"
            if copy:
                shutil.copyfile(source, target)
            else:
                target.symlink_to(source)
        (tmp / "cases.txt").write_text("".join(f"{c}\n" for c in ids))
        (tmp / "SOURCE.txt").write_text(
            f"{n_cases} case ids, every one the same healthy volume {source} ({'copies' if copy else 'symbolic links'}).\n"
            "One real subject: the inserted config inserts aneurysms per case id (distinct insertions), the split\n"
            "is by case id, but all cases share the subject's anatomy (see benchmarks/inserted_mra.py overlap).\n"
            "chris_MRA: real TOF-MRA, Chris Rorden (niivue-images), CC BY-NC 4.0: attribution, non-commercial.\n")
    return ids


def _single_file_volume(source: Path) -> tuple[str, str]:
    """(stem, suffix) of a readable one-file volume; CohortNotFoundError / CohortError otherwise."""
    from lm_zoo.io import read_image

    if not source.is_file():
        raise CohortNotFoundError(f"source volume {source} not found (set LM_ZOO_SHARED_DATA, or pass --source)")
    parts = _split_suffix(source.name, IMAGE_SUFFIXES)
    if parts is None or source.name.lower().endswith((".mhd", ".nhdr")):
        raise CohortError(f"source volume {source}: not a single-file volume ({', '.join(IMAGE_SUFFIXES)}; "
                          "not .mhd/.nhdr, whose pixel data sits in a second file)")
    try:
        read_image(source)  # the whole volume: a truncated one is refused now, not by every later build
    except ValueError as err:
        raise CohortError(f"source volume {source}: not readable as a volume: {err}") from None
    return parts
