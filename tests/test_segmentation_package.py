"""lm_zoo.segmentation as a package: its import boundary, the one rule table, the old module paths,
the one volume reader (truncated masks refused) and the one coordinate-system header parser."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from lm_zoo.errors import LmZooError
from lm_zoo.landmarks import LandmarkFileError, parse_coordinate_system
from lm_zoo.segmentation import RULES, Rule, SegmentationError, landmarks_from_segmentation

ALLOWED = {"lm_zoo", "lm_zoo.anatomy", "lm_zoo.io", "lm_zoo.landmarks", "lm_zoo.errors", "lm_zoo._atomic"}


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(m for m in sys.modules if m.startswith('lm_zoo')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_landmarks_module_loads_no_segmentation_code_and_segmentation_stays_inside_its_boundary():
    assert not any(m.startswith("lm_zoo.segmentation") for m in _modules_after("import lm_zoo.landmarks"))
    outside = {m for m in _modules_after("import lm_zoo.segmentation") if not m.startswith("lm_zoo.segmentation")}
    assert outside <= ALLOWED, outside - ALLOWED


def test_old_module_paths_and_the_lazy_landmarks_name_give_the_same_objects():
    import lm_zoo.landmarks
    import lm_zoo.segmentation as seg
    import lm_zoo.segmentation_landmarks as old
    import lm_zoo.totalsegmentator as old_maps

    assert lm_zoo.landmarks.landmarks_from_segmentation is seg.landmarks_from_segmentation
    assert old.landmarks_from_segmentation is seg.landmarks_from_segmentation
    assert (old.RULES, old.SegmentationError, old.SegmentationWarning) == (seg.RULES, seg.SegmentationError,
                                                                          seg.SegmentationWarning)
    assert old.STRUCTURE_FILE_SUFFIXES == seg.STRUCTURE_FILE_SUFFIXES
    assert old_maps.TOTAL is seg.TOTAL and old_maps.task_of is seg.task_of
    with pytest.raises(AttributeError):
        lm_zoo.landmarks.no_such_name  # noqa: B018
    assert issubclass(SegmentationError, LmZooError) and issubclass(SegmentationError, ValueError)


def test_one_rule_table_documents_and_derives_every_landmark():
    assert all(isinstance(rule, Rule) for rule in RULES.values())
    no_rule = {name for name, rule in RULES.items() if rule.derive is None}
    assert no_rule == {"right_iliac_bifurcation", "left_iliac_bifurcation"}
    assert all(rule.needs for name, rule in RULES.items() if name not in no_rule)
    structures, description = RULES["aortic_root"]  # still the (structures, description) pair
    assert RULES["aortic_root"][0] == structures and description.startswith("centroid of the aortic annulus")
    assert RULES["aortic_root"].needs == (("annulus_proper",), ("aorta", "heart"))


def _mask(shape=(20, 24, 28)) -> sitk.Image:
    array = np.zeros(shape, np.uint8)
    array[5:15, 6:18, 8:20] = 1
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 2.0))
    return image


def test_a_truncated_mask_in_a_mask_folder_is_refused_naming_the_file(tmp_path):
    sitk.WriteImage(_mask(), str(tmp_path / "kidney_left.nii.gz"))
    sitk.WriteImage(_mask(), str(tmp_path / "liver.nii.gz"))
    whole = (tmp_path / "liver.nii.gz").read_bytes()
    (tmp_path / "liver.nii.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SegmentationError, match=r"liver\.nii\.gz: truncated"):
        landmarks_from_segmentation(tmp_path)
    single = tmp_path / "single"
    single.mkdir()
    (single / "seg.nii.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SegmentationError, match=r"seg\.nii\.gz: truncated"):
        landmarks_from_segmentation(single / "seg.nii.gz")
    with pytest.raises(SegmentationError, match=r"seg\.nii\.gz: truncated"):
        landmarks_from_segmentation({"total": single / "seg.nii.gz"})


def test_one_coordinate_system_parser_with_the_callers_error_class(tmp_path):
    class TableError(LmZooError, ValueError):
        pass

    assert parse_coordinate_system(" ras ", tmp_path / "t.csv") == "RAS"
    assert parse_coordinate_system('"0"', tmp_path / "t.fcsv") == "RAS"
    assert parse_coordinate_system("1", tmp_path / "t.fcsv") == "LPS"
    with pytest.raises(LandmarkFileError, match=r"t\.csv: unknown coordinate system 'IJK'"):
        parse_coordinate_system("ijk", tmp_path / "t.csv")
    with pytest.raises(TableError, match=r"aneurysms\.csv: unknown coordinate system 'IJK'"):
        parse_coordinate_system("IJK", tmp_path / "aneurysms.csv", error=TableError)
