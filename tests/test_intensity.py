"""lm_zoo.intensity: CT windows and TOF-MRA normalisation."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lm_zoo.intensity import ct_window, normalize_mra
from tests.conftest import shared_file


def test_ct_window_maps_level_and_width_to_unit_range():
    hu = np.array([-1000, -160, -60, 40, 140, 240, 3000], dtype=np.int16)
    out = ct_window(hu, level=40, width=400)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0, 0, 0.25, 0.5, 0.75, 1, 1], atol=1e-6)


def test_ct_window_keeps_image_geometry():
    image = sitk.GetImageFromArray(np.linspace(-1000, 1000, 24, dtype=np.float32).reshape(2, 3, 4))
    image.SetOrigin((1, 2, 3))
    image.SetSpacing((0.5, 1, 2))
    out = ct_window(image, level=0, width=2000)
    assert isinstance(out, sitk.Image) and out.GetPixelID() == sitk.sitkFloat32
    assert out.GetOrigin() == image.GetOrigin() and out.GetSpacing() == image.GetSpacing()
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(out).ravel(), np.linspace(0, 1, 24), atol=1e-6)


@pytest.mark.parametrize("width", [0, -10, np.nan])
def test_ct_window_rejects_bad_width(width):
    with pytest.raises(ValueError, match="width"):
        ct_window(np.zeros(3), level=40, width=width)


def synthetic_tof(scale=1.0, background_zero=True, seed=0):
    """Dark background, brain ~100, sparse vessels ~400 (0.3% of voxels; a TOF-MRA caricature)."""
    rng = np.random.default_rng(seed)
    volume = np.zeros((40, 40, 40)) if background_zero else rng.uniform(0, 15, size=(40, 40, 40))
    zz, yy, xx = np.mgrid[:40, :40, :40]
    brain = (zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 < 17**2
    volume[brain] = rng.normal(100, 10, size=brain.sum())
    vessel = brain & ((yy - 20) ** 2 + (xx - 23) ** 2 < 2)
    volume[vessel] = rng.normal(400, 20, size=vessel.sum())
    return volume * scale, brain & ~vessel, vessel


@pytest.mark.parametrize("background_zero", [True, False])
def test_normalize_mra_puts_vessels_near_one_and_brain_low(background_zero):
    volume, brain, vessel = synthetic_tof(background_zero=background_zero)
    out = normalize_mra(volume)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    assert np.median(out[vessel]) > 0.85
    assert np.percentile(out[brain], 95) < 0.35
    # no absolute scale: a rescaled acquisition normalises to the same values
    np.testing.assert_allclose(normalize_mra(volume * 7.3), out, atol=1e-5)


def test_normalize_mra_handles_all_zero_and_rejects_nan():
    assert not normalize_mra(np.zeros((3, 3, 3))).any()
    with pytest.raises(ValueError, match="NaN"):
        normalize_mra(np.array([[[1.0, np.nan]]]))


@pytest.mark.shared_data
def test_normalize_mra_on_real_background_removed_tof(shared_data):
    # chris_MRA: 99% of voxels are exactly 0, the rest mostly vessels (see MANIFEST).
    image = sitk.ReadImage(str(shared_file(shared_data, "mra/chris_MRA.nii.gz")))
    out = normalize_mra(image)
    assert isinstance(out, sitk.Image) and out.GetDirection() == image.GetDirection()
    raw, norm = sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(out)
    assert np.all(norm[raw == 0] == 0)
    bright = raw >= np.percentile(raw[raw > 0], 90)
    assert np.median(norm[bright]) > 0.7  # vessels near 1, not squashed by the zero background
    assert np.median(norm[raw > 0]) < 0.4
