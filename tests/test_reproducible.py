"""The same ``lm-zoo evaluate`` twice on one machine gives identical figures.

Curves, differences and fine-tuning figures must repeat exactly (the README quotes them and a
user rerunning the command must get them back); only the fields that describe the run (timings,
paths, the machine: ``report.RUN_FIELDS``) may differ. Run on ``phantom_tiny`` with two backbones
(so there is a difference) and one fine-tuning epoch, to stay cheap.
"""
from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow_datasets")

import lm_zoo  # noqa: E402
from lm_zoo.evaluation import EvaluationConfig, evaluate, report  # noqa: E402


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproducible")
    outs = []
    for run in ("first", "second"):  # the second reuses the dataset the first built, as a user's rerun does
        out = root / run
        evaluate(EvaluationConfig(dataset="mra_aneurysm_patches/phantom_tiny", data_dir=str(root / "tfds"),
                                  backbones=("cifar", "random"), max_learners=10, seeds=2, bootstrap=100,
                                  finetune=True, finetune_epochs=1, output=str(out)), progress=False)
        outs.append(out)
    return outs


def _summary(out):
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_evaluate_writes_exactly_the_listed_outputs(two_runs):
    assert {p.name for p in two_runs[0].iterdir()} == set(report.OUTPUT_FILES)


def test_same_command_twice_gives_identical_figures(two_runs):
    first, second = (_summary(out) for out in two_runs)
    assert first["finetune"] and first["differences"]  # the figures compared below exist
    assert first["dataset"]["built_now"] and not second["dataset"]["built_now"]
    assert report.figures_only(first) == report.figures_only(second)
    for name in ("curves.csv", "differences.csv"):
        assert (two_runs[0] / name).read_bytes() == (two_runs[1] / name).read_bytes(), name
    # The report differs only where the data came from (folder, built or reused) and in its run
    # section (stage timings, command, machine).
    reports = [[line for line in (out / "report.md").read_text(encoding="utf-8").split("\n## Run\n")[0].splitlines()
                if not line.startswith("**From:**")] for out in two_runs]
    assert reports[0] == reports[1]


def test_figures_only_drops_the_run_fields_and_nothing_else(two_runs):
    summary = _summary(two_runs[0])
    kept = report.figures_only(summary)
    assert "timings_s" not in kept and "machine" not in kept
    assert "output" not in kept["config"] and "data_folder" not in kept["dataset"]
    assert kept["backbones"] == summary["backbones"] and kept["finetune"] == summary["finetune"]
    assert kept["config"]["seeds"] == summary["config"]["seeds"]


def test_summary_and_report_name_the_machine_and_release(two_runs):
    summary = _summary(two_runs[0])
    machine = summary["machine"]
    assert machine["lm_zoo"] == lm_zoo.__version__
    assert machine["cpu"] and machine["cores"] >= 1 and machine["tensorflow"]
    assert summary["reproducibility"] == report.ACROSS_CPUS
    text = (two_runs[0] / "report.md").read_text(encoding="utf-8")
    assert report.machine_line(machine) in text and "third decimal across CPUs" in text
