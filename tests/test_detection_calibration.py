"""lm_zoo.detection.calibration and `lm-zoo weights calibrate`: partial views, the calibration
choice, a small calibration written to a weight set's preset and read back (synthetic data)."""
from __future__ import annotations

import json
import shutil

import pytest

from lm_zoo import detection
from lm_zoo.detection import calibration


def test_partial_views_leave_the_other_end_of_the_torso_out_of_view():
    from lm_zoo.phantoms.torso_ct import case_seed, generate_case

    image, truth = generate_case(case_seed(1, 3), spacing_mm=3.0)
    view = {}
    for kind in calibration.PARTIAL_VIEWS:
        cut = calibration.partial_view(image, truth, kind)
        assert cut.GetSize()[:2] == image.GetSize()[:2] and cut.GetSize()[2] < image.GetSize()[2]
        rows = calibration.evaluate_case(truth.names, truth.points, [True] * len(truth), [1.0] * len(truth),
                                         truth.as_dict(), cut)
        view[kind] = {n: r["in_view"] for n, r in rows.items()}
        assert all(r["error_mm"] == 0 for r in rows.values())
    assert view["chest"]["carina"] and view["chest"]["lung_apex_left"] and not view["chest"]["pubic_symphysis"]
    assert view["abdomen_pelvis"]["pubic_symphysis"] and view["abdomen_pelvis"]["femoral_head_left"]
    assert not view["abdomen_pelvis"]["carina"] and not view["abdomen_pelvis"]["sternal_notch"]
    with pytest.raises(ValueError, match="partial view 'head'"):
        calibration.partial_view(image, truth, "head")


def test_calibration_choice_breaks_near_ties_toward_the_higher_threshold():
    rows = [{"threshold": t, "shape_weight": w, "n_within_10mm": n, "false_detections": f, "in_view": 1000}
            for t, w, n, f in [(0.1, 0.0, 900, 10), (0.5, 0.0, 897, 11), (0.5, 0.05, 897, 11), (0.9, 0.0, 880, 5)]]
    best = calibration.calibration_choice(rows)
    assert (best["threshold"], best["shape_weight"]) == (0.5, 0.0)
    rows[1]["false_detections"] = rows[2]["false_detections"] = 20  # now 13 below the best: no tie
    assert calibration.calibration_choice(rows)["threshold"] == 0.1


def test_summarise_counts_found_outside_the_view_as_false_detections():
    case = {"a": {"reference": True, "in_view": True, "found": True, "score": 0.9, "error_mm": 3.0},
            "b": {"reference": True, "in_view": True, "found": True, "score": 0.9, "error_mm": 30.0},
            "c": {"reference": True, "in_view": False, "found": True, "score": 0.9, "error_mm": 300.0},
            "d": {"reference": True, "in_view": True, "found": False, "score": 0.1, "error_mm": 1.0},
            "e": {"reference": False, "found": True, "score": 0.9}}
    o = calibration.summarise([case], list(case))["overall"]
    assert (o["n_within_10mm"], o["in_view"], o["misses"], o["false_detections"]) == (1, 3, 1, 2)
    assert (o["outside_view"], o["found_outside_view"], o["median_error_mm"]) == (1, 1, 16.5)


@pytest.fixture()
def own_landmark_weights(tmp_path):
    """A copy of the shipped landmark weights outside the registry, with its sidecar and metrics."""
    from lm_zoo import pretrained

    ws = pretrained.get_weight_set("landmark")
    weights = tmp_path / "mine.weights.h5"
    shutil.copyfile(pretrained.local_path(ws), weights)
    pretrained.write_sidecar(weights, preprocessing="landmark", class_names=ws.class_names)
    (tmp_path / "mine.metrics.json").write_text(json.dumps({"real_training": {"cases": ["example_ct"]}}))
    return str(weights)


def test_small_calibration_is_written_to_the_preset_and_read_back(own_landmark_weights, tmp_path):
    from lm_zoo.commands.weights_calibrate import PhantomCases, calibration_data, training_atlas

    atlas = training_atlas(n_cases=3)
    assert len(atlas.names) == 60 and "case_seed(0, 0..2)" in atlas.source
    search = detection.SearchParams(coarse_step_mm=24.0, candidates_per_class=2, refine=((6.0, 1),))
    cases = PhantomCases(2, 1, spacing_mm=6.0)
    lines = []
    entry = calibration.calibrate(own_landmark_weights, cases, atlas, search=search, data=calibration_data(2, 1),
                                  thresholds=(0.3, 0.6), shape_weights=(0.0, 0.02), log=lines.append)
    assert len(entry["calibration"]["table"]) == 4 and entry["threshold"] in (0.3, 0.6)
    assert all(r["outside_view"] > 0 for r in entry["calibration"]["table"])  # the partial view
    assert "<- chosen" in lines[-1] and "case_seed(2, 0..0)" in entry["calibration"]["data"]
    assert entry["calibration"]["search"]["coarse_step_mm"] == 24.0
    path = calibration.write_detection_settings(own_landmark_weights, entry)
    assert path == tmp_path / "mine.detection.json"
    config = detection.detection_config(detection.landmark_weight_set(own_landmark_weights))
    assert config.path == str(path) and config.threshold == entry["threshold"]
    assert config.shape_weight == entry["shape_weight"] and config.atlas.names == atlas.names
    assert config.weights_sha256 == detection.landmark_weight_set(own_landmark_weights).sha256


def test_detection_metrics_entry_labels_a_training_scan(own_landmark_weights, tmp_path):
    result = {"threshold": 0.5, "real": {"data": "real CT"}}
    path = calibration.write_detection_metrics(own_landmark_weights, result, "lm-zoo weights calibrate x --metrics")
    assert path == tmp_path / "mine.metrics.json"
    entry = json.loads(path.read_text())["detection"]
    assert entry["command"] == "lm-zoo weights calibrate x --metrics" and entry["threshold"] == 0.5
    assert "TRAINING scan" in entry["real"]["data"]
    assert "real_training" in json.loads(path.read_text())


def test_detection_library_does_not_import_the_phantoms():
    import subprocess
    import sys

    code = ("import sys, lm_zoo.detection, lm_zoo.detection.calibration; "
            "print(sorted(m for m in sys.modules if m.startswith('lm_zoo.phantoms')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_stale_detection_settings_point_to_the_calibrate_command(tmp_path):
    from lm_zoo import pretrained

    weights = tmp_path / "mine.weights.h5"
    weights.write_bytes(b"not really weights")
    pretrained.write_sidecar(weights, class_names=["vertebra_l1", "non_landmark"])
    ws = pretrained.describe_weights(weights)
    (tmp_path / "mine.detection.json").write_text("{not json")
    with pytest.raises(detection.DetectionError, match="lm-zoo weights calibrate .*mine.weights.h5"):
        detection.detection_config(ws)
    (tmp_path / "mine.detection.json").write_text(json.dumps({"threshold": 0.6, "weights_sha256": "0" * 64}))
    with pytest.warns(UserWarning, match="recalibrate with `lm-zoo weights calibrate"):
        detection.detection_config(ws)


def test_calibrate_command_refuses_weights_that_are_no_landmark_classifier():
    import argparse

    from lm_zoo.commands import weights_calibrate

    parser = argparse.ArgumentParser()
    weights_calibrate.add_arguments(parser)
    args = parser.parse_args(["cifar", "--cases", "2"])
    assert (args.name, args.cases, args.seed, args.metrics) == ("cifar", 2, weights_calibrate.CALIBRATION_SEED, False)
    with pytest.raises(detection.DetectionError, match="not a landmark classifier"):
        weights_calibrate.run(args)


def test_calibrate_command_refuses_metrics_without_a_metrics_file(own_landmark_weights, tmp_path):
    import argparse

    from lm_zoo.commands import weights_calibrate

    (tmp_path / "mine.metrics.json").unlink()
    parser = argparse.ArgumentParser()
    weights_calibrate.add_arguments(parser)
    with pytest.raises(FileNotFoundError, match="no metrics file .*mine.metrics.json"):
        weights_calibrate.run(parser.parse_args([own_landmark_weights, "--metrics"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.json", "mine.weights.h5"]
