"""lm_zoo.landmarks: file formats <-> LPS points, label centroids, negative sampling."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from lm_zoo.landmarks import (
    LandmarkFileError,
    axis_codes,
    Landmarks,
    body_mask,
    label_centroids,
    read_landmarks,
    sample_negatives,
    verse_label_name,
    write_landmarks,
)
from tests.conftest import shared_file

POINTS = np.array([[1.5, -2.25, 30.0], [-10.0, 20.125, -5.5]])


# ----------------------------------------------------------------------------------- formats
def test_csv_without_header_is_lps_and_ras_header_flips_x_y(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("name,x,y,z\nnasion,1.5,-2.25,30\nsella,-10,20.125,-5.5\n")
    ras = tmp_path / "ras.csv"
    ras.write_text("# coordinate_system = RAS\nname,x,y,z\nnasion,-1.5,2.25,30\nsella,10,-20.125,-5.5\n")
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("# Coordinate System = ras\nname, x, y, z\nnasion, -1.5, 2.25, 30\nsella, 10, -20.125, -5.5\n")
    for path in (plain, ras, spaced):
        landmarks = read_landmarks(path)
        assert landmarks.names == ["nasion", "sella"]
        np.testing.assert_array_equal(landmarks.points, POINTS)


@pytest.mark.parametrize("suffix", [".csv", ".fcsv", ".mrk.json"])
@pytest.mark.parametrize("system", ["LPS", "RAS"])
def test_write_read_round_trip(tmp_path, suffix, system):
    landmarks = Landmarks(["a_point", "b_point"], POINTS)
    path = write_landmarks(tmp_path / f"lm{suffix}", landmarks, coordinate_system=system)
    back = read_landmarks(path)
    assert back.names == landmarks.names
    np.testing.assert_array_equal(back.points, POINTS)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_written_ras_files_really_hold_ras(tmp_path):
    landmarks = Landmarks(["a_point", "b_point"], POINTS)
    fcsv = write_landmarks(tmp_path / "lm.fcsv", landmarks, coordinate_system="RAS").read_text()
    assert "# CoordinateSystem = RAS" in fcsv and "-1.5,2.25,30.0" in fcsv
    data = json.loads(write_landmarks(tmp_path / "lm.mrk.json", landmarks, "RAS").read_text())
    assert data["markups"][0]["coordinateSystem"] == "RAS"
    assert data["markups"][0]["controlPoints"][0]["position"] == [-1.5, 2.25, 30.0]


FCSV_ROW = "vtkMRMLMarkupsFiducialNode_0,-1.5,2.25,30,0,0,0,1,1,1,0,nasion,,\n"


@pytest.mark.parametrize(
    "version, system",
    [("4.6", "0"), ("4.11", "RAS"), ("5.0", "RAS"), ("4.6", "1"), ("5.0", "LPS")],
)
def test_fcsv_v4_and_v5_headers(tmp_path, version, system):
    path = tmp_path / "lm.fcsv"
    path.write_text(
        f"# Markups fiducial file version = {version}\n# CoordinateSystem = {system}\n"
        "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n" + FCSV_ROW
    )
    point = read_landmarks(path).points[0]
    is_ras = system in ("0", "RAS")
    np.testing.assert_array_equal(point, [1.5, -2.25, 30] if is_ras else [-1.5, 2.25, 30])


def test_bad_files_give_clear_errors(tmp_path):
    unknown = tmp_path / "ijk.fcsv"
    unknown.write_text("# Markups fiducial file version = 4.6\n# CoordinateSystem = 2\n" + FCSV_ROW)
    with pytest.raises(LandmarkFileError, match=r"ijk.fcsv: unknown coordinate system '2'.*\['LPS', 'RAS'\]"):
        read_landmarks(unknown)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("# coordinate_system = voxel\nname,x,y,z\na,1,2,3\n")
    with pytest.raises(LandmarkFileError, match="bad.csv: unknown coordinate system 'VOXEL'"):
        read_landmarks(bad_csv)
    duplicate = tmp_path / "dup.csv"
    duplicate.write_text("name,x,y,z\na,1,2,3\nb,4,5,6\na,7,8,9\n")
    with pytest.raises(LandmarkFileError, match=r"dup.csv: landmark 'a' appears twice, on lines 2 and 4"):
        read_landmarks(duplicate)
    nan = tmp_path / "nan.csv"
    nan.write_text("name,x,y,z\na,1,2,3\nb,nan,5,6\n")
    with pytest.raises(LandmarkFileError, match=r"nan.csv: .*NaN/inf.*'b'"):
        read_landmarks(nan)
    empty = tmp_path / "empty.csv"
    empty.write_text("# coordinate_system = LPS\nname,x,y,z\n")
    with pytest.raises(LandmarkFileError, match="empty.csv: file holds no landmarks"):
        read_landmarks(empty)
    text = tmp_path / "letters.csv"
    text.write_text("name,x,y,z\na,1,two,3\n")
    with pytest.raises(LandmarkFileError, match="letters.csv: line 2"):
        read_landmarks(text)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(LandmarkFileError, match="binary.csv: not a readable landmark file"):
        read_landmarks(binary)
    odd_json = tmp_path / "odd.mrk.json"
    odd_json.write_text(json.dumps({"markups": [{"controlPoints": [{"position": [1, 2]}]}]}))
    with pytest.raises(LandmarkFileError, match="odd.mrk.json"):
        read_landmarks(odd_json)
    with pytest.raises(FileNotFoundError, match="missing.fcsv"):
        read_landmarks(tmp_path / "missing.fcsv")
    with pytest.raises(LandmarkFileError, match="coordinate_system 'IJK'"):
        write_landmarks(tmp_path / "x.csv", Landmarks(["a"], POINTS[:1]), coordinate_system="IJK")
    with pytest.raises(LandmarkFileError, match="unknown landmark file type"):
        write_landmarks(tmp_path / "x.txt", Landmarks(["a"], POINTS[:1]))
    with pytest.raises(LandmarkFileError, match="empty landmark file"):
        write_landmarks(tmp_path / "none.csv", Landmarks([], np.empty((0, 3))))
    assert not (tmp_path / "none.csv").exists()


def test_verse_json_needs_an_image(tmp_path):
    path = tmp_path / "ctd.json"
    path.write_text(json.dumps([{"direction": ["P", "I", "R"]}, {"label": 20, "X": 1, "Y": 2, "Z": 3}]))
    with pytest.raises(LandmarkFileError, match="ctd.json: VerSe centroids are voxel indices; pass image="):
        read_landmarks(path)
    image = sitk.Image([10, 10, 10], sitk.sitkUInt8)
    image.SetSpacing((1, 2, 3))
    image.SetOrigin((5, 6, 7))
    with pytest.raises(LandmarkFileError, match="ctd.json: centroids index a P,I,R voxel grid but the image's axes point L,P,S"):
        read_landmarks(path, image=image)
    # a P, I, R grid: i runs posterior (+y LPS), j inferior (-z), k right (-x)
    image.SetDirection((0, 0, -1, 1, 0, 0, 0, -1, 0))
    landmarks = read_landmarks(path, image=image)
    assert landmarks.names == ["vertebra_l1"]
    np.testing.assert_allclose(landmarks.points, [[5 - 3 * 3, 6 + 1 * 1, 7 - 2 * 2]])


def test_landmarks_outside_the_image_warn_once(tmp_path):
    image = sitk.Image([20, 20, 20], sitk.sitkInt16)  # LPS 0..19 mm on each axis
    path = tmp_path / "lm.csv"
    path.write_text("# coordinate_system = RAS\nname,x,y,z\ninside,-5,-5,5\nout_a,5,5,5\nout_b,6,6,6\n")
    with pytest.warns(UserWarning, match=r"lm.csv: 2 of 3 landmark\(s\) lie outside the volume \(first 'out_a'") as caught:
        read_landmarks(path, image=image)
    assert len(caught) == 1
    path.write_text("name,x,y,z\ninside,5,5,5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_landmarks(path, image=image)
        # a path is not read just for this check (only VerSe files need the volume)
        read_landmarks(path, image=tmp_path / "not_an_image.nii.gz")


def test_verse_label_names():
    assert [verse_label_name(i) for i in (1, 7, 8, 19, 20, 25, 26, 27, 28)] == [
        "vertebra_c1", "vertebra_c7", "vertebra_t1", "vertebra_t12", "vertebra_l1", "vertebra_l6",
        "sacrum", "coccyx", "vertebra_t13",
    ]
    with pytest.raises(LandmarkFileError, match="29"):
        verse_label_name(29)


# ----------------------------------------------------------------------------------- label maps
def test_label_centroids_on_synthetic_blocks():
    array = np.zeros((10, 12, 14), dtype=np.uint8)
    array[2:4, 3:7, 5:9] = 3  # centroid index (x, y, z) = (6.5, 4.5, 2.5)
    array[6:9, 8:10, 1:2] = 7  # (1, 8.5, 7)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 1.0, 2.0))
    image.SetOrigin((100, -50, 20))
    centroids = label_centroids(image, {3: "liver_tip", 7: "spleen_tip", 9: "absent"})
    assert centroids.names == ["liver_tip", "spleen_tip"]
    np.testing.assert_allclose(centroids.points, [[103.25, -45.5, 25.0], [100.5, -41.5, 34.0]])
    assert label_centroids(image).names == ["label_3", "label_7"]


# ----------------------------------------------------------------------------------- negatives
def body_phantom():
    """Air (-1000 HU) around a 'body' cylinder (40 HU) with an internal air pocket (a lung)."""
    zz, yy, xx = np.mgrid[:20, :40, :40]
    body = (yy - 20) ** 2 + (xx - 20) ** 2 < 15**2
    lung = (yy - 20) ** 2 + (xx - 16) ** 2 < 5**2
    array = np.where(body & ~lung, 40, -1000).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 3.0))
    image.SetOrigin((-40, -40, 0))
    return image, body


def test_body_mask_fills_internal_air():
    image, body = body_phantom()
    np.testing.assert_array_equal(body_mask(image), body)
    np.testing.assert_array_equal(body_mask(image, threshold=-500), body)


def test_negatives_are_in_the_body_far_from_landmarks_and_seeded():
    image, body = body_phantom()
    avoid = np.array([[0.0, 0.0, 30.0], [10.0, -8.0, 20.0]])
    points = sample_negatives(image, avoid, n=200, min_distance_mm=12.0, seed=4)
    assert points.shape == (200, 3)
    distances = np.linalg.norm(points[:, None] - avoid[None], axis=2)
    assert distances.min() >= 12.0
    index = np.array([image.TransformPhysicalPointToIndex(p.tolist()) for p in points])
    assert body[index[:, 2], index[:, 1], index[:, 0]].all()
    again = sample_negatives(image, avoid, n=200, min_distance_mm=12.0, seed=4)
    assert again.tobytes() == points.tobytes()
    assert not np.allclose(sample_negatives(image, avoid, n=200, min_distance_mm=12.0, seed=5), points)
    assert sample_negatives(image, avoid, n=0, min_distance_mm=12.0, seed=0).shape == (0, 3)
    with pytest.raises(ValueError, match="found only"):
        sample_negatives(image, avoid, n=5, min_distance_mm=500.0, seed=0)


# ----------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def afids(shared_data):
    return read_landmarks(
        shared_file(shared_data, "afids_mni152/tpl-MNI152NLin2009cAsym_afids.fcsv"), name_field="desc"
    )


@pytest.mark.shared_data
def test_afids_midline_points_lie_on_the_mid_sagittal_plane(afids):
    assert len(afids) == 32
    midline = ["AC", "PC", "infracollicular sulcus", "PMJ", "superior interpeduncular fossa",
               "Culmen", "Intermammillary sulcus", "pineal gland", "Genu of CC", "Splenium of CC"]
    x = afids.subset(midline).points[:, 0]
    assert np.abs(x).max() < 1.0  # MNI x = 0 is the mid-sagittal plane
    ac, pc = afids.subset(["AC", "PC"]).points
    assert pc[1] - ac[1] > 20  # LPS y grows posteriorly: PC is behind AC
    assert np.linalg.norm(ac - pc) == pytest.approx(28.14, abs=0.01)  # MANIFEST


@pytest.mark.shared_data
def test_afids_left_right_pairs_mirror_in_lps_x(afids):
    named = afids.as_dict()
    pairs = [(n, "L " + n[2:]) for n in afids.names if n.startswith("R ") and "L " + n[2:] in named]
    assert len(pairs) == 11
    for right, left in pairs:
        r, l = named[right], named[left]
        assert r[0] < -1 and l[0] > 1, f"{right}: right must have LPS x < 0 (x grows to the left)"
        assert abs(r[0] + l[0]) < 2.0 and np.abs(r[1:] - l[1:]).max() < 4.0, (right, r, l)


@pytest.mark.shared_data
def test_afids_json_equals_fcsv_and_points_fall_in_the_template(shared_data, afids):
    from_json = read_landmarks(
        shared_file(shared_data, "afids_mni152/tpl-MNI152NLin2009cAsym_afids.json"), name_field="desc"
    )
    assert from_json.names == afids.names
    np.testing.assert_array_equal(from_json.points, afids.points)
    image = sitk.ReadImage(str(shared_file(shared_data, "afids_mni152/tpl-MNI152NLin2009cAsym_res-02_T1w.nii.gz")))
    assert axis_codes(image) == ("R", "A", "S")  # MANIFEST: nibabel axcodes RAS
    index = np.array([image.TransformPhysicalPointToContinuousIndex(p.tolist()) for p in afids.points])
    # MANIFEST: continuous index min (30.9, 25.5, 24.8), max (65.4, 83, 53.1)
    np.testing.assert_allclose(index.min(axis=0), [30.9, 25.5, 24.8], atol=0.06)
    np.testing.assert_allclose(index.max(axis=0), [65.4, 83.0, 53.1], atol=0.06)


@pytest.mark.shared_data
def test_verse_centroids_land_in_their_vertebra(shared_data):
    mask_path = shared_file(shared_data, "verse_sample/sub-verse004_seg-vert_msk.nii.gz")
    centroids = read_landmarks(shared_file(shared_data, "verse_sample/sub-verse004_seg-subreg_ctd.json"), image=mask_path)
    assert centroids.names == [f"vertebra_t{i}" for i in (9, 10, 11, 12)] + [f"vertebra_l{i}" for i in range(1, 6)]
    mask = sitk.ReadImage(str(mask_path))
    assert axis_codes(mask) == ("P", "I", "R")  # MANIFEST: nibabel axcodes P, I, R
    for label, point in zip(range(16, 25), centroids.points):
        assert mask[mask.TransformPhysicalPointToIndex(point.tolist())] == label
    assert np.all(np.diff(centroids.points[:, 2]) < 0)  # T9 -> L5 goes inferior (LPS z decreases)


@pytest.mark.shared_data
def test_totalsegmentator_vertebra_centroids_fall_inside_their_vertebra(shared_data):
    from scipy.spatial import cKDTree

    seg = sitk.ReadImage(str(shared_file(shared_data, "totalseg_example/example_seg_fast_force_split.nii.gz")))
    names = {25: "sacrum", 26: "vertebra_s1", 27: "vertebra_l5", 28: "vertebra_l4", 29: "vertebra_l3",
             30: "vertebra_l2", 31: "vertebra_l1", 32: "vertebra_t12", 33: "vertebra_t11"}
    centroids = label_centroids(seg, names)
    assert centroids.names == list(names.values())
    array = sitk.GetArrayViewFromImage(seg)
    to_lps = np.asarray(seg.GetDirection()).reshape(3, 3) * seg.GetSpacing()
    for label, point in zip(names, centroids.points):
        voxels = np.asarray(seg.GetOrigin()) + np.argwhere(array == label)[:, ::-1] @ to_lps.T
        distance, _ = cKDTree(voxels).query(point)
        assert distance < 3.0, f"{names[label]} centroid {point} is {distance:.1f} mm from its label"
    z = centroids.points[:, 2]
    assert np.all(np.diff(z) > 0)  # sacrum -> T11 goes superior
    reference = json.loads(shared_file(shared_data, "totalseg_example/labels.json").read_text())
    listed = reference["vertebrae_present_in_example_seg_fast_force_split"]["labels"]
    for label, point in zip(names, centroids.points):
        np.testing.assert_allclose(point, listed[str(label)]["centroid_lps_mm"], atol=0.01)


def test_duplicated_rows_are_refused_naming_file_and_lines(tmp_path):
    fcsv = tmp_path / "dup.fcsv"
    fcsv.write_text("# Markups fiducial file version = 4.6\n# CoordinateSystem = 0\n" + FCSV_ROW + FCSV_ROW)
    with pytest.raises(LandmarkFileError, match=r"dup.fcsv: landmark .* appears twice, on lines 3 and 4"):
        read_landmarks(fcsv)


def test_utf8_bom_files_are_read_and_empty_files_say_so(tmp_path):
    bom = tmp_path / "excel.csv"
    bom.write_bytes(b"\xef\xbb\xbfname,x,y,z\na,1,2,3\n")
    assert read_landmarks(bom).names == ["a"]
    bom_fcsv = tmp_path / "excel.fcsv"
    bom_fcsv.write_bytes(b"\xef\xbb\xbf" + ("# Markups fiducial file version = 4.6\n# CoordinateSystem = 0\n" + FCSV_ROW).encode())
    assert len(read_landmarks(bom_fcsv)) == 1
    for name, content in (("zero.csv", b""), ("blank.fcsv", b"\xef\xbb\xbf\n  \n")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(LandmarkFileError, match=rf"{name}: landmark file is empty"):
            read_landmarks(path)


def test_markups_json_without_coordinate_system_warns_lps(tmp_path):
    path = tmp_path / "nosys.mrk.json"
    path.write_text(json.dumps({"markups": [{"controlPoints": [{"label": "a", "position": [1, 2, 3]}]}]}))
    with pytest.warns(UserWarning, match=r"nosys.mrk.json: markup has no 'coordinateSystem'.*LPS"):
        landmarks = read_landmarks(path)
    assert landmarks.points.tolist() == [[1.0, 2.0, 3.0]]
    with_system = tmp_path / "ras.mrk.json"
    with_system.write_text(json.dumps({"markups": [{"coordinateSystem": "RAS",
                                                    "controlPoints": [{"label": "a", "position": [1, 2, 3]}]}]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_landmarks(with_system).points.tolist() == [[-1.0, -2.0, 3.0]]
