"""landmarks_from_segmentation: TotalSegmentator output -> the package's named landmarks.

Real-data tests use the TotalSegmentator example CT and its ``total`` label map from
``../shared/data/totalseg_example`` (skip when absent) and check geometry, not that it runs.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from lm_zoo.landmarks import Landmarks, landmarks_from_segmentation
from lm_zoo.segmentation import RULES, TOTAL, SegmentationError, SegmentationWarning
from tests.conftest import shared_file

ID = {name: i for i, name in TOTAL.items()}
SEG = "totalseg_example/example_seg_fast_force_split.nii.gz"
CT = "totalseg_example/example_ct.nii.gz"


def _label_at(seg: sitk.Image, point) -> int:
    index = seg.TransformPhysicalPointToIndex(tuple(float(v) for v in point))
    return int(seg[index])


@pytest.fixture(scope="module")
def example(request):
    shared = request.getfixturevalue("shared_data")
    seg_path = shared_file(shared, SEG)
    seg = sitk.ReadImage(str(seg_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm = landmarks_from_segmentation(seg_path)
    return seg, lm, [str(w.message) for w in caught if issubclass(w.category, SegmentationWarning)]


def test_every_table_landmark_has_a_documented_rule():
    from lm_zoo.anatomy import LM60

    assert sorted(RULES) == sorted(LM60)
    assert all(structures and rule for structures, rule in RULES.values())


def test_vertebral_body_centres_lie_in_their_vertebra_in_cranio_caudal_order_and_in_front_of_the_canal(example):
    seg, lm, _ = example
    d = lm.as_dict()
    levels = ["l1", "l2", "l3", "l4", "l5"]
    assert all(f"vertebra_{v}" in d for v in levels)
    for v in levels:
        assert _label_at(seg, d[f"vertebra_{v}"]) == ID[f"vertebrae_{v.upper()}"], v
    z = [d[f"vertebra_{v}"][2] for v in levels]
    assert np.all(np.diff(z) < -20), z  # L1 above L2 ... above L5, a body height apart
    # the body, not the whole vertebra: anterior (-y in LPS) of the whole-vertebra centroid and of the cord
    arr = sitk.GetArrayViewFromImage(seg)
    for v in levels:
        whole = np.argwhere(arr == ID[f"vertebrae_{v.upper()}"])[:, ::-1].astype(float)
        whole_centroid = np.mean([seg.TransformContinuousIndexToPhysicalPoint(p) for p in whole[::7]], axis=0)
        assert d[f"vertebra_{v}"][1] < whole_centroid[1] - 5, v


def test_kidney_poles_and_hila_lie_in_or_beside_their_kidney(example):
    seg, lm, _ = example
    d = lm.as_dict()
    for side in ("right", "left"):
        upper, lower = d[f"kidney_{side}_upper_pole"], d[f"kidney_{side}_lower_pole"]
        assert _label_at(seg, upper) == ID[f"kidney_{side}"]
        assert _label_at(seg, lower) == ID[f"kidney_{side}"]
        assert upper[2] - lower[2] > 60  # a kidney is ~10-12 cm long
        # the hilum is on the medial side: closer to the midline (x = spine) than the poles
        spine_x = d["vertebra_l2"][0]
        assert abs(d[f"kidney_{side}_hilum"][0] - spine_x) < abs((upper[0] + lower[0]) / 2 - spine_x)
    assert d["kidney_right_upper_pole"][0] < 0 < d["kidney_left_upper_pole"][0]  # LPS: x grows to the left


def test_femoral_heads_inside_the_femur_and_pelvic_points_on_the_right_bones(example):
    seg, lm, _ = example
    d = lm.as_dict()
    for side in ("right", "left"):
        assert _label_at(seg, d[f"femoral_head_{side}"]) == ID[f"femur_{side}"]
        assert _label_at(seg, d[f"iliac_crest_top_{side}"]) == ID[f"hip_{side}"]
        assert d[f"iliac_crest_top_{side}"][2] > d[f"asis_{side}"][2] > d[f"femoral_head_{side}"][2]
    assert d["femoral_head_right"][0] < -50 and d["femoral_head_left"][0] > 50
    assert _label_at(seg, d["sacral_promontory"]) in (ID["vertebrae_S1"], ID["sacrum"])
    # the aorta bifurcates in front of L4 (+- one level)
    assert d["vertebra_l5"][2] - 15 < d["aortic_bifurcation"][2] < d["vertebra_l3"][2] + 15


def test_structures_cut_by_the_field_of_view_give_no_landmark_and_a_warning_naming_them(example):
    _, lm, messages = example
    # T11 (83 voxels) and T12, the liver, the spleen and the aorta reach the top slice
    for structure, landmark in (("vertebrae_T11", "vertebra_t11"), ("liver", "liver_dome"),
                                ("spleen", "spleen_superior_pole"), ("aorta", "aortic_arch_top")):
        assert landmark not in lm.names
        assert any(structure in m and landmark in m for m in messages), (structure, messages)
    assert not np.any(np.all(lm.points == 0, axis=1))


def test_folder_of_masks_gives_the_multilabel_result_and_ignores_unknown_files(example, tmp_path):
    seg, lm, _ = example
    arr = sitk.GetArrayFromImage(seg)
    for name in ("kidney_left", "vertebrae_L3", "spinal_cord", "femur_right", "liver"):
        mask = sitk.GetImageFromArray((arr == ID[name]).astype(np.uint8))
        mask.CopyInformation(seg)
        sitk.WriteImage(mask, str(tmp_path / f"{name}.nii.gz"))
    empty = sitk.GetImageFromArray(np.zeros_like(arr, np.uint8))
    empty.CopyInformation(seg)
    sitk.WriteImage(empty, str(tmp_path / "kidney_right.nii.gz"))  # all zero: no right-kidney landmark
    (tmp_path / "notes.txt").write_text("not a mask")
    folder = landmarks_from_segmentation(tmp_path)
    assert not any(n.startswith("kidney_right") for n in folder.names)
    for name in ("kidney_left_upper_pole", "kidney_left_hilum", "vertebra_l3", "femoral_head_right", "liver_inferior_tip"):
        np.testing.assert_allclose(folder.as_dict()[name], lm.as_dict()[name], atol=1e-6)


def _label_image(array, spacing=(2.0, 2.0, 2.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    return image


def _ellipsoid_labels(shape=(60, 50, 50), label=ID["kidney_left"], dtype=np.uint8):
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    inside = ((z - 30) / 25.0) ** 2 + ((y - 25) / 10.0) ** 2 + ((x - 25) / 11.0) ** 2 <= 1
    return (inside * label).astype(dtype)


def test_synthetic_kidney_poles_follow_the_long_axis():
    lm = landmarks_from_segmentation(_label_image(_ellipsoid_labels()), names=["kidney_left_upper_pole", "kidney_left_lower_pole"])
    d = lm.as_dict()
    # semi-axis 25 voxels x 2 mm = 50 mm along z, poles at 92 %: 46 mm from the centre (index 30 -> 60 mm)
    np.testing.assert_allclose(d["kidney_left_upper_pole"], [50, 50, 60 + 46], atol=2.0)
    np.testing.assert_allclose(d["kidney_left_lower_pole"], [50, 50, 60 - 46], atol=2.0)


def test_bad_inputs_name_the_file(tmp_path):
    arr = _ellipsoid_labels()
    floats = _label_image(arr.astype(np.float32) + 0.5)
    path = tmp_path / "seg_float.nii.gz"
    sitk.WriteImage(floats, str(path))
    with pytest.raises(SegmentationError, match="seg_float.nii.gz.*non-integer"):
        landmarks_from_segmentation(path)
    # a label map on another grid than the image it should belong to
    seg_path = tmp_path / "seg.nii.gz"
    sitk.WriteImage(_label_image(arr), str(seg_path))
    other = _label_image(np.zeros((60, 50, 50), np.int16), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(SegmentationError, match="seg.nii.gz.*differs from the image"):
        landmarks_from_segmentation(seg_path, image=other)
    # unknown label ids: a warning naming the file and the ids
    arr2 = arr.copy()
    arr2[0, 0, 0] = 200
    odd_path = tmp_path / "seg_odd.nii.gz"
    sitk.WriteImage(_label_image(arr2), str(odd_path))
    with pytest.warns(SegmentationWarning, match=r"seg_odd.nii.gz: label id\(s\) \[200\]"):
        landmarks_from_segmentation(odd_path)
    # a folder with no TotalSegmentator structure
    folder = tmp_path / "masks"
    folder.mkdir()
    sitk.WriteImage(_label_image(arr), str(folder / "my_kidney.nii.gz"))
    with pytest.raises(SegmentationError, match="masks: folder holds no mask named like a TotalSegmentator"):
        landmarks_from_segmentation(folder)
    # masks of one folder on two grids: the second file is named
    sitk.WriteImage(_label_image((arr > 0).astype(np.uint8)), str(folder / "kidney_left.nii.gz"))
    sitk.WriteImage(_label_image((arr > 0).astype(np.uint8), spacing=(1.0, 2.0, 2.0)), str(folder / "liver.nii.gz"))
    with pytest.raises(SegmentationError, match=r"liver.nii.gz: on a different voxel grid .* than .*kidney_left.nii.gz"):
        landmarks_from_segmentation(folder)
    with pytest.raises(SegmentationError, match="unknown landmark"):
        landmarks_from_segmentation(seg_path, names=["kidney_top"])
    # an all-zero map: no landmarks, never a point at the origin
    empty = landmarks_from_segmentation(_label_image(np.zeros((20, 20, 20), np.uint8)))
    assert isinstance(empty, Landmarks) and len(empty) == 0


def test_cli_from_segmentation_writes_the_landmarks_by_suffix_and_names_a_bad_grid(tmp_path, capsys):
    from lm_zoo import cli
    from lm_zoo.landmarks import read_landmarks

    seg_path = tmp_path / "seg.nii.gz"
    sitk.WriteImage(_label_image(_ellipsoid_labels()), str(seg_path))
    out = tmp_path / "points.fcsv"
    assert cli.main(["landmarks", "from-segmentation", str(seg_path), "--out", str(out), "--coordinate-system", "RAS"]) == 0
    direct = landmarks_from_segmentation(seg_path)
    back = read_landmarks(out)  # the fcsv says RAS; read back as LPS
    assert back.names == direct.names and "kidney_left_upper_pole" in back.names
    np.testing.assert_allclose(back.points, direct.points, atol=1e-6)
    other = tmp_path / "ct.nii.gz"
    sitk.WriteImage(_label_image(np.zeros((60, 50, 50), np.int16), spacing=(1.0, 1.0, 1.0)), str(other))
    assert cli.main(["landmarks", "from-segmentation", str(seg_path), "--image", str(other), "--out", str(tmp_path / "x.csv")]) == 2
    assert "seg.nii.gz" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
