"""mra_aneurysm_patches/inserted: aneurysms inserted into a user's healthy TOF-MRAs, then the
unchanged candidate pipeline, and ``lm-zoo evaluate`` on it. A tiny synthetic "user" cohort: 4
healthy phantom volumes (0.7 mm voxels). Budget: ~40 s."""
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
