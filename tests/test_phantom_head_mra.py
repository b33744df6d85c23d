"""Head TOF-MRA phantom (phantom data only). Budget: ~20 s."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import SimpleITK as sitk

from lm_zoo import cohorts
from lm_zoo.phantoms import head_mra
from lm_zoo.phantoms.head_mra import Aneurysm, AneurysmTableError, CohortError

COARSE = ((0.7, 0.8), (0.9, 1.0))  # fast grids for cohort-file tests


@pytest.fixture(scope="module")
def positive_case():
    return head_mra.generate_case(11, aneurysm=True)


def test_same_seed_same_case_and_different_seed_differs(positive_case):
    image, aneurysms, mask = positive_case
    image2, aneurysms2, mask2 = head_mra.generate_case(11, aneurysm=True)
    assert np.array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(image2))
    assert np.array_equal(sitk.GetArrayViewFromImage(mask), sitk.GetArrayViewFromImage(mask2))
    assert image.GetOrigin() == image2.GetOrigin() and image.GetSpacing() == image2.GetSpacing()
    assert [(a.site, a.radius_mm, tuple(a.center_lps)) for a in aneurysms] == [
        (a.site, a.radius_mm, tuple(a.center_lps)) for a in aneurysms2]
    other, _, _ = head_mra.generate_case(12, aneurysm=True, spacing_mm=image.GetSpacing(), fov_mm=(20, 20, 20))
    assert other.GetSize() != image.GetSize()


def test_voxel_size_drawn_per_case_within_the_issue_range():
    spacings = set()
    for seed in range(6):
        rng_spacing = head_mra._default_spacing(np.random.default_rng(seed), head_mra.DEFAULT_SPACING_RANGE)
        spacings.add(rng_spacing)
        assert 0.4 <= rng_spacing[0] == rng_spacing[1] <= 0.6 and 0.5 <= rng_spacing[2] <= 1.0
    assert len(spacings) == 6
    image, _, _ = head_mra.generate_case(3, aneurysm=False, spacing_mm=(0.9, 0.9, 1.2))
    assert np.allclose(image.GetSpacing(), (0.9, 0.9, 1.2))
    assert np.allclose(np.asarray(image.GetSize()) * image.GetSpacing(), head_mra.DEFAULT_FOV_MM, atol=1.2)


def test_positive_case_ground_truth_matches_the_volume(positive_case):
    image, aneurysms, mask = positive_case
    assert image.GetPixelID() == sitk.sitkFloat32 and mask.GetPixelID() == sitk.sitkUInt8
    assert 1 <= len(aneurysms) <= 3
    arr = sitk.GetArrayFromImage(image)
    m = sitk.GetArrayFromImage(mask)
    brain = np.median(arr)
    for a in aneurysms:
        assert a.site in head_mra.SITES
        assert 1.0 <= a.radius_mm <= 6.0  # diameter 2-12 mm
        idx = image.TransformPhysicalPointToIndex(a.center_lps)  # raises if outside
        # The dome centre is aneurysm (mask) and bright blood, not background.
        assert m[idx[::-1]] == 1
        assert arr[idx[::-1]] > 1.5 * brain
    # Mask volume is of the order of the domes' volume (neck and blebs add, parent lumen removes).
    mask_mm3 = m.sum() * np.prod(image.GetSpacing())
    dome_mm3 = sum(4 / 3 * np.pi * a.radius_mm ** 3 for a in aneurysms)
    assert 0.3 * dome_mm3 < mask_mm3 < 3.0 * dome_mm3


def test_aneurysm_is_not_brighter_than_the_arteries():
    """No planted marker: dome signal stays within the range of normal arterial signal."""
    for seed in (21, 22):
        image, aneurysms, mask = head_mra.generate_case(seed, aneurysm=True, n_aneurysms=1)
        arr = sitk.GetArrayFromImage(image)
        m = sitk.GetArrayFromImage(mask) > 0
        artery_p99 = np.percentile(arr[~m], 99.9)
        assert np.median(arr[m]) < artery_p99


def test_negative_case_has_no_aneurysm():
    image, aneurysms, mask = head_mra.generate_case(5, aneurysm=False, spacing_mm=0.8)
    assert aneurysms == [] and sitk.GetArrayViewFromImage(mask).max() == 0


@pytest.mark.parametrize("kwargs, word", [
    (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"), (dict(seed=0, spacing_mm=(0.5, 0.5)), "spacing_mm"),
    (dict(seed=0, spacing_mm=0), "spacing_mm"), (dict(seed=0, aneurysm="yes"), "aneurysm"),
    (dict(seed=0, fov_mm=(1, 2)), "fov_mm"), (dict(seed=0, n_aneurysms=4), "n_aneurysms"),
])
def test_generate_case_rejects_bad_arguments(kwargs, word):
    seed = kwargs.pop("seed")
    with pytest.raises(ValueError, match=word):
        head_mra.generate_case(seed, **kwargs)


def test_aneurysm_fraction_is_held_in_every_prefix():
    for fraction in (0.3, 0.5, 0.8):
        flags = [head_mra.case_plan(7, i, fraction)[1] for i in range(200)]
        for n in (4, 10, 200):
            assert abs(sum(flags[:n]) - fraction * n) <= 1
    assert not any(head_mra.case_plan(7, i, 0.0)[1] for i in range(20))
    assert all(head_mra.case_plan(7, i, 1.0)[1] for i in range(20))


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_write_cohort_layout_and_case_independence(tmp_path):
    ids = head_mra.write_cohort(tmp_path / "a", 3, seed=4, progress=False, spacing_range=COARSE)
    assert ids == ["phantom_mra_0000", "phantom_mra_0001", "phantom_mra_0002"]
    root = tmp_path / "a"
    assert (root / "cases.txt").read_text().split() == ids
    assert (root / "montage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(root / "images")) == [f"{c}.nii.gz" for c in ids]
    assert sorted(os.listdir(root / "masks")) == [f"{c}.nii.gz" for c in ids]
    table = head_mra.read_aneurysms(root / "aneurysms.csv")
    assert set(table) <= set(ids) and len(table) in (1, 2)  # fraction 0.5 of 3 cases
    for cid, rows in table.items():
        image = sitk.ReadImage(str(root / "images" / f"{cid}.nii.gz"))
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "masks" / f"{cid}.nii.gz")))
        assert image.GetPixelID() == sitk.sitkInt16
        for a in rows:
            assert mask[image.TransformPhysicalPointToIndex(a.center_lps)[::-1]] == 1
    # Case i depends only on (seed, i): a smaller cohort holds byte-identical first cases.
    # (written by two worker processes: same bytes as one process)
    head_mra.write_cohort(tmp_path / "b", 2, seed=4, progress=False, spacing_range=COARSE, montage_cases=0,
                          workers=2)
    for c in ids[:2]:
        for sub in ("images", "masks"):
            assert _digest(root / sub / f"{c}.nii.gz") == _digest(tmp_path / "b" / sub / f"{c}.nii.gz")
    assert not (tmp_path / "b" / "montage.png").exists()
    # No temporary files left behind.
    assert not [p for p in root.rglob(".*")]


def test_write_cohort_refuses_bad_input_without_writing(tmp_path):
    with pytest.raises(CohortError, match="n_cases"):
        head_mra.write_cohort(tmp_path / "x", 0, progress=False)
    assert not (tmp_path / "x").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(CohortError, match="not empty"):
        head_mra.write_cohort(busy, 1, progress=False)
    assert os.listdir(busy) == ["notes.txt"]
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(CohortError, match="not a folder"):
        head_mra.write_cohort(afile, 1, progress=False)
    with pytest.raises(CohortError, match="aneurysm_fraction"):
        head_mra.write_cohort(tmp_path / "y", 1, aneurysm_fraction=1.5, progress=False)


def test_overwrite_replaces_stale_cases(tmp_path):
    head_mra.write_cohort(tmp_path, 2, seed=1, progress=False, spacing_range=COARSE, montage_cases=0)
    head_mra.write_cohort(tmp_path, 1, seed=1, overwrite=True, progress=False, spacing_range=COARSE,
                          montage_cases=0)
    assert os.listdir(tmp_path / "images") == ["phantom_mra_0000.nii.gz"]
    assert (tmp_path / "cases.txt").read_text() == "phantom_mra_0000\n"


def test_read_aneurysms_round_trip_and_errors(tmp_path):
    good = tmp_path / "a.csv"
    good.write_text("case_id,x,y,z,radius_mm,site\nc1,1.5,-2,3,2.5,acomm\nc1,0,0,0,1,basilar_tip\n"
                    "c2,4,5,6,3,ica_pcomm\n")
    table = head_mra.read_aneurysms(good)
    assert sorted(table) == ["c1", "c2"] and len(table["c1"]) == 2
    assert isinstance(table["c1"][0], Aneurysm)
    assert np.allclose(table["c1"][0].center_lps, [1.5, -2, 3]) and table["c1"][0].radius_mm == 2.5
    assert table["c2"][0].site == "ica_pcomm"

    # One reader and one record type for phantom and user tables.
    assert head_mra.read_aneurysms is cohorts.read_aneurysm_table and Aneurysm is cohorts.Aneurysm
    bad_header = tmp_path / "h.csv"
    bad_header.write_text("case,x,y,z\n")
    with pytest.raises(AneurysmTableError, match=r"h\.csv: missing column"):
        head_mra.read_aneurysms(bad_header)
    bad_number = tmp_path / "n.csv"
    bad_number.write_text("case_id,x,y,z,radius_mm,site\nc1,1,2,3,2,acomm\nc2,1,two,3,2,acomm\n")
    with pytest.raises(AneurysmTableError, match=r"n\.csv: line 3 \(case 'c2'\)"):
        head_mra.read_aneurysms(bad_number)
    bad_radius = tmp_path / "r.csv"
    bad_radius.write_text("case_id,x,y,z,radius_mm,site\nc1,1,2,3,-2,acomm\n")
    with pytest.raises(AneurysmTableError, match=r"r\.csv: line 2.*radius_mm"):
        head_mra.read_aneurysms(bad_radius)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        head_mra.read_aneurysms(tmp_path / "missing.csv")
