"""benchmarks/real_holdout.py: its folds and cohort layout (the training runs are not part of CI)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_file

BENCH = Path(__file__).parents[1] / "benchmarks" / "real_holdout.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("real_holdout", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folds_keep_anatomical_groups_and_left_right_pairs_together(bench):
    names = ["vertebra_l1", "vertebra_l2", "kidney_left_hilum", "kidney_right_hilum", "asis_left", "asis_right",
             "rib12_tip_left", "rib12_tip_right", "femoral_head_left", "femoral_head_right", "liver_inferior_tip"]
    folds = bench.folds(names)
    assert sorted(folds["A"] + folds["B"]) == sorted(names) and not set(folds["A"]) & set(folds["B"])
    for fold in folds.values():
        for n in fold:
            twin = n.replace("_left", "_right") if "_left" in n else n.replace("_right", "_left")
            assert twin not in names or twin in fold, (n, twin)  # a mirror twin is never on the other side
    assert {"vertebra_l1", "vertebra_l2"} <= set(folds["A"]) and "kidney_left_hilum" in folds["B"]


def test_layout_cohort_links_the_scan_and_writes_only_the_fold_landmarks(bench, shared_data, tmp_path):
    from lm_zoo import cohorts
    from lm_zoo.landmarks import read_landmarks

    shared_file(shared_data, "totalseg_example/example_seg_fast_force_split.nii.gz")
    full = bench.layout_cohort(tmp_path / "full", shared_data)
    cases, _ = cohorts.read_landmark_cohort(full)  # the manual builders' own reader accepts it
    assert [c.case_id for c in cases] == ["example_ct"] and cohorts.is_segmentation(cases[0].landmarks)
    part = bench.layout_cohort(tmp_path / "part", shared_data, only=["vertebra_l1", "kidney_left_hilum"])
    (case,), _ = cohorts.read_landmark_cohort(part)
    written = read_landmarks(case.landmarks)
    derived = bench.derived_landmarks(shared_data)
    assert written.names == ["vertebra_l1", "kidney_left_hilum"]
    np.testing.assert_allclose(written.points, derived.subset(written.names).points, atol=1e-3)
