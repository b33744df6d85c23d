"""Landmark annotation files <-> names + LPS millimetre points, label-map centroids, negatives.

Inside the package every point is LPS mm (SimpleITK's physical space). RAS (3D Slicer's
default) and voxel indices (VerSe centroid files) are converted here, at the file edge.

Formats (chosen by suffix):
- ``.csv``: ``name,x,y,z`` with an optional ``# coordinate_system = LPS|RAS`` line before the header
  row (LPS when absent);
- ``.fcsv``: 3D Slicer markups fiducial CSV, v4 (``# CoordinateSystem = 0|1``) and v5
  (``# CoordinateSystem = RAS|LPS``) headers; the name is the ``label`` column;
- ``.mrk.json`` (or a Slicer markups ``.json``): ``markups[*].coordinateSystem`` RAS/LPS;
- VerSe centroid ``.json`` (a list starting with ``{"direction": [...]}``): voxel indices of the
  mask in i, j, k order, converted with the geometry of ``image`` (required).

Text files may start with a UTF-8 byte-order mark (Excel, Windows tools). A name given twice in
one file is refused (naming both lines), not collapsed: which of the two points is right is the
annotator's call. A ``.mrk.json`` markup without ``coordinateSystem`` is read as LPS (Slicer's
default since 4.11) with a warning naming the file.
"""
from __future__ import annotations

import csv
import io as _io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lm_zoo._atomic import atomic_write_text
from lm_zoo.errors import LmZooError
from lm_zoo.io import inside_grid, physical_points

__all__ = [
    "Landmarks",
    "to_lps",
    "LandmarkFileError",
    "read_landmarks",
    "write_landmarks",
    "label_centroids",
    "verse_label_name",
    "axis_codes",
    "body_mask",
    "sample_negatives",
    "landmarks_from_segmentation",
    "COORDINATE_SYSTEMS",
    "parse_coordinate_system",
]

COORDINATE_SYSTEMS = ("LPS", "RAS")
_RAS_FLIP = np.array([-1.0, -1.0, 1.0])
# Slicer's legacy numeric codes in fcsv headers.
_SLICER_CODES = {"0": "RAS", "1": "LPS"}
_FCSV_COLUMNS = ["id", "x", "y", "z", "ow", "ox", "oy", "oz", "vis", "sel", "lock", "label", "desc", "associatedNodeID"]


class LandmarkFileError(LmZooError, ValueError):
    """A landmark file or landmark set that cannot be used as is."""


@dataclass
class Landmarks:
    """Named points in LPS millimetres. ``points`` is (N, 3) float64, ``names`` unique."""

    names: list[str]
    points: np.ndarray = field(repr=False)

    def __post_init__(self):
        self.names = [str(n) for n in self.names]
        points = np.asarray(self.points, dtype=np.float64)
        if points.size == 0:
            points = points.reshape(0, 3)
        if points.ndim != 2 or points.shape[1] != 3:
            raise LandmarkFileError(f"Landmarks: points must be (N, 3), got shape {points.shape}")
        if len(self.names) != len(points):
            raise LandmarkFileError(f"Landmarks: {len(self.names)} names but {len(points)} points")
        duplicates = sorted({n for n in self.names if self.names.count(n) > 1})
        if duplicates:
            raise LandmarkFileError(f"Landmarks: duplicate names {duplicates}; names must be unique")
        bad = ~np.isfinite(points).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise LandmarkFileError(
                f"Landmarks: {int(bad.sum())} point(s) with NaN/inf coordinates, first {self.names[i]!r} = {points[i].tolist()}"
            )
        self.points = points

    def __len__(self) -> int:
        return len(self.names)

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(self.names, self.points))

    def subset(self, names) -> "Landmarks":
        """The landmarks named in ``names`` (in that order); KeyError names the missing ones."""
        lookup = self.as_dict()
        missing = [n for n in names if n not in lookup]
        if missing:
            raise KeyError(f"landmarks not present: {missing}")
        return Landmarks(list(names), np.array([lookup[n] for n in names]).reshape(-1, 3))


# ----------------------------------------------------------------------------------- reading
def read_landmarks(path, image=None, *, name_field: str = "label") -> Landmarks:
    """Read a landmark file (format by suffix, see the module doc) as LPS mm.

    ``image`` (SimpleITK.Image or path) is needed for VerSe centroid files, whose coordinates are
    voxel indices (only those files read a path's volume). When ``image`` is a loaded
    ``SimpleITK.Image``, any format also gets one warning per file for landmarks outside the
    volume (often a RAS/LPS mix-up). ``name_field`` picks the Slicer column used as
    name (``label`` or ``desc`` / ``description``), e.g. ``desc`` for AFIDs files whose labels are
    numbers.
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"landmark file not found: {path}")
    name = path.name.lower()
    if not path.is_dir() and not path.read_bytes().lstrip(b"\xef\xbb\xbf").strip():
        raise LandmarkFileError(f"{path}: landmark file is empty ({path.stat().st_size} bytes)")
    try:
        if name.endswith(".fcsv"):
            landmarks = _read_fcsv(path, name_field)
        elif name.endswith(".csv"):
            landmarks = _read_csv(path)
        elif name.endswith(".json"):
            landmarks = _read_json(path, image, name_field)
        else:
            raise LandmarkFileError(f"{path}: unknown landmark file type; use .csv, .fcsv, .mrk.json or VerSe .json")
    except LandmarkFileError as err:
        message = str(err)
        if str(path) not in message:
            message = f"{path}: {message}"
        raise LandmarkFileError(message) from None
    except (UnicodeDecodeError, csv.Error, KeyError, TypeError, AttributeError) as err:
        raise LandmarkFileError(f"{path}: not a readable landmark file ({type(err).__name__}: {err})") from None
    if len(landmarks) == 0:
        raise LandmarkFileError(f"{path}: file holds no landmarks")
    if isinstance(image, sitk.Image):
        _warn_outside(path, landmarks, image)
    return landmarks


def _warn_outside(path: Path, landmarks: Landmarks, image: sitk.Image) -> None:
    outside = np.flatnonzero(~inside_grid(image, landmarks.points))
    if outside.size:
        i = int(outside[0])
        warnings.warn(
            f"{path}: {outside.size} of {len(landmarks)} landmark(s) lie outside the volume (first "
            f"{landmarks.names[i]!r} at LPS {np.round(landmarks.points[i], 2).tolist()}); check the "
            "coordinate system (LPS unless the file says RAS)",
            stacklevel=3,
        )


def parse_coordinate_system(value: str, path, error: type[Exception] = LandmarkFileError) -> str:
    """``"LPS"`` or ``"RAS"`` from a file's coordinate-system header value (``# coordinate_system =``,
    fcsv ``# CoordinateSystem =`` with Slicer's codes 0=RAS, 1=LPS, markups ``coordinateSystem``).

    The one parser of that header for every table the package reads; ``error`` (raised with a
    message naming ``path`` and the value) lets each reader keep its own error class.
    """
    value = value.strip().strip('"').upper()
    value = _SLICER_CODES.get(value, value)
    if value not in COORDINATE_SYSTEMS:
        raise error(
            f"{path}: unknown coordinate system {value!r}; allowed {list(COORDINATE_SYSTEMS)} (fcsv codes 0=RAS, 1=LPS)"
        )
    return value


def to_lps(points: np.ndarray, system: str) -> np.ndarray:
    """``(N, 3)`` points given in ``system`` ("LPS" or "RAS") as LPS; the x, y flip is its own
    inverse, so the same call expresses LPS points in RAS."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return points * _RAS_FLIP if system == "RAS" else points


def _split_header(path: Path) -> tuple[dict[str, str], list[str], list[int]]:
    """``# key = value`` comment lines before the data, the remaining lines and their line numbers
    (1-based, in the file). A UTF-8 byte-order mark is skipped."""
    header, body, line_numbers = {}, [], []
    for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if line.startswith("#") and not body:
            key, sep, value = line[1:].partition("=")
            if sep:
                header[key.strip().lower().replace(" ", "_")] = value.strip()
        elif line.strip():
            body.append(line)
            line_numbers.append(line_no)
    return header, body, line_numbers


def _refuse_duplicates(path: Path, names: list[str], line_numbers: list[int]) -> None:
    """LandmarkFileError naming the lines of the first name given twice."""
    first: dict[str, int] = {}
    for name, line_no in zip(names, line_numbers):
        if name in first:
            raise LandmarkFileError(
                f"{path}: landmark {name!r} appears twice, on lines {first[name]} and {line_no}; "
                "each name must appear once (remove the duplicate row)"
            )
        first[name] = line_no


def _parse_point(row: dict, path: Path, line_no) -> list[float]:
    try:
        return [float(row["x"]), float(row["y"]), float(row["z"])]
    except (TypeError, ValueError, KeyError):
        raise LandmarkFileError(f"{path}: line {line_no}: x, y, z must be numbers, got {row}") from None


def _read_csv(path: Path) -> Landmarks:
    header, body, line_numbers = _split_header(path)
    system = parse_coordinate_system(header.get("coordinate_system", header.get("coordinatesystem", "LPS")), path)
    rows = list(csv.DictReader(_io.StringIO("\n".join(body)), skipinitialspace=True))
    if rows and not {"name", "x", "y", "z"} <= set(rows[0]):
        raise LandmarkFileError(f"{path}: CSV needs columns name,x,y,z, got {list(rows[0])}")
    names = [row["name"].strip() for row in rows]
    points = [_parse_point(row, path, line_numbers[i + 1]) for i, row in enumerate(rows)]
    _refuse_duplicates(path, names, line_numbers[1:])
    return Landmarks(names, to_lps(points, system))


def _read_fcsv(path: Path, name_field: str) -> Landmarks:
    header, body, line_numbers = _split_header(path)
    if "coordinatesystem" not in header:
        raise LandmarkFileError(f"{path}: fcsv header has no '# CoordinateSystem = ...' line")
    system = parse_coordinate_system(header["coordinatesystem"], path)
    columns = [c.strip() for c in header.get("columns", ",".join(_FCSV_COLUMNS)).split(",")]
    field_name = {"description": "desc"}.get(name_field, name_field)
    if field_name not in columns:
        raise LandmarkFileError(f"{path}: no column {name_field!r}; columns are {columns}")
    rows = list(csv.DictReader(_io.StringIO("\n".join(body)), fieldnames=columns))
    names = [row[field_name] for row in rows]
    points = [_parse_point(row, path, line_numbers[i]) for i, row in enumerate(rows)]
    _refuse_duplicates(path, names, line_numbers)
    return Landmarks(names, to_lps(points, system))


def _read_json(path: Path, image, name_field: str) -> Landmarks:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise LandmarkFileError(f"{path}: not valid JSON: {err}") from None
    if isinstance(data, dict) and "markups" in data:
        return _read_markups_json(data, path, name_field)
    if isinstance(data, list):
        return _read_verse_json(data, path, image)
    raise LandmarkFileError(f"{path}: JSON is neither Slicer markups (key 'markups') nor a VerSe centroid list")


def _read_markups_json(data: dict, path: Path, name_field: str) -> Landmarks:
    field_name = {"desc": "description"}.get(name_field, name_field)
    names, points = [], []
    for markup in data["markups"]:
        if "coordinateSystem" not in markup:
            warnings.warn(
                f"{path}: markup has no 'coordinateSystem'; its points are taken as LPS (Slicer's default "
                "since 4.11); add \"coordinateSystem\": \"RAS\" or \"LPS\" to the file to silence this",
                stacklevel=4,
            )
        system = parse_coordinate_system(markup.get("coordinateSystem", "LPS"), path)
        for point in markup.get("controlPoints", []):
            if "position" not in point:
                continue  # an undefined (unplaced) control point
            position = point["position"]
            if len(position) != 3:
                raise LandmarkFileError(f"control point {point.get('label', '?')!r}: position {position} is not x, y, z")
            names.append(point.get(field_name, ""))
            points.append(to_lps(position, system)[0])
    return Landmarks(names, np.array(points).reshape(-1, 3))


_VERSE_NAMES = (
    [f"vertebra_c{i}" for i in range(1, 8)]
    + [f"vertebra_t{i}" for i in range(1, 13)]
    + [f"vertebra_l{i}" for i in range(1, 7)]
    + ["sacrum", "coccyx", "vertebra_t13"]
)


def verse_label_name(label: int) -> str:
    """VerSe label number -> snake_case name (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, 27 coccyx, 28 T13)."""
    if not 1 <= int(label) <= len(_VERSE_NAMES):
        raise LandmarkFileError(f"VerSe label {label} is outside 1..{len(_VERSE_NAMES)}")
    return _VERSE_NAMES[int(label) - 1]


def _read_verse_json(data: list, path: Path, image) -> Landmarks:
    if image is None:
        raise LandmarkFileError(
            f"{path}: VerSe centroids are voxel indices; pass image= (the mask or CT they belong to)"
        )
    from lm_zoo.io import read_image

    image = read_image(image)
    _check_verse_direction(data, path, image)
    names, points = [], []
    for entry in data:
        if not isinstance(entry, dict) or "label" not in entry:
            continue  # the leading {"direction": [...]} entry
        try:
            index = [float(entry["X"]), float(entry["Y"]), float(entry["Z"])]
        except (KeyError, TypeError, ValueError):
            raise LandmarkFileError(f"{path}: centroid entry {entry} needs numeric X, Y, Z") from None
        names.append(verse_label_name(entry["label"]))
        points.append(image.TransformContinuousIndexToPhysicalPoint(index))
    return Landmarks(names, np.array(points).reshape(-1, 3))


def axis_codes(image: sitk.Image) -> tuple[str, str, str]:
    """Anatomical direction each voxel axis (i, j, k) points to, e.g. ('L', 'P', 'S') for identity
    direction cosines (the nibabel ``aff2axcodes`` convention used by VerSe files)."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    codes = []
    for column in direction.T:
        axis = int(np.argmax(np.abs(column)))
        codes.append(("LR", "PA", "SI")[axis][0 if column[axis] > 0 else 1])
    return tuple(codes)


def _check_verse_direction(data: list, path: Path, image: sitk.Image) -> None:
    """VerSe indices are only meaningful on a grid with the orientation the file states."""
    stated = next((e["direction"] for e in data if isinstance(e, dict) and "direction" in e), None)
    if stated is None:
        return
    stated = tuple(str(c).upper() for c in stated)
    actual = axis_codes(image)
    if stated != actual:
        raise LandmarkFileError(
            f"{path}: centroids index a {','.join(stated)} voxel grid but the image's axes point "
            f"{','.join(actual)}; pass the mask or CT these centroids were computed on"
        )


# ----------------------------------------------------------------------------------- writing
def write_landmarks(path, landmarks: Landmarks, coordinate_system: str = "LPS") -> Path:
    """Write ``landmarks`` (LPS mm) to ``path``; format by suffix (.csv, .fcsv, .mrk.json).

    Written to a temporary file beside ``path`` and moved into place, so a failed write never
    leaves half a file.
    """
    path = Path(os.fspath(path))
    system = str(coordinate_system).upper()
    if system not in COORDINATE_SYSTEMS:
        raise LandmarkFileError(f"write_landmarks: coordinate_system {coordinate_system!r} not in {list(COORDINATE_SYSTEMS)}")
    if not isinstance(landmarks, Landmarks):
        raise TypeError(f"write_landmarks: expected Landmarks, got {type(landmarks).__name__}")
    if len(landmarks) == 0:
        raise LandmarkFileError(f"{path}: refusing to write an empty landmark file (read_landmarks rejects those)")
    points = to_lps(landmarks.points, system)  # the flip is its own inverse
    name = path.name.lower()
    if name.endswith(".mrk.json"):
        text = _markups_json_text(landmarks.names, points, system)
    elif name.endswith(".fcsv"):
        text = _fcsv_text(landmarks.names, points, system)
    elif name.endswith(".csv"):
        text = _csv_text(landmarks.names, points, system)
    else:
        raise LandmarkFileError(f"{path}: unknown landmark file type; use .csv, .fcsv or .mrk.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, text, newline=None)


def _csv_text(names, points, system) -> str:
    buffer = _io.StringIO()
    buffer.write(f"# coordinate_system = {system}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "x", "y", "z"])
    for n, p in zip(names, points):
        writer.writerow([n, *(repr(float(v)) for v in p)])
    return buffer.getvalue()


def _fcsv_text(names, points, system) -> str:
    buffer = _io.StringIO()
    buffer.write("# Markups fiducial file version = 5.0\n")
    buffer.write(f"# CoordinateSystem = {system}\n")
    buffer.write("# columns = " + ",".join(_FCSV_COLUMNS) + "\n")
    writer = csv.writer(buffer, lineterminator="\n")
    for i, (n, p) in enumerate(zip(names, points), start=1):
        writer.writerow([i, *(repr(float(v)) for v in p), 0, 0, 0, 1, 1, 1, 0, n, "", ""])
    return buffer.getvalue()


def _markups_json_text(names, points, system) -> str:
    data = {
        "@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
        "Resources/Schema/markups-schema-v1.0.3.json#",
        "markups": [
            {
                "type": "Fiducial",
                "coordinateSystem": system,
                "coordinateUnits": "mm",
                "controlPoints": [
                    {"id": str(i), "label": n, "position": [float(v) for v in p], "positionStatus": "defined"}
                    for i, (n, p) in enumerate(zip(names, points), start=1)
                ],
            }
        ],
    }
    return json.dumps(data, indent=2) + "\n"


# ----------------------------------------------------------------------------------- label maps
def label_centroids(label_image, label_names=None) -> Landmarks:
    """Physical (LPS mm) centroid of every non-zero label of a label map.

    ``label_names``: dict {label value: name} (labels not in it are skipped) or None, giving
    names ``label_<value>``. Label maps stored as float (e.g. VerSe masks) must hold integers.
    """
    from lm_zoo.io import read_image

    image = read_image(label_image)
    if image.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
        values = sitk.GetArrayViewFromImage(image)
        if not np.array_equal(values, np.round(values)) or values.min() < 0:
            raise LandmarkFileError("label_centroids: float label map holds non-integer or negative values")
        image = sitk.Cast(image, sitk.sitkUInt32)
    elif image.GetPixelID() not in (sitk.sitkUInt8, sitk.sitkUInt16, sitk.sitkUInt32, sitk.sitkUInt64):
        image = sitk.Cast(image, sitk.sitkUInt32)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(image)
    names, points = [], []
    for label in sorted(stats.GetLabels()):
        if label_names is not None:
            if label not in label_names:
                continue
            names.append(label_names[label])
        else:
            names.append(f"label_{label}")
        points.append(stats.GetCentroid(label))
    return Landmarks(names, np.array(points, dtype=float).reshape(-1, 3))


# ----------------------------------------------------------------------------------- negatives
def body_mask(image, threshold: float | None = None) -> np.ndarray:
    """Boolean (z, y, x) mask of the body: threshold, largest connected component, holes filled.

    ``threshold`` defaults to Otsu's threshold of the volume (separates air from tissue in CT and
    MR); for CT, -500 HU is a good explicit choice. Holes are filled slice by slice (along the
    array's first axis): that fills every cavity a 3D fill would (a cavity closed in 3D is closed
    in each of its slices) and also lungs and bowel gas that reach the field-of-view edge through
    the airway in some other slice.
    """
    from scipy import ndimage

    from lm_zoo.io import read_image

    image = read_image(image)
    if threshold is None:
        otsu = sitk.OtsuThresholdImageFilter()
        otsu.Execute(sitk.Cast(image, sitk.sitkFloat32))
        threshold = otsu.GetThreshold()
    above = sitk.GetImageFromArray((sitk.GetArrayViewFromImage(image) > threshold).view(np.uint8))
    # ITK's (multi-threaded) connected components, relabelled by size: label 1 is the largest
    largest = sitk.RelabelComponent(sitk.ConnectedComponent(above), sortByObjectSize=True)
    mask = sitk.GetArrayFromImage(largest) == 1
    for k in range(mask.shape[0]):
        mask[k] = ndimage.binary_fill_holes(mask[k])
    return mask


def sample_negatives(image, avoid_points, n: int, min_distance_mm: float, seed, body_threshold=None) -> np.ndarray:
    """``n`` random LPS points inside the body at least ``min_distance_mm`` from every avoid point.

    Voxels are drawn uniformly from the volume and kept when inside :func:`body_mask` (so body
    voxels are equally likely), then moved by a uniform sub-voxel offset; the same ``seed`` gives
    the same points. Raises ValueError when the body is too small to place ``n`` points at that
    distance.
    """
    from scipy.spatial import cKDTree

    from lm_zoo.io import read_image

    if int(n) < 0:
        raise ValueError(f"sample_negatives: n must be >= 0, got {n}")
    image = read_image(image)
    if int(n) == 0:
        return np.empty((0, 3))
    rng = np.random.default_rng(seed)
    avoid = np.asarray(avoid_points, dtype=float).reshape(-1, 3)
    if not np.isfinite(avoid).all():
        raise ValueError("sample_negatives: avoid_points hold NaN/inf")
    mask = body_mask(image, body_threshold)
    fraction = np.count_nonzero(mask) / mask.size
    if fraction == 0:
        raise ValueError("sample_negatives: the body mask is empty; check body_threshold")
    tree = cKDTree(avoid) if len(avoid) else None
    accepted: list[np.ndarray] = []
    found = 0
    for _ in range(50):
        if found >= n:
            break
        draws = int(min(4 * (n - found) / fraction + 64, 5_000_000))
        flat = rng.integers(0, mask.size, size=draws)
        flat = flat[mask.ravel()[flat]]
        zyx = np.stack(np.unravel_index(flat, mask.shape), axis=1).astype(float)
        ijk = zyx[:, ::-1] + rng.uniform(-0.5, 0.5, size=zyx.shape)
        points = physical_points(image, ijk)
        if tree is not None:
            distance, _ = tree.query(points)
            points = points[distance >= min_distance_mm]
        accepted.append(points)
        found += len(points)
    if found < n:
        raise ValueError(
            f"sample_negatives: found only {found} of {n} body points at >= {min_distance_mm} mm from "
            f"{len(avoid)} landmarks; lower min_distance_mm or n"
        )
    return np.concatenate(accepted)[: int(n)]


def __getattr__(name: str):
    # landmarks_from_segmentation lives in lm_zoo.segmentation, which imports this module (for
    # Landmarks): resolved on first use so that importing lm_zoo.landmarks loads no segmentation code.
    if name == "landmarks_from_segmentation":
        from lm_zoo.segmentation import landmarks_from_segmentation

        return landmarks_from_segmentation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"landmarks_from_segmentation"})
