"""lm_zoo.detection.view: the field-of-view status (found / not_found / out_of_view), on synthetic
geometry and on partial views of a held-out phantom."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk

from lm_zoo.detection import Atlas
from lm_zoo.detection.view import edge_depth_mm, expected_positions, view_margin_mm, view_status
from lm_zoo.io import inside_grid


def _grid(size=(50, 40, 30), spacing=(2.0, 2.0, 3.0), direction=None) -> sitk.Image:
    image = sitk.Image(list(size), sitk.sitkInt16)
    image.SetSpacing(spacing)
    image.SetOrigin((-50.0, -40.0, 10.0))
    if direction is not None:
        image.SetDirection(direction)
    return image


def test_edge_depth_is_the_distance_to_the_nearest_face_signed_by_the_package_border_rule():
    image = _grid()
    # index (i, j, k) -> LPS: origin + index * spacing; faces at index -0.5 and size - 0.5
    index = np.array([[24.5, 19.5, 14.5], [0.0, 19.5, 14.5], [24.5, 19.5, 29.0], [-3.0, 19.5, 14.5], [24.5, 19.5, 31.5]])
    points = np.array([image.TransformContinuousIndexToPhysicalPoint(i.tolist()) for i in index])
    depth = edge_depth_mm(image, points)
    assert depth == pytest.approx([min(25 * 2.0, 20 * 2.0, 15 * 3.0), 0.5 * 2.0, 0.5 * 3.0, -2.5 * 2.0, -2.0 * 3.0])
    assert ((depth >= 0) == inside_grid(image, points)).all()
    flipped = _grid(direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))  # an RAS-stored file: depths do not depend on it
    points = np.array([flipped.TransformContinuousIndexToPhysicalPoint(i.tolist()) for i in index])
    assert edge_depth_mm(flipped, points) == pytest.approx(depth)
    assert view_margin_mm(32, 1.5) == 24.0


def test_view_status_rules():
    image = _grid(size=(100, 100, 100), spacing=(1.0, 1.0, 1.0))
    lps = lambda k: image.TransformContinuousIndexToPhysicalPoint((49.5, 49.5, float(k)))  # noqa: E731
    margin = 24.0
    deep, band, outside, nowhere = lps(50), lps(10), lps(-30), (np.nan,) * 3
    cases = [  # (point, found, expected point) -> status
        ((deep, False, deep), "not_found"),
        ((deep, False, band), "out_of_view"),
        ((deep, False, outside), "out_of_view"),
        ((deep, False, nowhere), "not_found"),
        ((deep, True, deep), "found"),
        ((deep, True, band), "out_of_view"),  # the prior puts it at the edge: wherever the point
        ((band, True, band), "out_of_view"),
        ((band, True, deep), "found"),
        ((deep, True, outside), "out_of_view"),  # the prior says it lies beyond the edge
        ((band, True, nowhere), "found"),  # no expectation: decide's choice stands
    ]
    points = np.array([c[0][0] for c in cases], float)
    found = np.array([c[0][1] for c in cases])
    expected = np.array([c[0][2] for c in cases], float)
    status, notes = view_status(image, points, found, expected, margin)
    assert status == [c[1] for c in cases]
    assert all(("outside the scan" in n or "edge" in n) for n, s in zip(notes, status) if s == "out_of_view")
    assert all(n == "" for n, s in zip(notes, status) if s != "out_of_view")


def test_expected_positions_follow_the_found_landmarks_and_ignore_a_wrong_one():
    rng = np.random.default_rng(3)
    names = [f"l{i}" for i in range(9)]
    layout = rng.uniform(-150, 150, (9, 3))
    atlas = Atlas(names=tuple(names), points=layout, rms_mm=np.full(9, 5.0))
    angle = np.deg2rad(10)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    truth = 1.1 * layout @ rot.T + np.array([5.0, -20.0, 300.0])
    found = np.array([True] * 6 + [False] * 3)
    points = truth.copy()
    points[5] += [0, 0, 120.0]  # a found point far from where the others place it
    expected = expected_positions(names, points, found, np.full(9, 0.9), atlas)
    assert np.abs(expected - truth).max() < 1e-6
    assert np.isnan(expected_positions(names, points, found, np.full(9, 0.9), None)).all()
    few = np.array([True] * 3 + [False] * 6)  # fewer than atlas.min_agree: no expectation
    assert np.isnan(expected_positions(names, points, few, np.full(9, 0.9), atlas)).all()


# ----------------------------------------------------------------------------------- phantom partial view
@pytest.fixture(scope="module")
def chest_run(tmp_path_factory):
    """One held-out phantom case (case_seed(1, 1): never a training or calibration case) at 3 mm,
    cut to a chest CT that stops in the upper abdomen (``neck_to_liver``), through
    ``lm-zoo detect --out-dir``: its summary.csv rows and the truth."""
    from lm_zoo import cli
    from lm_zoo.detection import calibration
    from lm_zoo.phantoms.torso_ct import case_seed, generate_case

    image, truth = generate_case(case_seed(1, 1), spacing_mm=3.0)
    cut = calibration.partial_view(image, truth, "neck_to_liver")
    root = tmp_path_factory.mktemp("fov")
    sitk.WriteImage(cut, str(root / "chest.nii.gz"))
    assert cli.main(["detect", str(root / "chest.nii.gz"), "--out-dir", str(root / "out"), "--no-progress"]) == 0
    with open(root / "out" / "summary.csv", newline="") as f:
        rows = {r["landmark"]: r for r in csv.DictReader(f)}
    return cut, truth, rows, root / "out"


def test_partial_view_reports_what_lies_outside_as_out_of_view_and_finds_what_is_well_inside(chest_run):
    cut, truth, rows, out = chest_run
    lookup = truth.as_dict()
    depth = dict(zip(truth.names, edge_depth_mm(cut, truth.points)))
    assert {r["status"] for r in rows.values()} <= {"found", "not_found", "out_of_view"}
    far_out = [n for n in rows if depth[n] < -40.0]  # abdomen and pelvis of a chest CT
    assert len(far_out) >= 15
    assert [n for n in far_out if rows[n]["status"] != "out_of_view"] == []
    assert all("outside the scan" in rows[n]["note"] for n in far_out)
    outside = [n for n in rows if depth[n] < 0]
    assert [n for n in outside if rows[n]["status"] == "found"] == []
    well_inside = [n for n in rows if depth[n] >= 40.0]
    right = [n for n in well_inside if rows[n]["status"] == "found"
             and np.linalg.norm(np.array([float(rows[n][k]) for k in "xyz"]) - lookup[n]) <= 10.0]
    assert len(well_inside) >= 12 and len(right) >= 0.75 * len(well_inside), (well_inside, right)
    assert sorted(p.name for p in out.iterdir()) == ["chest.mrk.json", "chest.png", "summary.csv"]


def test_table_and_dict_say_each_landmarks_status():
    from lm_zoo.detection import Detections

    d = Detections(names=["carina", "sma_origin", "liver_dome"], points=np.zeros((3, 3)), scores=np.array([0.9, 0.8, 0.2]),
                   found=np.array([True, False, False]), reasons=["", "expected 40 mm outside the scan", "score below 0.5"],
                   threshold=0.5, weights="landmark", spacing_mm=1.5, status=["found", "out_of_view", "not_found"])
    rows = d.table().splitlines()
    assert rows[0].split()[:2] == ["name", "status"]
    assert [r.split()[1] for r in rows[1:4]] == ["found", "out_of_view", "not_found"]
    assert "1 of 3 found, 1 not found, 1 out of view" in rows[-1]
    assert d.as_dict()["sma_origin"]["status"] == "out_of_view" and not d.as_dict()["sma_origin"]["found"]
    assert d.to_landmarks().names == ["carina"]
    legacy = Detections(names=["carina"], points=np.zeros((1, 3)), scores=np.array([0.2]), found=np.array([False]),
                        reasons=["x"], threshold=0.5, weights="landmark", spacing_mm=1.5)
    assert legacy.status == ["not_found"]
