"""mra_aneurysm_patches/inserted: aneurysms inserted into a user's healthy TOF-MRAs, then the
unchanged candidate pipeline, and ``lm-zoo evaluate`` on it. A tiny synthetic "user" cohort: 4
healthy phantom volumes (0.7 mm voxels). Budget: ~80 s (two small dataset builds)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from lm_zoo.phantoms import head_mra, insertion

N_CASES = 4


@pytest.fixture(scope="module")
def healthy_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("healthy")
    (root / "images").mkdir()
    for i in range(N_CASES):
        image, aneurysms, _ = head_mra.generate_case(300 + i, aneurysm=False, spacing_range=((0.7, 0.7), (0.7, 0.7)))
        assert aneurysms == []
        sitk.WriteImage(sitk.Cast(image, sitk.sitkInt16), str(root / "images" / f"subject{i}.nii.gz"), True)
    return root


def test_insertion_plan_is_deterministic_and_holds_the_fraction():
    ids = [f"c{i:02d}" for i in range(20)]
    plan = insertion.case_insertion_plan(0, ids, 0.5)
    assert plan == insertion.case_insertion_plan(0, list(reversed(ids)), 0.5)
    assert sum(n > 0 for n in plan.values()) == 10
    assert set(plan.values()) <= {0, 1, 2, 3}
    assert insertion.case_insertion_plan(1, ids, 0.5) != plan


def test_inserted_cohort_reads_as_an_aneurysm_cohort(healthy_dir, tmp_path):
    from lm_zoo import cohorts

    out = tmp_path / "cohort"
    ids = insertion.write_cohort(out, N_CASES, seed=0, source_dir=healthy_dir, progress=False)
    assert ids == [f"subject{i}" for i in range(N_CASES)]
    cases = cohorts.read_aneurysm_cohort(out)
    plan = insertion.case_insertion_plan(0, ids, 0.5)
    with_an = {c.case_id for c in cases if c.aneurysms}
    assert with_an and with_an <= {c for c, n in plan.items() if n}  # some cases none, as planned
    assert "user+inserted" in (out / "provenance.txt").read_text()
    for case in cases:
        before = sitk.ReadImage(str(healthy_dir / "images" / f"{case.case_id}.nii.gz"))
        after = sitk.ReadImage(case.image)
        assert after.GetPixelID() == before.GetPixelID() and after.GetOrigin() == before.GetOrigin()
        changed = np.any(sitk.GetArrayViewFromImage(after) != sitk.GetArrayViewFromImage(before))
        assert changed == bool(case.aneurysms), case.case_id
    # A changed source volume changes the cache key.
    digest = insertion.source_digest(healthy_dir)
    img = healthy_dir / "images" / "subject0.nii.gz"
    data = img.read_bytes()
    try:
        img.write_bytes(data + b"\0")
        assert insertion.source_digest(healthy_dir) != digest
    finally:
        img.write_bytes(data)


def test_lm_zoo_evaluate_runs_on_inserted_aneurysms(healthy_dir, tmp_path):
    from lm_zoo.cli import main

    out = tmp_path / "out"
    rc = main(["evaluate", "--dataset", "mra_aneurysm_patches/inserted", "--manual-dir", str(healthy_dir),
               "--data-dir", str(tmp_path / "tfds"), "--backbones", "random", "--max-learners", "5",
               "--seeds", "1", "--bootstrap", "50", "--no-finetune", "--quiet", "--output", str(out)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"] == "user+inserted"
    assert summary["dataset"]["name"] == "mra_aneurysm_patches/inserted"
    # Distinct subjects: no test patch is a copy of a training patch (unlike one subject, below).
    assert summary["dataset"]["test_negative_repeated_in_train"] == 0.0
    assert summary["dataset"]["test_positive_repeated_in_train"] == 0.0
    assert "byte-identical" not in (out / "report.md").read_text()
    report = (out / "report.md").read_text()
    assert "user+inserted" in report and "inserted" in report.lower()
    # Split by inserted case: no subject in both splits.
    import tensorflow_datasets as tfds

    builder = tfds.builder("mra_aneurysm_patches/inserted", data_dir=str(tmp_path / "tfds"))
    split_cases = {s: set(tfds.as_numpy(builder.as_dataset(split=s, batch_size=-1))["case_id"].tolist())
                   for s in builder.info.splits}
    assert not split_cases["train"] & split_cases["test"]
    sources = {src for s in builder.info.splits
               for src in tfds.as_numpy(builder.as_dataset(split=s, batch_size=-1))["source"].tolist()}
    assert sources == {b"user+inserted"}


def test_one_subject_example_path_distinct_insertions_split_by_case_and_repeats_reported(healthy_dir, tmp_path):
    """cohorts.write_repeated_cohort (N case ids holding one volume) -> lm-zoo evaluate on the
    inserted config: per-case insertions differ, no case is in both splits, and the report says
    that test normal-vessel patches are copies of training ones (the same head)."""
    from lm_zoo import cohorts, tfds_loader
    from lm_zoo.cli import main
    from lm_zoo.errors import CohortNotFoundError

    missing = tmp_path / "nowhere" / "healthy.nii.gz"
    with pytest.raises(CohortNotFoundError, match=str(missing)):
        cohorts.write_repeated_cohort(tmp_path / "bad", 6, missing)
    assert not (tmp_path / "bad").exists()

    source = healthy_dir / "images" / "subject0.nii.gz"
    folder = tmp_path / "one_subject"
    ids = cohorts.write_repeated_cohort(folder, 4, source)
    assert ids == [f"subject0_{k:03d}" for k in range(4)]
    cases = insertion.healthy_cases(folder)
    assert list(cases) == ids and all(open(p, "rb").read() == source.read_bytes() for p in cases.values())
    with pytest.raises(cohorts.CohortError, match="already holds images"):
        cohorts.write_repeated_cohort(folder, 4, source)

    data_dir, out = tmp_path / "tfds", tmp_path / "out"
    rc = main(["evaluate", "--dataset", "mra_aneurysm_patches/inserted", "--manual-dir", str(folder),
               "--data-dir", str(data_dir), "--backbones", "random", "--max-learners", "5",
               "--seeds", "1", "--bootstrap", "50", "--no-finetune", "--quiet", "--output", str(out)])
    assert rc == 0
    (cohort_dir,) = (data_dir / "downloads" / "lm_zoo_phantoms").glob("insertion-*")
    written = {c.case_id: c for c in cohorts.read_aneurysm_cohort(cohort_dir)}
    positive = [c for c in ids if written[c].aneurysms]
    assert len(positive) == 2  # half of the 4 ids, as planned
    a, b = (np.array([x.center_lps for x in written[c].aneurysms]) for c in positive)
    assert np.min(np.linalg.norm(a[:, None] - b[None], axis=-1)) > 1.0  # not the same insertion twice

    res = tfds_loader.split_overlap(tfds_loader.get_builder("mra_aneurysm_patches/inserted", data_dir=data_dir))
    assert res["cases_in_both"] == [] and res["train_cases"] + res["test_cases"] == 4
    assert res["sources"] == ["user+inserted"]
    assert res["normal"]["test_within_1mm_of_train"] > 0.5  # one head: the same arteries in both splits
    summary = json.loads((out / "summary.json").read_text())["dataset"]
    assert summary["test_negative_repeated_in_train"] > 0.05
    report = (out / "report.md").read_text()
    assert "byte-identical to a training patch" in report and "Test cases repeat training data" in report
