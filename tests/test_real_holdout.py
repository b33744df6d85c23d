"""lm_zoo.training.holdout: folds by anatomical group and the fold cohorts of the real-CT hold-out
(``benchmarks/real_holdout.py``; the training runs are not part of CI)."""
from __future__ import annotations

import numpy as np
import pytest

from lm_zoo.training import holdout, real_ct
from tests.conftest import shared_file

CT = "totalseg_example/example_ct.nii.gz"
SEG = "totalseg_example/example_seg_fast_force_split.nii.gz"


def test_folds_keep_anatomical_groups_and_left_right_pairs_together():
    names = ["vertebra_l1", "vertebra_l2", "kidney_left_hilum", "kidney_right_hilum", "asis_left", "asis_right",
             "rib12_tip_left", "rib12_tip_right", "femoral_head_left", "femoral_head_right", "liver_inferior_tip"]
    folds = holdout.anatomical_folds(names)
    assert sorted(folds["A"] + folds["B"]) == sorted(names) and not set(folds["A"]) & set(folds["B"])
    for fold in folds.values():
        for n in fold:
            twin = n.replace("_left", "_right") if "_left" in n else n.replace("_right", "_left")
            assert twin not in names or twin in fold, (n, twin)  # a mirror twin is never on the other side
    assert {"vertebra_l1", "vertebra_l2"} <= set(folds["A"]) and "kidney_left_hilum" in folds["B"]


def test_pooled_weights_non_landmark_recall_by_point_count():
    rows = [{"rank_of_truth": 1}, {"rank_of_truth": 3}, {"rank_of_truth": 9}]
    p = holdout.pooled(rows, [(0.5, 10), (0.9, 20)])
    assert p["real_top1"] == pytest.approx(1 / 3) and p["real_top5"] == pytest.approx(2 / 3)
    assert p["n_landmarks"] == 3 and p["n_non_landmark"] == 30
    assert p["non_landmark_recall"] == pytest.approx((5 + 18) / 30) and p["per_landmark"] is rows


def test_layout_cohort_links_the_scan_and_writes_only_the_fold_landmarks(shared_data, tmp_path):
    from lm_zoo import cohorts
    from lm_zoo.landmarks import read_landmarks

    ct_path, seg_path = shared_file(shared_data, CT), shared_file(shared_data, SEG)
    full = holdout.layout_cohort(tmp_path / "full", "example_ct", ct_path, seg_path)
    cases, _ = cohorts.read_landmark_cohort(full)  # the manual builders' own reader accepts it
    assert [c.case_id for c in cases] == ["example_ct"] and cohorts.is_segmentation(cases[0].landmarks)
    derived, _ = real_ct.derive_landmarks(*real_ct.read_ct_and_segmentation(ct_path, seg_path)[:2])
    part = holdout.layout_cohort(tmp_path / "part", "example_ct", ct_path,
                                 landmarks=derived.subset(["vertebra_l1", "kidney_left_hilum"]))
    (case,), _ = cohorts.read_landmark_cohort(part)
    written = read_landmarks(case.landmarks)
    assert written.names == ["vertebra_l1", "kidney_left_hilum"]
    np.testing.assert_allclose(written.points, derived.subset(written.names).points, atol=1e-3)
