"""Intensity scaling shared by datasets and the weight sets' ``preprocess_input``.

Pure NumPy. Each function accepts a NumPy array or a ``SimpleITK.Image`` and returns the same
kind (an image keeps its geometry), as float32.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lm_zoo.errors import LmZooError

__all__ = ["ct_window", "normalize_mra", "require_hounsfield", "NotHounsfieldError", "CT_WINDOWS", "CT_OUTSIDE_HU",
           "MRA_UPPER_PERCENTILE", "MRA_CLIP_MAX"]

# Air: what a CT patch shows outside the scanned volume (datasets, detection and real-CT figures alike).
CT_OUTSIDE_HU = -1024.0

# Common radiology windows, (level, width) in HU, for ct_window(hu, *CT_WINDOWS[name]).
CT_WINDOWS = {
    "brain": (40.0, 80.0),
    "soft_tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
}

# TOF-MRA has no absolute scale. Arteries (fresh inflow) are the brightest structures but only
# ~0.2-1% of a head volume; brain is ~1/4 of their signal. Dividing by the 99.9th percentile of the
# non-zero voxels puts arteries near 1 and brain around 0.1..0.3 as long as more than 0.1% of the
# non-zero voxels are vessel (a lower percentile such as 99.5 can land on brain tissue when vessels
# are sparse). Zeros are excluded because padding and removed background carry no information
# about the scanner scale: in the public chris_MRA sample 99% of voxels are exactly 0 and any
# percentile over all voxels would be 0.
MRA_UPPER_PERCENTILE = 99.9
# The few voxels above the percentile (vessel centres, flow artefacts) are capped so one volume's
# outliers cannot stretch the input range of the network.
MRA_CLIP_MAX = 1.0


def ct_window(hu, level: float, width: float):
    """Map Hounsfield units to [0, 1] through a window: ``(hu - (level - width/2)) / width``, clipped.

    ``hu``: array-like or SimpleITK.Image; returns float32 of the same kind.
    """
    if not np.isfinite(level) or not np.isfinite(width) or width <= 0:
        raise ValueError(f"ct_window: width must be a positive finite number and level finite, "
                         f"got level={level!r}, width={width!r}")
    array, image = _as_array(hu)
    low = float(level) - float(width) / 2.0
    out = np.clip((array.astype(np.float32) - np.float32(low)) / np.float32(width), 0.0, 1.0)
    return _like(out.astype(np.float32, copy=False), image)


def normalize_mra(volume, upper_percentile: float = MRA_UPPER_PERCENTILE, clip_max: float | None = MRA_CLIP_MAX):
    """Per-volume robust scaling of a TOF-MRA volume: ``clip(v / P, 0, clip_max)``.

    ``P`` is the ``upper_percentile`` (default 99.9) of the **non-zero** voxels, so vessels land near
    1 and brain background around 0..0.3, whether or not the background was zeroed. Negative
    values (interpolation undershoot) become 0. A volume with no non-zero voxel is returned as
    zeros. ``volume``: array or SimpleITK.Image; returns float32 of the same kind.
    """
    if not 0.0 < upper_percentile <= 100.0:
        raise ValueError(f"normalize_mra: upper_percentile must be in (0, 100], got {upper_percentile!r}")
    array, image = _as_array(volume)
    array = array.astype(np.float32, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        raise ValueError(f"normalize_mra: volume holds {np.count_nonzero(~finite)} NaN/inf voxels")
    nonzero = array[array != 0]
    scale = float(np.percentile(nonzero, upper_percentile)) if nonzero.size else 0.0
    if scale <= 0.0:
        out = np.zeros_like(array, dtype=np.float32)
    else:
        out = np.clip(array / np.float32(scale), 0.0, np.inf if clip_max is None else clip_max)
    return _like(out.astype(np.float32, copy=False), image)


def _as_array(data):
    if isinstance(data, sitk.Image):
        return sitk.GetArrayViewFromImage(data), data
    return np.asarray(data), None


def _like(array: np.ndarray, image: sitk.Image | None):
    if image is None:
        return array
    out = sitk.GetImageFromArray(array, isVector=image.GetNumberOfComponentsPerPixel() > 1)
    out.CopyInformation(image)
    return out


class NotHounsfieldError(LmZooError, ValueError):
    """A volume given as CT whose values are not Hounsfield units (an MR, an unrescaled CT)."""


def require_hounsfield(image: sitk.Image, source: str, air_below_hu: float = -500.0,
                       error: type[Exception] = NotHounsfieldError) -> None:
    """Refuse a volume whose values are not CT Hounsfield units: a CT holds air at about -1000 HU
    (outside the body, in the lungs and bowel), so its 0.5th percentile lies below ``air_below_hu``;
    an MR or a CT stored without its rescale intercept (HU + 1024) starts at about 0.

    The check reads a strided sample of about two million voxels (a clinical volume in well under
    a second). ``error`` lets a caller raise its own class; the message names ``source``.
    """
    values = sitk.GetArrayViewFromImage(image)
    step = max(1, int(round((values.size / 2e6) ** (1 / 3))))
    sample = np.asarray(values[::step, ::step, ::step], dtype=np.float32)
    low = float(np.percentile(sample, 0.5))
    if low > air_below_hu:
        hint = (" (values from about 0 up: an MR, or CT stored without its rescale intercept, i.e. HU + 1024)"
                if low >= -1 else "")
        raise error(
            f"{source}: does not look like CT in Hounsfield units: its 0.5th percentile is {low:.0f}, "
            f"but a CT holds air at about -1000 HU (none below {air_below_hu:.0f}){hint}")
