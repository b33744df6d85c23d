"""lm_zoo.patches: the 2.5D contract, agreement with SimpleITK.Resample, augmentation, batches, montage."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from tests.conftest import shared_file
from lm_zoo import io, landmarks
from lm_zoo.patches import (
    Augmentation,
    extract_25d,
    extract_25d_batch,
    extract_25d_reference,
    save_montage,
)


def oblique_image(dtype=np.float32, shape_zyx=(18, 22, 26), seed=0) -> sitk.Image:
    """Random volume with anisotropic spacing, arbitrary origin, oblique direction cosines."""
    rng = np.random.default_rng(seed)
    array = rng.normal(100, 50, size=shape_zyx)
    image = sitk.GetImageFromArray(array.astype(dtype))
    image.SetSpacing((0.7, 1.3, 2.1))
    image.SetOrigin((-12.5, 31.0, -140.25))
    image.SetDirection(tuple(Rotation.from_euler("xyz", [20, -15, 35], degrees=True).as_matrix().ravel()))
    return image


def points_around(image: sitk.Image, n: int, seed=1, margin=3.0) -> np.ndarray:
    """Physical points inside, on the border of and just outside the image."""
    rng = np.random.default_rng(seed)
    index = rng.uniform(-margin, np.asarray(image.GetSize()) - 1 + margin, size=(n, 3))
    return np.array([image.TransformContinuousIndexToPhysicalPoint(i.tolist()) for i in index])


def value_range(image: sitk.Image) -> float:
    return float(np.ptp(sitk.GetArrayViewFromImage(image)))


@pytest.mark.parametrize("interpolator", ["linear", "nearest"])
@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_matches_per_plane_sitk_resample_on_oblique_anisotropic_image(interpolator, dtype):
    image = oblique_image(dtype)
    points = points_around(image, 40)
    kwargs = dict(size=17, spacing_mm=0.8, default_value=-7.0, interpolator=interpolator)
    fast = extract_25d(image, points, **kwargs)
    reference = extract_25d_reference(image, points, **kwargs)
    assert fast.shape == (40, 17, 17, 3) and fast.dtype == np.float32
    outside = np.mean(reference == -7.0)
    assert 0.05 < outside < 0.95, "points must exercise both the inside and the outside of the volume"
    assert np.abs(fast - reference).max() <= 1e-3 * value_range(image)


@pytest.fixture(scope="module")
def linear_field():
    """f(p) = a . p on an oblique grid: trilinear sampling reproduces it exactly inside the volume."""
    image = oblique_image(np.float64, shape_zyx=(40, 40, 40))
    a = np.array([0.3, -1.1, 2.0])
    size_xyz = np.asarray(image.GetSize())
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in size_xyz], indexing="ij"), axis=-1).reshape(-1, 3)
    lps = np.asarray(image.GetOrigin()) + ijk @ (np.asarray(image.GetDirection()).reshape(3, 3) * image.GetSpacing()).T
    field = sitk.GetImageFromArray((lps @ a).reshape(tuple(size_xyz)).transpose(2, 1, 0))
    field.CopyInformation(image)
    center = np.asarray(image.TransformContinuousIndexToPhysicalPoint((size_xyz / 2).tolist()))
    return field, a, center


def contract_offsets(size):
    c = (size - 1) / 2
    v, u = np.meshgrid(np.arange(size) - c, np.arange(size) - c, indexing="ij")
    zero = np.zeros_like(u)
    return [
        np.stack([u, v, zero], -1),  # axial: p + s(u-c, v-c, 0)
        np.stack([u, zero, -v], -1),  # coronal: p + s(u-c, 0, -(v-c))
        np.stack([zero, u, -v], -1),  # sagittal: p + s(0, u-c, -(v-c))
    ]


def test_planes_follow_the_contract_in_patient_space(linear_field):
    field, a, center = linear_field
    size, s = 9, 1.5
    patch = extract_25d(field, center[None], size=size, spacing_mm=s)[0]
    for channel, offsets in enumerate(contract_offsets(size)):
        np.testing.assert_allclose(patch[..., channel], (center + s * offsets) @ a, rtol=0, atol=1e-3)


def test_augmentation_rotates_scales_and_shifts_the_three_planes_together(linear_field):
    field, a, center = linear_field
    size, s = 9, 1.5
    augment = Augmentation(max_rotation_deg=40, scale_range=(0.7, 1.3), jitter_mm=3.0)
    patch = extract_25d(field, center[None], size=size, spacing_mm=s, augment=augment, seed=11)[0]
    rotations, scales, shifts = augment.draw(1, np.random.default_rng(11))
    assert not np.allclose(rotations[0], np.eye(3), atol=0.05)
    for channel, offsets in enumerate(contract_offsets(size)):
        points = center + shifts[0] + s * scales[0] * offsets @ rotations[0].T
        np.testing.assert_allclose(patch[..., channel], points @ a, rtol=0, atol=1e-3)


def test_same_anatomy_whatever_the_storage_order():
    # The same physical volume stored with a flipped and permuted voxel grid gives the same patches.
    image = oblique_image(np.float32)
    array = sitk.GetArrayFromImage(image)  # (z, y, x)
    flipped = sitk.GetImageFromArray(np.ascontiguousarray(array[:, ::-1, :].transpose(1, 0, 2)))
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing())
    # new axes: i = old i, j = old k, k = old j reversed
    new_direction = np.column_stack([direction[:, 0], direction[:, 2], -direction[:, 1]])
    flipped.SetDirection(tuple(new_direction.ravel()))
    flipped.SetSpacing((spacing[0], spacing[2], spacing[1]))
    flipped.SetOrigin(image.TransformIndexToPhysicalPoint((0, image.GetSize()[1] - 1, 0)))
    points = points_around(image, 10, margin=-2)
    np.testing.assert_allclose(extract_25d(flipped, points), extract_25d(image, points), atol=1e-3)


def test_border_follows_simpleitk_half_voxel_rule():
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    image = sitk.GetImageFromArray(array)  # identity geometry: LPS = index
    points = np.array([[-0.4, 2, 1], [-0.6, 2, 1], [5.3, 2, 1], [5.5, 2, 1], [2.25, 2, 1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the outside point triggers the far-point warning
        values = extract_25d(image, points, size=1, default_value=-1.0)[:, 0, 0, 0]
    np.testing.assert_allclose(values, [array[1, 2, 0], -1.0, array[1, 2, 5], -1.0, array[1, 2, 2] + 0.25])
    # nearest neighbour rounds half up, with the same inside range
    points = np.array([[-0.5, 2, 1], [0.5, 2, 1], [2.5, 2, 1], [5.49, 2, 1], [1.0, 2.5, 1.5]])
    values = extract_25d(image, points, size=1, default_value=-1.0, interpolator="nearest")[:, 0, 0, 0]
    np.testing.assert_array_equal(values, [array[1, 2, 0], array[1, 2, 1], array[1, 2, 3], array[1, 2, 5], array[2, 3, 1]])
    reference = extract_25d_reference(image, points, size=1, default_value=-1.0, interpolator="nearest")
    np.testing.assert_array_equal(values, reference[:, 0, 0, 0])  # and that is SimpleITK's rule


def test_path_and_landmarks_inputs(tmp_path):
    image = oblique_image()
    path = tmp_path / "volume.nii.gz"
    sitk.WriteImage(image, str(path))
    points = points_around(image, 5)
    # NIfTI stores direction and spacing as float32: equal within the accuracy goal, not bitwise
    np.testing.assert_allclose(extract_25d(path, points), extract_25d(image, points), atol=1e-3 * value_range(image))
    named = landmarks.Landmarks([f"p{i}" for i in range(len(points))], points)
    np.testing.assert_array_equal(extract_25d(image, named), extract_25d(image, points))


def test_augmentation_is_seeded_and_matches_reference():
    image = oblique_image()
    points = points_around(image, 12, margin=-3)
    augment = Augmentation(max_rotation_deg=25, scale_range=(0.8, 1.25), jitter_mm=2.0)
    first = extract_25d(image, points, size=12, augment=augment, seed=3)
    assert first.tobytes() == extract_25d(image, points, size=12, augment=augment, seed=3).tobytes()
    assert not np.allclose(first, extract_25d(image, points, size=12, augment=augment, seed=4))
    assert not np.allclose(first, extract_25d(image, points, size=12))
    reference = extract_25d_reference(image, points, size=12, augment=augment, seed=3)
    assert np.abs(first - reference).max() <= 1e-3 * value_range(image)


def test_pure_scale_augmentation_equals_coarser_spacing():
    image = oblique_image()
    points = points_around(image, 6, margin=-4)
    zoomed = extract_25d(image, points, size=10, spacing_mm=1.0, augment=Augmentation(0, (2.0, 2.0), 0), seed=0)
    np.testing.assert_allclose(zoomed, extract_25d(image, points, size=10, spacing_mm=2.0), atol=1e-4)


def test_augmentation_rotations_are_proper_and_bounded():
    augment = Augmentation(max_rotation_deg=30, scale_range=(1, 1), jitter_mm=0)
    rotations, _, _ = augment.draw(50, np.random.default_rng(0))
    for r in rotations:
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        assert np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))) <= 30 + 1e-9


def test_bad_inputs_raise_or_warn_clearly():
    image = oblique_image()
    good = points_around(image, 3, margin=-2)
    with pytest.raises(ValueError, match="NaN"):
        extract_25d(image, np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        extract_25d(image, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="interpolator 'cubic'"):
        extract_25d(image, good, interpolator="cubic")
    with pytest.raises(ValueError, match="spacing_mm"):
        extract_25d(image, good, spacing_mm=0)
    with pytest.raises(ValueError, match="seed"):
        extract_25d(image, good, augment=Augmentation())
    with pytest.warns(UserWarning, match="empty point list"):
        assert extract_25d(image, np.zeros((0, 3))).shape == (0, 32, 32, 3)
    far = np.vstack([good, good[:1] + 1000.0, good[:1] - 2000.0])
    with pytest.warns(UserWarning, match="2 of 5 point") as caught:
        patches = extract_25d(image, far, default_value=-3.0)
    assert len(caught) == 1
    assert np.all(patches[3:] == -3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extract_25d(image, good)


def test_batch_yields_one_array_per_case_reproducibly(tmp_path):
    a, b = oblique_image(seed=1), oblique_image(seed=2)
    path = tmp_path / "b.nii.gz"
    sitk.WriteImage(b, str(path))
    cases = [(a, points_around(a, 4, margin=-2)), (path, points_around(b, 2, margin=-2))]
    out = list(extract_25d_batch(cases, size=8, progress=False))
    assert [o.shape for o in out] == [(4, 8, 8, 3), (2, 8, 8, 3)]
    np.testing.assert_allclose(out[1], extract_25d(b, cases[1][1], size=8), atol=1e-3 * value_range(b))
    augment = Augmentation()
    once = [o.tobytes() for o in extract_25d_batch(cases, size=8, augment=augment, seed=5, progress=False)]
    again = [o.tobytes() for o in extract_25d_batch(cases, size=8, augment=augment, seed=5, progress=False)]
    assert once == again


def test_save_montage_writes_png(tmp_path):
    import matplotlib.image

    image = oblique_image()
    patches = extract_25d(image, points_around(image, 10, margin=-2), size=16)
    path = save_montage(patches, [f"p{i}" for i in range(10)], tmp_path / "qa" / "montage.png", columns=4)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 32 and pixels.shape[1] > pixels.shape[0]
    assert pixels[..., :3].std() > 0.05
    assert not list(tmp_path.joinpath("qa").glob("*.tmp*"))
    with pytest.raises(ValueError, match="labels"):
        save_montage(patches, ["x"], tmp_path / "bad.png")


# ----------------------------------------------------------------------------------- real data
@pytest.mark.shared_data
def test_afid_patch_at_ac_is_left_right_symmetric(shared_data):
    image = shared_file(shared_data, "afids_mni152/tpl-MNI152NLin2009cAsym_res-02_T1w.nii.gz")
    afids = landmarks.read_landmarks(
        shared_file(shared_data, "afids_mni152/tpl-MNI152NLin2009cAsym_afids.fcsv"), name_field="desc"
    )
    patch = extract_25d(image, afids.as_dict()["AC"][None], size=32, spacing_mm=1.0)[0]
    axial, coronal = patch[..., 0], patch[..., 1]
    lr = np.corrcoef(axial.ravel(), axial[:, ::-1].ravel())[0, 1]
    ap = np.corrcoef(axial.ravel(), axial[::-1, :].ravel())[0, 1]
    assert lr > 0.9 and lr > ap + 0.2  # the brain is L-R symmetric about AC, not A-P
    assert np.corrcoef(coronal.ravel(), coronal[:, ::-1].ravel())[0, 1] > 0.9
    # left/right lateral ventricle points: axial and coronal patches are mirror images (columns run
    # along LPS x), sagittal ones alike
    pair = extract_25d(image, afids.subset(["R LV at AC", "L LV at AC"]), size=48)
    for channel in (0, 1):
        right, left = pair[0, ..., channel].ravel(), pair[1, :, ::-1, channel].ravel()
        assert np.corrcoef(right, left)[0, 1] > 0.9
        assert np.corrcoef(right, pair[1, ..., channel].ravel())[0, 1] < 0.5
    assert np.corrcoef(pair[0, ..., 2].ravel(), pair[1, ..., 2].ravel())[0, 1] > 0.9


@pytest.mark.shared_data
def test_dicom_series_gives_same_patch_as_its_nifti_conversion(shared_data, tmp_path):
    folder = shared_file(shared_data, "totalseg_example/dicom")
    dicom = io.read_image(folder)
    nifti = tmp_path / "ct.nii.gz"
    sitk.WriteImage(dicom, str(nifti))
    center = np.asarray(dicom.TransformContinuousIndexToPhysicalPoint([255.5, 255.5, 9.5]))
    points = center + np.array([[0, 0, 0], [40, -30, 5], [-60, 20, -8]])
    from_dicom = extract_25d(folder, points, size=32, spacing_mm=1.0)
    np.testing.assert_array_equal(from_dicom, extract_25d(nifti, points, size=32, spacing_mm=1.0))
    assert from_dicom.std() > 50  # real anatomy, not the default value


@pytest.mark.shared_data
def test_segmentation_lines_up_with_dicom_ct_in_physical_space(shared_data):
    # example_seg_dicom.nii.gz is stored with a flipped y axis relative to the DICOM series: only
    # physical-space sampling puts vertebra labels on bone.
    ct = io.read_image(shared_file(shared_data, "totalseg_example/dicom"))
    seg = io.read_image(shared_file(shared_data, "totalseg_example/example_seg_dicom.nii.gz"))
    labels = sitk.GetArrayViewFromImage(seg)
    for label in (32, 33):  # vertebrae T12, T11
        zyx = np.argwhere(labels == label)[::7]
        ijk = zyx[:, ::-1].astype(float)
        lps = np.asarray(seg.GetOrigin()) + ijk @ (np.asarray(seg.GetDirection()).reshape(3, 3) * seg.GetSpacing()).T
        hu = extract_25d(ct, lps, size=1, interpolator="nearest")[:, 0, 0, 0]
        assert np.median(hu) > 150, f"label {label}: median HU {np.median(hu)} is not bone"


def _patch_checksum(args):
    image_array, points = args
    return extract_25d(sitk.GetImageFromArray(image_array), points).sum(dtype=np.float64)


def test_safe_in_forked_children_and_threads():
    # numba's OpenMP layer terminates a forked child that reuses the parent's thread pool; the
    # engine must fall back to its serial kernel there (tf.data / beam workers fork or thread).
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor

    array = np.random.default_rng(0).normal(size=(20, 20, 20)).astype(np.float32)
    points = np.random.default_rng(1).uniform(3, 17, size=(40, 3))
    expected = _patch_checksum((array, points))  # 120 planes: the parallel kernel runs here
    with multiprocessing.get_context("fork").Pool(2) as pool:
        # a terminated worker would make map() wait forever: bound it
        assert pool.map_async(_patch_checksum, [(array, points)] * 2).get(timeout=60) == [expected, expected]
    with ThreadPoolExecutor(4) as executor:
        assert list(executor.map(_patch_checksum, [(array, points)] * 8)) == [expected] * 8


def test_dataframe_with_names_or_text_points_error_names_points_and_shape():
    pd = pytest.importorskip("pandas")
    image = oblique_image()
    frame = pd.DataFrame({"name": ["a", "b"], "x": [0.0, 1.0], "y": [0.0, 1.0], "z": [0.0, 1.0]})
    with pytest.raises(ValueError, match=r"points must be an \(N, 3\) array.*columns \['name', 'x', 'y', 'z'\]"):
        extract_25d(image, frame)
    with pytest.raises(ValueError, match=r"points must be an \(N, 3\) array.*non-numeric"):
        extract_25d(image, [["1", "2", "three"]])
    assert extract_25d(image, frame[["x", "y", "z"]].to_numpy(), size=4).shape == (2, 4, 4, 3)


def test_requests_over_the_memory_limit_are_refused_unless_allowed():
    from lm_zoo.patches import MAX_PATCH_BYTES, extract_25d_batch

    image = oblique_image()
    points = np.zeros((1000, 3))
    with pytest.raises(ValueError, match=r"1000 points .* over max_bytes=1000000 .*extract_25d_batch"):
        extract_25d(image, points, size=32, max_bytes=1_000_000)
    assert extract_25d(image, points, size=32, max_bytes=1_000_000, allow_large=True).shape == (1000, 32, 32, 3)
    # the default limit: 10^6 points of 32x32x3 float32 (12 GB) are refused before any allocation
    assert 10**6 * 32 * 32 * 3 * 4 > MAX_PATCH_BYTES
    with pytest.raises(ValueError, match=r"1000000 points .*11.44 GiB"):
        extract_25d(image, np.zeros((10**6, 3)))
    chunks = list(extract_25d_batch([(image, c) for c in np.array_split(points, 4)], size=8, progress=False))
    assert [len(c) for c in chunks] == [250] * 4
