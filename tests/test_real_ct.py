"""lm_zoo.training.real_ct: a weight set's figures on real CT whose landmarks were derived from its
TotalSegmentator segmentation (the computation behind ``benchmarks/sim_to_real.py``).

Real-data tests read ``../shared/data`` (skip when absent)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lm_zoo import pretrained
from lm_zoo.training import real_ct
from tests.conftest import shared_file

SEG = "totalseg_example/example_seg_fast_force_split.nii.gz"
CT = "totalseg_example/example_ct.nii.gz"


def test_real_ct_accuracy_classifies_the_derived_landmarks_with_the_shipped_weights(shared_data):
    """The example CT: every derived landmark the weights know, judged, with consistent figures."""
    ct, seg, resampled = real_ct.read_ct_and_segmentation(shared_file(shared_data, CT), shared_file(shared_data, SEG))
    assert seg is not None and not resampled  # the example's segmentation shares the CT grid
    derived, skipped = real_ct.derive_landmarks(ct, seg)
    result = real_ct.real_ct_accuracy("landmark", ct, derived, negatives=10)
    ranks = [r["rank_of_truth"] for r in result["per_landmark"]]
    assert result["n_landmarks"] == len(ranks) >= 15 and result["n_non_landmark"] == 10
    assert result["real_top1"] == pytest.approx(np.mean(np.array(ranks) == 1))
    assert result["real_top5"] == pytest.approx(np.mean(np.array(ranks) <= 5))
    assert [r["landmark"] for r in result["per_landmark"]] == [n for n in derived.names
                                                               if n in pretrained.get_weight_set("landmark").class_names]
    assert "vertebra_t11" in result["landmarks_not_derived"] and skipped  # cut by the field of view
    shipped = json.loads(pretrained.preset_file("landmark", "metrics").read_text(encoding="utf-8"))
    assert real_ct.run_metrics("landmark")["test_top1"] == shipped["test_top1"]  # the set's own phantom figure
    only = real_ct.real_ct_accuracy("landmark", ct, derived, negatives=10, only=["vertebra_l1"])
    assert [r["landmark"] for r in only["per_landmark"]] == ["vertebra_l1"]
    assert only["per_landmark"][0] == next(r for r in result["per_landmark"] if r["landmark"] == "vertebra_l1")


def test_real_ct_accuracy_counts_non_landmark_recall_on_a_real_scan_without_segmentation(shared_data):
    """lung1: a real chest CT with no annotation gives non-landmark recall only."""
    ct, seg, _ = real_ct.read_ct_and_segmentation(shared_file(shared_data, "real_ct/lung1_image.nrrd"))
    derived, _ = real_ct.derive_landmarks(ct, seg)
    assert seg is None and len(derived) == 0
    result = real_ct.real_ct_accuracy("landmark", ct, derived, negatives=12)
    assert result["n_landmarks"] == 0 and result["real_top1"] is None and result["per_landmark"] == []
    assert result["n_non_landmark"] == 12 and 0.0 <= result["non_landmark_recall"] <= 1.0


def test_run_metrics_of_a_weights_file_without_metrics_is_empty(tmp_path):
    assert real_ct.run_metrics(str(tmp_path / "x.weights.h5")) == {}
    (tmp_path / "metrics.json").write_text('{"test_top1": 0.5}', encoding="utf-8")
    assert real_ct.run_metrics(str(tmp_path / "x.weights.h5")) == {"test_top1": 0.5}
