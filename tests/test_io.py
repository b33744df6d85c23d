"""lm_zoo.io: volume files, DICOM series, geometry checks, clear refusals."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lm_zoo.io import ImageReadError, read_image, validate_image
from tests.conftest import shared_file


def small_volume(dtype=np.int16) -> sitk.Image:
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray(rng.integers(-1000, 1000, size=(6, 7, 8)).astype(dtype))
    image.SetSpacing((0.5, 0.75, 2.0))
    image.SetOrigin((10.0, -20.0, 30.0))
    return image


def write_dicom_series(folder, positions, orientation=(1, 0, 0, 0, 1, 0), size=(8, 8)):
    """One CT slice per ImagePositionPatient in ``positions``; returns the folder.

    GDCM's writer sets the process's LC_CTYPE to "C", which would turn every later test's
    default text encoding into ASCII; the locale is restored afterwards."""
    import locale

    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        return _write_dicom_series(folder, positions, orientation, size)
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)


def _write_dicom_series(folder, positions, orientation, size):
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.1.123456"
    for k, position in enumerate(positions):
        plane = sitk.GetImageFromArray(np.full((1, size[1], size[0]), 10 * k, dtype=np.int16))
        # the writer takes geometry from the image itself, so give each slice its own
        row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
        plane.SetDirection(tuple(np.column_stack([row, col, np.cross(row, col)]).ravel()))
        plane.SetOrigin(tuple(float(v) for v in position))
        plane.SetSpacing((0.5, 0.5, 1.0))  # PixelSpacing
        tags = {
            "0008|0060": "CT",
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1.1",
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.4f}" for v in position),
            "0020|0037": "\\".join(f"{v:.6f}" for v in orientation),
        }
        for tag, value in tags.items():
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(plane)
    return folder


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".nrrd"])
def test_volume_files_round_trip_with_geometry(tmp_path, suffix):
    image = small_volume()
    path = tmp_path / f"volume{suffix}"
    sitk.WriteImage(image, str(path))
    loaded = read_image(path)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(loaded), sitk.GetArrayViewFromImage(image))
    np.testing.assert_allclose(loaded.GetSpacing(), image.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(loaded.GetOrigin(), image.GetOrigin(), atol=1e-5)
    assert read_image(loaded) is loaded


def test_missing_and_unreadable_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        read_image(tmp_path / "nope.nii.gz")
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="broken.nii.gz"):
        read_image(bad)
    with pytest.raises(ImageReadError, match="no DICOM series"):
        read_image(tmp_path)


def test_rejects_2d_4d_and_vector_images(tmp_path):
    with pytest.raises(ImageReadError, match="2D image"):
        read_image(sitk.Image([5, 5], sitk.sitkInt16))
    with pytest.raises(ImageReadError, match=r"single slice \(a 2D image\)"):
        read_image(sitk.Image([5, 5, 1], sitk.sitkInt16))
    four_d = tmp_path / "four_d.nii.gz"
    sitk.WriteImage(sitk.Image([4, 4, 4, 3], sitk.sitkFloat32), str(four_d))
    with pytest.raises(ImageReadError, match=r"four_d.nii.gz: 4D image"):
        read_image(four_d)
    with pytest.raises(ImageReadError, match="vector image with 3 components"):
        read_image(sitk.Image([4, 4, 4], sitk.sitkVectorFloat32, 3))
    with pytest.raises(ImageReadError, match="complex-valued image"):
        read_image(sitk.Image([4, 4, 4], sitk.sitkComplexFloat32))
    with pytest.raises(ImageReadError, match="SimpleITK.Image"):
        validate_image(np.zeros((3, 3, 3)))


def test_regular_dicom_series_loads_with_its_geometry(tmp_path):
    positions = [(-5.0, 7.0, 100.0 + 2.5 * k) for k in range(5)]
    image = read_image(write_dicom_series(tmp_path / "regular", positions))
    assert image.GetSize() == (8, 8, 5)
    np.testing.assert_allclose(image.GetSpacing(), (0.5, 0.5, 2.5), atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), positions[0], atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image)[:, 0, 0], [0, 10, 20, 30, 40])


def test_dicom_series_with_non_uniform_spacing_is_refused(tmp_path):
    z = [0.0, 2.0, 4.0, 9.0, 11.0]
    folder = write_dicom_series(tmp_path / "gappy", [(0.0, 0.0, v) for v in z])
    with pytest.raises(ImageReadError, match=r"gappy: non-uniform slice spacing.*2\.000 to 5\.000"):
        read_image(folder)


def test_position_rounding_in_headers_is_accepted(tmp_path):
    # positions rounded to 0.1 mm: steps of 2.5 +- 0.1 are a regular 2.5 mm grid
    z = [0.0, 2.5, 5.0, 7.6, 10.0]
    image = read_image(write_dicom_series(tmp_path / "rounded", [(0.0, 0.0, v) for v in z]))
    assert image.GetSize()[2] == 5
    np.testing.assert_allclose(image.GetSpacing()[2], 2.5, atol=0.01)


def test_sheared_dicom_series_is_refused(tmp_path):
    # Tilted slices (normal not along z) stacked by moving the table along z: a sheared grid.
    tilt = np.radians(15)
    orientation = (1, 0, 0, 0, np.cos(tilt), -np.sin(tilt))
    folder = write_dicom_series(tmp_path / "tilted", [(0.0, 0.0, 3.0 * k) for k in range(5)], orientation)
    with pytest.raises(ImageReadError, match=r"tilted: sheared slice stack \(gantry tilt about 15\.0 deg\)"):
        read_image(folder)


def test_small_tilt_that_adds_up_over_many_slices_is_refused(tmp_path):
    # 0.5 deg: 0.026 mm in-plane per 3 mm step, 0.76 mm after 30 slices
    tilt = np.radians(0.5)
    orientation = (1, 0, 0, 0, np.cos(tilt), -np.sin(tilt))
    folder = write_dicom_series(tmp_path / "slight", [(0.0, 0.0, 3.0 * k) for k in range(30)], orientation, size=(4, 4))
    with pytest.raises(ImageReadError, match=r"slight: sheared slice stack \(gantry tilt about 0\.5 deg\)"):
        read_image(folder)


def test_tilted_dicom_stacked_along_its_normal_is_accepted(tmp_path):
    tilt = np.radians(15)
    orientation = (1, 0, 0, 0, np.cos(tilt), -np.sin(tilt))
    normal = np.cross(orientation[:3], orientation[3:])
    folder = write_dicom_series(tmp_path / "oblique", [tuple(3.0 * k * normal) for k in range(4)], orientation)
    image = read_image(folder)
    np.testing.assert_allclose(np.asarray(image.GetDirection()).reshape(3, 3)[:, 2], normal, atol=1e-5)
    np.testing.assert_allclose(image.GetSpacing()[2], 3.0, atol=1e-3)


@pytest.mark.shared_data
def test_real_gantry_tilt_series_is_refused_not_sheared(shared_data):
    folder = shared_file(shared_data, "ct_gantry_tilt_dicom")
    # MANIFEST: +18.5 deg tilt, last slice ~48 mm off in y on SimpleITK's grid; steps along the
    # normal 4.002 (x13), 1.081, 6.999 mm (x13)
    with pytest.raises(
        ImageReadError,
        match=r"ct_gantry_tilt_dicom: sheared slice stack \(gantry tilt about 18\.5 deg\).* 48\.\d\d mm .*"
        r"non-uniform slice spacing \(steps along the slice normal range from 1\.08\d to 6\.99\d mm\)",
    ):
        read_image(folder)


@pytest.mark.shared_data
def test_real_totalsegmentator_dicom_series_loads(shared_data):
    image = read_image(shared_file(shared_data, "totalseg_example/dicom"))
    assert image.GetSize() == (512, 512, 20)
    np.testing.assert_allclose(image.GetSpacing(), (0.9766, 0.9766, 2.0), atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), (-249.512, -437.512, -804.5), atol=1e-3)
    values = sitk.GetArrayViewFromImage(image)
    assert values.min() == -1024 and values.max() == 1839  # rescaled to HU


def test_continuous_index_matches_simpleitk_on_an_oblique_anisotropic_grid():
    from scipy.spatial.transform import Rotation

    from lm_zoo.io import continuous_index

    image = sitk.Image([20, 30, 40], sitk.sitkFloat32)
    image.SetSpacing([0.5, 0.7, 2.0])
    image.SetOrigin([3.0, -4.0, 5.0])
    image.SetDirection(Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix().ravel().tolist())
    points = np.random.default_rng(0).normal(0, 20, (5, 3))
    expected = [image.TransformPhysicalPointToContinuousIndex(p.tolist()) for p in points]
    np.testing.assert_allclose(continuous_index(image, points), expected, atol=1e-9)


def test_one_border_rule_for_datasets_detection_and_the_sampler():
    """inside_grid is the sampler's rule: -0.5 <= index < size - 0.5 (the far half-voxel edge is out)."""
    from lm_zoo.detection.search import inside_scan
    from lm_zoo.io import continuous_index, inside_grid, physical_points

    image = sitk.Image(4, 5, 6, sitk.sitkFloat32)
    image.SetSpacing((2.0, 1.0, 0.5))
    image.SetOrigin((10.0, -3.0, 7.0))
    image.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))
    index = np.array([[-0.5, 0, 0], [3.5, 0, 0], [3.4999, 4.4999, 5.4999], [0, 4.5, 0], [0, 0, -0.5001]])
    points = physical_points(image, index)
    expected = [True, False, True, False, False]
    assert inside_grid(image, points).tolist() == expected
    assert inside_scan is inside_grid, "the detector uses the one border rule"
    assert np.allclose(continuous_index(image, points), index)
    assert np.allclose(points[2], image.TransformContinuousIndexToPhysicalPoint(index[2].tolist()))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_truncated_nifti_is_refused_naming_the_file(tmp_path, suffix):
    path = tmp_path / f"vol{suffix}"
    sitk.WriteImage(small_volume(), str(path))
    assert read_image(path).GetSize() == small_volume().GetSize()  # the complete file reads
    data = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match=r"cut\.nii.*truncated"):
        read_image(cut)


def test_skewed_direction_matrix_is_refused_naming_the_image(tmp_path):
    image = small_volume()
    image.SetDirection((1, 0.3, 0, 0, 1, 0, 0, 0, 1))
    path = tmp_path / "skewed.mha"
    sitk.WriteImage(image, str(path))
    with pytest.raises(ImageReadError, match=r"skewed\.mha.*not orthonormal"):
        read_image(path)
