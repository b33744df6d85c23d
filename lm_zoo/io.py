"""Reading 3D scalar volumes (NIfTI, MHA/MHD, NRRD files or DICOM series folders) as SimpleITK images.

Everything downstream works in LPS millimetres through the image's origin, spacing and direction,
so this module's job is to refuse volumes whose geometry SimpleITK would report wrongly rather
than return them: DICOM stacks with gantry tilt (slices displaced along the table, not along the
slice normal, i.e. a sheared grid) or with non-uniform slice steps, NIfTI files shorter than their header says (SimpleITK fills the missing voxels
with zeros without a word), truncated or corrupt gzip streams, direction matrices that are not
orthonormal (a skewed grid), plus anything that is not a single-component 3D image.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lm_zoo.errors import LmZooError

__all__ = ["ImageReadError", "read_image", "validate_image", "dicom_slice_geometry", "index_transform",
           "continuous_index", "physical_points", "inside_grid"]

FILE_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")

# Slice positions may sit this far off the regular grid (plus a fraction of a slice step, or of a
# pixel in-plane) before resampling onto that grid would visibly misplace anatomy; the headers'
# own rounding of positions stays below it.
_POSITION_TOLERANCE_MM = 0.01
_OFF_GRID_FRACTION = 0.1
# Direction cosines stored as float32 (NIfTI) are orthonormal to ~1e-6; a skew of 1e-3 rad
# (0.06 deg) already moves a point 0.25 mm at 250 mm from the origin.
_ORTHONORMAL_TOLERANCE = 1e-3


class ImageReadError(LmZooError, ValueError):
    """A volume that cannot be read, or whose geometry would be wrong if it were read."""


def validate_image(image: sitk.Image, source: str = "image") -> sitk.Image:
    """Return ``image`` if it is a 3D single-component image, else raise ImageReadError."""
    if not isinstance(image, sitk.Image):
        raise ImageReadError(f"{source}: expected a SimpleITK.Image, got {type(image).__name__}")
    dim = image.GetDimension()
    if dim != 3:
        raise ImageReadError(
            f"{source}: {dim}D image of size {image.GetSize()}; only 3D volumes are supported "
            "(a 4D series must be split into 3D volumes first)"
        )
    if min(image.GetSize()) < 2:
        raise ImageReadError(
            f"{source}: 3D image of size {image.GetSize()} holds a single slice (a 2D image); "
            "a volume needs >= 2 voxels along every axis (for DICOM pass the series folder, not one file)"
        )
    components = image.GetNumberOfComponentsPerPixel()
    if components != 1:
        raise ImageReadError(
            f"{source}: vector image with {components} components per voxel "
            f"({image.GetPixelIDTypeAsString()}); only scalar volumes are supported"
        )
    if image.GetPixelID() in (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64):
        raise ImageReadError(
            f"{source}: complex-valued image ({image.GetPixelIDTypeAsString()}); only real intensities are supported"
        )
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    skew = np.abs(direction.T @ direction - np.eye(3)).max()
    if not np.isfinite(skew) or skew > _ORTHONORMAL_TOLERANCE:
        raise ImageReadError(
            f"{source}: direction matrix {np.round(direction, 4).tolist()} is not orthonormal "
            f"(|D^T D - I| up to {skew:.3g}): a skewed or scaled grid would misplace every point; "
            "resample the volume onto an orthonormal grid first"
        )
    return image


def read_image(source) -> sitk.Image:
    """Read a 3D scalar volume.

    ``source`` is a ``SimpleITK.Image`` (validated and returned as is), a NIfTI / MHA / MHD / NRRD
    file, or a folder holding exactly one DICOM series. Raises FileNotFoundError for a missing path
    and :class:`ImageReadError` (naming the path) for anything unreadable, not 3D scalar, or a DICOM
    stack with gantry tilt or non-uniform slice spacing.
    """
    if isinstance(source, sitk.Image):
        return validate_image(source)
    path = Path(os.fspath(source))
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if path.is_dir():
        image = _read_dicom_series(path)
    else:
        _check_complete(path)
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as err:
            raise ImageReadError(
                f"{path}: SimpleITK cannot read this file (supported: {', '.join(FILE_SUFFIXES)} "
                f"or a DICOM series folder): {_first_line(err)}"
            ) from None
    return validate_image(image, str(path))


def _check_complete(path: Path) -> None:
    """Refuse a truncated or corrupt gzip stream, and a NIfTI file holding fewer bytes than its
    header promises: SimpleITK reads both, filling the missing voxels with zeros."""
    name = path.name.lower()
    if not (name.endswith(".gz") or name.endswith(".nii")):
        return
    if name.endswith(".gz") and _gzip_trailer_matches_header(path):
        return  # the common case, without decompressing the volume a second time
    head = b""
    total = 0
    try:
        with (gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb")) as f:
            # read1: each call returns what one step decompressed, so when the stream breaks,
            # ``total`` holds every byte recovered before it (read() would drop its partial chunk).
            while chunk := f.read1(1 << 24):
                if len(head) < 540:
                    head += chunk[: 540 - len(head)]
                total += len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
        expected = _nifti_expected_bytes(head)
        of = f" of the {expected} its NIfTI header describes" if expected is not None else ""
        raise ImageReadError(
            f"{path}: truncated or corrupt compressed file ({type(err).__name__}: {err}) after "
            f"{total} uncompressed bytes{of}; copy or download it again"
        ) from None
    expected = _nifti_expected_bytes(head)
    if expected is not None and total < expected:
        raise ImageReadError(
            f"{path}: truncated NIfTI file: its header describes {expected} bytes (header + voxels) but "
            f"the file holds {total}{' uncompressed' if name.endswith('.gz') else ''}; copy or download it again"
        )


def _gzip_trailer_matches_header(path: Path) -> bool:
    """True when the gzip trailer's length (ISIZE, the uncompressed size mod 2**32) equals the size
    the NIfTI header describes: a truncated stream ends in arbitrary bytes instead."""
    try:
        with gzip.open(path, "rb") as f:
            expected = _nifti_expected_bytes(f.read(540))
        if expected is None:
            return False
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return struct.unpack("<I", f.read(4))[0] == expected % 2**32
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError):
        return False  # the full check names the problem


def _nifti_expected_bytes(head: bytes) -> int | None:
    """vox_offset + voxel bytes from a NIfTI-1/2 header, or None when ``head`` is not one."""
    for endian in "<>":
        if len(head) >= 348 and struct.unpack(endian + "i", head[:4])[0] == 348:
            dim = struct.unpack(endian + "8h", head[40:56])
            bitpix = struct.unpack(endian + "h", head[72:74])[0]
            offset = int(struct.unpack(endian + "f", head[108:112])[0])
        elif len(head) >= 540 and struct.unpack(endian + "i", head[:4])[0] == 540:
            bitpix = struct.unpack(endian + "h", head[14:16])[0]
            dim = struct.unpack(endian + "8q", head[16:80])
            offset = struct.unpack(endian + "q", head[168:176])[0]
        else:
            continue
        if not 1 <= dim[0] <= 7 or bitpix <= 0:
            return None
        return max(offset, 348) + int(np.prod([max(int(d), 1) for d in dim[1 : dim[0] + 1]])) * bitpix // 8
    return None


def dicom_slice_geometry(files: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ImagePositionPatient (n, 3), ImageOrientationPatient (n, 6) and PixelSpacing (n, 2; NaN when
    absent) of each DICOM file, in order."""
    reader = sitk.ImageFileReader()
    positions, orientations, pixel_spacings = [], [], []
    for name in files:
        reader.SetFileName(name)
        try:
            reader.ReadImageInformation()
            positions.append(_floats(reader.GetMetaData("0020|0032")))
            orientations.append(_floats(reader.GetMetaData("0020|0037")))
        except RuntimeError as err:
            raise ImageReadError(
                f"{name}: cannot read ImagePositionPatient/ImageOrientationPatient: {_first_line(err)}"
            ) from None
        has_spacing = reader.HasMetaDataKey("0028|0030")
        pixel_spacings.append(_floats(reader.GetMetaData("0028|0030")) if has_spacing else [np.nan, np.nan])
    return np.asarray(positions, float), np.asarray(orientations, float), np.asarray(pixel_spacings, float)


def _read_dicom_series(folder: Path) -> sitk.Image:
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise ImageReadError(f"{folder}: folder holds no DICOM series (and is not a volume file)")
    if len(series_ids) > 1:
        raise ImageReadError(
            f"{folder}: folder holds {len(series_ids)} DICOM series {list(series_ids)}; "
            "put each series in its own folder"
        )
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0]))
    if len(files) < 2:
        raise ImageReadError(f"{folder}: DICOM series has {len(files)} slice(s); a 3D volume needs >= 2")
    _check_regular_stack(folder, files)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as err:
        raise ImageReadError(f"{folder}: cannot read DICOM series: {_first_line(err)}") from None


def _check_regular_stack(folder: Path, files: list[str]) -> None:
    """Refuse stacks that a regular (origin, spacing, direction) grid would misplace.

    Measured cumulatively from the first slice, so that a small per-slice drift that adds up over
    hundreds of slices is caught, while position rounding in the headers (~0.01-0.1 mm) is not.
    """
    positions, orientations, pixel_spacings = dicom_slice_geometry(files)
    if np.ptp(orientations, axis=0).max() > 1e-4:
        raise ImageReadError(
            f"{folder}: ImageOrientationPatient differs between slices; not a single 3D volume"
        )
    row, col = orientations[0, :3], orientations[0, 3:]
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    offsets = positions - positions[0]
    along = offsets @ normal  # slice positions on the normal
    drift = np.linalg.norm(offsets - along[:, None] * normal, axis=1)  # in-plane shift vs slice 0
    steps = np.diff(along)
    if np.any(np.abs(steps) < _POSITION_TOLERANCE_MM):
        raise ImageReadError(f"{folder}: two or more slices share the same position; not a single 3D volume")
    mean_step = (along[-1] - along[0]) / (len(along) - 1)
    off_grid = np.abs(along - mean_step * np.arange(len(along)))
    non_uniform = off_grid.max() > _POSITION_TOLERANCE_MM + _OFF_GRID_FRACTION * abs(mean_step)
    steps_text = f"steps along the slice normal range from {np.abs(steps).min():.3f} to {np.abs(steps).max():.3f} mm"
    pixel = np.nanmin(pixel_spacings) if np.isfinite(pixel_spacings).any() else 0.5
    if drift.max() > _POSITION_TOLERANCE_MM + _OFF_GRID_FRACTION * pixel:
        tilt = np.degrees(np.arctan2(drift[1:], np.abs(along[1:]))).max()
        raise ImageReadError(
            f"{folder}: sheared slice stack (gantry tilt about {tilt:.1f} deg): ImagePositionPatient "
            f"moves up to {drift.max():.2f} mm within the slice plane instead of along the slice "
            "normal, so a regular grid would misplace the anatomy"
            + (f"; also non-uniform slice spacing ({steps_text})" if non_uniform else "")
            + "; de-shear it first (e.g. dcm2niix writes a corrected 'Tilt' volume)"
        )
    if non_uniform:
        raise ImageReadError(
            f"{folder}: non-uniform slice spacing: {steps_text} (a slice lies {off_grid.max():.2f} mm off "
            "a regular grid), so a regular grid would misplace slices; resample the series to uniform "
            "spacing first"
        )


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.strip().split("\\")]


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def index_transform(image: sitk.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(origin, index_to_lps, lps_to_index)``: LPS = origin + index_to_lps @ ijk and
    ijk = lps_to_index @ (LPS - origin), as SimpleITK maps points (direction cosines x spacing).
    The one physical <-> index transform of the package."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    index_to_lps = direction * np.asarray(image.GetSpacing(), dtype=float)
    return np.asarray(image.GetOrigin(), dtype=float), index_to_lps, np.linalg.inv(index_to_lps)


def continuous_index(image: sitk.Image, points) -> np.ndarray:
    """LPS mm points ``(N, 3)`` → continuous voxel indices ``(N, 3)`` in (i, j, k) order.

    The vectorised form of ``image.TransformPhysicalPointToContinuousIndex``.
    """
    origin, _, to_index = index_transform(image)
    return (np.asarray(points, dtype=float).reshape(-1, 3) - origin) @ to_index.T


def physical_points(image: sitk.Image, index) -> np.ndarray:
    """Continuous voxel indices ``(N, 3)`` in (i, j, k) order → LPS mm points ``(N, 3)``.

    The vectorised form of ``image.TransformContinuousIndexToPhysicalPoint``.
    """
    origin, to_lps, _ = index_transform(image)
    return origin + np.asarray(index, dtype=float).reshape(-1, 3) @ to_lps.T


def inside_grid(image: sitk.Image, points) -> np.ndarray:
    """Which LPS mm points ``(N, 3)`` fall inside the image's voxel grid: ``(N,)`` bool.

    The one border rule of the package, the sampler's (``lm_zoo._sampling``): a voxel covers
    ``index - 0.5 <= x < index + 0.5``, so inside means ``-0.5 <= x < size - 0.5`` on every axis.
    """
    index = continuous_index(image, points)
    size = np.asarray(image.GetSize(), dtype=float)
    return np.all((index >= -0.5) & (index < size - 0.5), axis=1)
