"""``lm-zoo detect DIR_OR_FILES... --out-dir OUT``: one model load, files per scan, a summary CSV,
failing scans reported while the others are written, and exit codes 0 / 1 / 2."""
import csv
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

NAMES = "kidney_right_hilum,carina"


@pytest.fixture(scope="module")
def slabs(tmp_path_factory):
    """Two thin slabs of one held-out phantom at 3 mm (through the kidney hila) and one MR-like
    volume that the detector refuses (not CT)."""
    from lm_zoo.phantoms.torso_ct import case_seed, generate_case

    image, truth = generate_case(case_seed(1, 3), spacing_mm=3.0)
    z = np.mean([truth.as_dict()[n][2] for n in ("kidney_right_hilum", "kidney_left_hilum")])
    k = int(round(image.TransformPhysicalPointToContinuousIndex((0.0, 0.0, float(z)))[2]))
    root = tmp_path_factory.mktemp("cohort")
    sitk.WriteImage(image[:, :, k - 10:k + 11], str(root / "a.nii.gz"))
    (root / "sub").mkdir()
    sitk.WriteImage(image[:, :, k - 9:k + 12], str(root / "sub" / "b.mha"))
    mr = sitk.GetImageFromArray(np.clip(np.random.default_rng(0).normal(300, 100, (20, 40, 40)), 0, None))
    mr.SetSpacing((3.0, 3.0, 3.0))
    bad = tmp_path_factory.mktemp("bad")
    sitk.WriteImage(mr, str(bad / "mr.nii.gz"))
    return root, bad / "mr.nii.gz", truth


@pytest.fixture
def model_loads(monkeypatch):
    import lm_zoo.applications as applications

    built = []
    original = applications.MiniVGG25D

    def counting(*a, **kw):
        built.append(kw.get("weights"))
        return original(*a, **kw)

    monkeypatch.setattr(applications, "MiniVGG25D", counting)
    return built


def _summary(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cohort_writes_each_scan_reports_the_bad_one_and_exits_1(slabs, model_loads, tmp_path, capsys):
    from lm_zoo import cli
    from lm_zoo.landmarks import read_landmarks

    root, bad, truth = slabs
    out = tmp_path / "out"
    assert cli.main(["detect", str(root), str(bad), "--out-dir", str(out), "--names", NAMES, "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert len(model_loads) == 1  # one model for the whole cohort
    assert str(bad) in captured.err and "failed" in captured.err
    assert "3 scans: 2 written, 1 failed" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["a.mrk.json", "a.png", "b.mrk.json", "b.png", "summary.csv"]
    for name in ("a", "b"):
        points = read_landmarks(out / f"{name}.mrk.json")
        assert points.names == ["kidney_right_hilum"]
        assert np.linalg.norm(points.points[0] - truth.as_dict()["kidney_right_hilum"]) < 10
    rows = _summary(out / "summary.csv")
    assert list(rows[0]) == ["scan", "landmark", "status", "score", "x", "y", "z", "note", "path"]
    # scans in path order (find_scans sorts the paths it finds)
    assert sorted((r["scan"], r["landmark"], r["status"]) for r in rows) == [
        ("a", "carina", "not_found"), ("a", "kidney_right_hilum", "found"),
        ("b", "carina", "not_found"), ("b", "kidney_right_hilum", "found"), ("mr", "", "failed")]
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed[0]["path"] == str(bad) and "CT" in failed[0]["note"]
    row = next(r for r in rows if r["scan"] == "a" and r["status"] == "found")
    found = read_landmarks(out / "a.mrk.json").points[0]
    assert np.allclose([float(row[c]) for c in "xyz"], found, atol=0.01)


def test_cohort_exit_codes_0_and_2_and_csv_format(slabs, model_loads, tmp_path, capsys):
    from lm_zoo import cli
    from lm_zoo.landmarks import read_landmarks

    root, bad, _ = slabs
    out = tmp_path / "good"
    assert cli.main(["detect", str(root / "a.nii.gz"), "--out-dir", str(out), "--format", "csv",
                     "--names", "kidney_right_hilum", "--coordinate-system", "RAS", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "a.png", "summary.csv"]
    rows = _summary(out / "summary.csv")
    assert [(r["scan"], r["status"]) for r in rows] == [("a", "found")]
    lps = read_landmarks(out / "a.csv").points[0]
    assert np.allclose([float(rows[0][c]) for c in "xyz"], lps * [-1, -1, 1], atol=0.01)  # RAS
    capsys.readouterr()
    nothing = tmp_path / "nothing"
    assert cli.main(["detect", str(bad), "--out-dir", str(nothing), "--no-progress"]) == 2
    assert str(bad) in capsys.readouterr().err
    assert [r["status"] for r in _summary(nothing / "summary.csv")] == ["failed"]
    assert len(model_loads) == 2


def test_cohort_refuses_missing_inputs_and_empty_folders_before_loading(tmp_path, model_loads, capsys):
    from lm_zoo import cli

    (tmp_path / "empty").mkdir()
    assert cli.main(["detect", str(tmp_path / "nope"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert cli.main(["detect", str(tmp_path / "empty"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "no volume file" in capsys.readouterr().err
    assert model_loads == [] and not (tmp_path / "o").exists()


def test_single_scan_form_refuses_several_scans_and_format(tmp_path, capsys):
    from lm_zoo import cli

    assert cli.main(["detect", "a.nii.gz", "b.nii.gz", "--out", str(tmp_path / "p.csv")]) == 2
    assert "--out-dir" in capsys.readouterr().err
    assert cli.main(["detect", "a.nii.gz", "--out", str(tmp_path / "p.csv"), "--format", "csv"]) == 2
    assert "--format applies to --out-dir" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_help_documents_out_dir_and_exit_codes(capsys):
    from lm_zoo import cli

    with pytest.raises(SystemExit):
        cli.main(["detect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--out-dir" in text and "--format" in text and "summary.csv" in text
    assert "1 with --out-dir: some scans failed" in text and "2 nothing could be done" in text


def test_scan_names_are_distinct():
    from lm_zoo.commands.detect_cohort import unique_names

    paths = [Path("/d/p1/ct.nii.gz"), Path("/d/p2/ct.nii.gz"), Path("/d/x.mha"), Path("/e/x.nrrd"),
             Path("/d/summary.nii")]
    assert unique_names(paths, reserved={"summary"}) == ["p1_ct", "p2_ct", "d_x", "e_x", "summary-2"]
    assert unique_names([Path("/d/a.nii"), Path("/d/a.nii.gz")]) == ["a", "a-2"]
    assert unique_names([Path("/d/CT.NII.GZ")]) == ["CT"]


def test_interrupt_keeps_the_finished_scans_and_their_summary(tmp_path, monkeypatch, capsys):
    """Ctrl-C at the second scan: the first scan's rows stay in summary.csv, exit code 130."""
    import lm_zoo.applications as applications
    from lm_zoo import cli
    from lm_zoo.commands import detect_cohort
    from lm_zoo.detection import Detections

    for name in ("a", "b"):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{name}.nii.gz").write_bytes(b"")
    monkeypatch.setattr(applications, "MiniVGG25D", lambda **kw: object())
    calls = []

    def fake(path, name, out_dir, model, args, search, names):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        (out_dir / f"{name}.mrk.json").write_text("{}")
        return Detections(names=["carina"], points=np.zeros((1, 3)), scores=np.array([0.9]), found=np.array([True]),
                          reasons=[""], threshold=0.5, weights="landmark", spacing_mm=1.0)

    monkeypatch.setattr(detect_cohort, "_detect_one", fake)
    out = tmp_path / "out"
    assert cli.main(["detect", str(tmp_path / "in"), "--out-dir", str(out), "--no-progress"]) == 130
    assert "interrupted after 1 of 2 scans" in capsys.readouterr().err
    assert [(r["scan"], r["status"]) for r in _summary(out / "summary.csv")] == [("a", "found")]
