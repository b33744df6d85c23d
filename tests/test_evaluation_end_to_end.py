"""lm_zoo.evaluation end to end: TFDS dataset -> frozen MiniVGG25D -> AdaBoost -> report files.

Two datasets: a synthetic TFDS builder defined here (bright blob = "aneurysm", a thin tube =
"normal_vessel"; builds in a second) and the package's ``mra_aneurysm_patches/phantom_tiny``.
Only the ``random`` backbone is used: the shipped weight sets are not needed to test the plumbing.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from lm_zoo.evaluation import EvaluationConfig, EvaluationError, data, evaluate  # noqa: E402


def _patch(rng, aneurysm: bool) -> np.ndarray:
    v, u = np.mgrid[0:32, 0:32] - 15.5
    tube = np.exp(-(v - rng.normal(0, 2)) ** 2 / 2.0)  # a vessel crossing every patch
    patch = np.repeat(tube[..., None], 3, axis=-1) * 0.8
    if aneurysm:
        patch += np.exp(-(u**2 + v**2) / (2 * rng.uniform(2.5, 4.0) ** 2))[..., None]
    return (patch + rng.normal(0, 0.15, patch.shape)).astype(np.float32)


class EvalSyntheticPatches(tfds.core.GeneratorBasedBuilder):
    """12 training and 8 test cases, 15 patches each; every other case holds 4 aneurysm patches."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "patch": tfds.features.Tensor(shape=(32, 32, 3), dtype=np.float32),
            "label": tfds.features.ClassLabel(names=["normal_vessel", "aneurysm"]),
            "case_id": tfds.features.Text(),
            "source": tfds.features.Text(),
        }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples("train", 12, seed=0),
                "test": self._generate_examples("test", 8, seed=1)}

    def _generate_examples(self, split, n_cases, seed):
        rng = np.random.default_rng(seed)
        for c in range(n_cases):
            for i in range(15):
                aneurysm = c % 2 == 0 and i < 4
                yield f"{split}_{c}_{i}", {"patch": _patch(rng, aneurysm), "label": int(aneurysm),
                                           "case_id": f"{split}_case{c:02d}", "source": "phantom"}


class EvalPatchesWithoutCaseId(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "patch": tfds.features.Tensor(shape=(32, 32, 3), dtype=np.float32),
            "label": tfds.features.ClassLabel(names=["normal_vessel", "aneurysm"]),
        }))

    def _split_generators(self, dl_manager):  # pragma: no cover - refused before it is built
        return {"train": self._generate_examples()}

    def _generate_examples(self):  # pragma: no cover
        yield from ()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


def test_dataset_without_case_id_is_refused_before_building(data_dir, tmp_path):
    config = EvaluationConfig(dataset="eval_patches_without_case_id", data_dir=str(data_dir), backbones=("random",),
                              output=str(tmp_path / "out"))
    with pytest.raises(EvaluationError, match="lacks the feature.*case_id"):
        evaluate(config, progress=False)
    assert not (data_dir / "eval_patches_without_case_id").exists()
    assert not (tmp_path / "out").exists(), "a run refused after argument parsing leaves no output folder"


def test_output_that_is_a_file_is_refused_before_any_work(data_dir, tmp_path):
    blocker = tmp_path / "report.md"
    blocker.write_text("not a folder")
    config = EvaluationConfig(dataset="eval_synthetic_patches", data_dir=str(data_dir / "never"), backbones=("random",),
                              output=str(blocker / "sub"))
    with pytest.raises(ValueError, match=r"--out.*report.md/sub.*cannot be created: .*report.md is a file"):
        evaluate(config, progress=False)
    assert not (data_dir / "never").exists(), "refused before the dataset was built"


def test_unknown_dataset_is_named(data_dir):
    with pytest.raises(EvaluationError, match="no_such_patches"):
        data.get_builder("no_such_patches", data_dir)


def test_synthetic_dataset_end_to_end(data_dir, tmp_path):
    out = tmp_path / "report"
    config = EvaluationConfig(dataset="eval_synthetic_patches", data_dir=str(data_dir),
                              backbones=("random",), max_learners=15, seeds=2, bootstrap=200,
                              finetune=True, finetune_epochs=1, output=str(out))
    result = evaluate(config, progress=False)
    assert {p.name for p in out.iterdir()} == {
        "curves.csv", "differences.csv", "summary.json", "report.md", "auc_vs_weak_learners.png"}
    rows = list(csv.DictReader(open(out / "curves.csv")))
    assert [int(r["n_learners"]) for r in rows] == list(range(1, 16))
    assert all(float(r["ci_low"]) <= float(r["auc"]) <= float(r["ci_high"]) for r in rows)
    # Even untrained conv features see a bright blob: the curve must climb well above chance.
    assert float(rows[-1]["auc"]) > 0.8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"] == "phantom"
    assert summary["dataset"]["train_cases"] == 12 and summary["dataset"]["test_cases"] == 8
    assert summary["dataset"]["test_patches"] == 120 and summary["dataset"]["test_positive_patches"] == 16
    assert summary["backbones"]["random"]["curve"][-1]["auc"] == pytest.approx(float(rows[-1]["auc"]))
    assert summary["finetune"]["random"]["auc"] > 0.8  # end-to-end training sees the blob too
    report = (out / "report.md").read_text()
    assert "phantom" in report and "eval_synthetic_patches" in report
    assert (out / "auc_vs_weak_learners.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    assert result.config["layer"] == "fc1_relu"


def test_random_backbone_is_reproducible_and_layer_checked():
    from lm_zoo.evaluation import backbones

    import keras

    from lm_zoo.features import FeatureExtractor

    x = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)
    b = backbones.resolve("random", seed=3)
    feats = [backbones.feature_extractor(b, "fc1_relu", 4).transform(x) for _ in range(2)]
    assert feats[0].shape == (8, 512)
    np.testing.assert_array_equal(feats[0], feats[1])
    # The evaluation's features are FeatureExtractor's, whatever the batch size.
    users = FeatureExtractor(weights=None, modality="mra", random_state=3, batch_size=8).fit_transform(x)
    np.testing.assert_allclose(users, feats[0], rtol=1e-5, atol=1e-6)
    # ... and the fine-tuning start (build_model) holds the same random weights.
    model = backbones.build_model(b)
    cut = keras.Model(model.inputs, model.get_layer("fc1_relu").output)
    np.testing.assert_allclose(cut.predict(backbones.preprocess(x, b), verbose=0), feats[0], rtol=1e-4, atol=1e-5)
    flat = backbones.feature_extractor(b, "block2_pool", 3).transform(x)
    assert flat.shape == (8, 8 * 8 * 64)
    with pytest.raises(EvaluationError, match="unknown feature layer 'fc9'.*fc1_relu"):
        backbones.feature_extractor(b, "fc9")


def test_shipped_backbones_load_or_name_the_missing_weight_set(tmp_path):
    """A shipped set gives 512-d frozen features; one not shipped yet fails early, naming itself."""
    from lm_zoo import pretrained
    from lm_zoo.evaluation import backbones

    x = np.random.default_rng(1).random((4, 32, 32, 3), dtype=np.float32)
    for name in ("landmark", "cifar"):
        try:
            pretrained.weights_path(name)
        except ValueError:
            config = EvaluationConfig(backbones=(name, "random"), output=str(tmp_path / name))
            with pytest.raises(EvaluationError, match=f"backbone '{name}'.*random"):
                evaluate(config, progress=False)
            assert not (tmp_path / name).exists()
            continue
        b = backbones.resolve(name)
        model = backbones.build_model(b)
        assert not model.trainable_weights  # frozen
        feats = backbones.feature_extractor(b, batch_size=4).transform(x)
        assert feats.shape == (4, 512) and np.isfinite(feats).all()


def test_phantom_tiny_end_to_end(tmp_path):
    out = tmp_path / "out"
    config = EvaluationConfig(dataset="mra_aneurysm_patches/phantom_tiny", data_dir=str(tmp_path / "tfds"),
                              backbones=("random",), max_learners=10, seeds=2, bootstrap=100,
                              finetune=False, output=str(out))
    result = evaluate(config, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"] == "phantom"
    assert summary["dataset"]["name"] == "mra_aneurysm_patches/phantom_tiny"
    assert len(summary["backbones"]["random"]["curve"]) == 10
    assert np.isfinite(result.curves["random"].auc).all()


def test_manual_dir_runs_the_manual_config(tmp_path, capsys):
    """--manual-dir switches to mra_aneurysm_patches/manual, read from the user's folder (here the
    builder's dummy cohort, a few synthetic volumes in the real-cohort layout)."""
    from pathlib import Path

    import lm_zoo.datasets.mra_aneurysm_patches as package
    from lm_zoo.cli import main

    manual = Path(package.__file__).parent / "dummy_data"  # committed: its absence is a failure
    out = tmp_path / "out"
    rc = main(["evaluate", "--manual-dir", str(manual), "--data-dir", str(tmp_path / "tfds"), "--backbones", "random",
               "--max-learners", "3", "--seeds", "1", "--bootstrap", "20", "--no-finetune", "--quiet",
               "--output", str(out)])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["name"] == "mra_aneurysm_patches/manual"
    assert summary["provenance"] == "user"  # the manual config says what it knows: the user supplied it
    report = (out / "report.md").read_text()
    assert "On user data" in report and "real data" not in report and "phantom data" not in report
    # The report names the folders its data came from, and says when an earlier build was reused.
    tfds_folder = str(tmp_path / "tfds" / "mra_aneurysm_patches" / "manual")
    assert summary["dataset"]["manual_dir"] == str(manual.resolve()) and summary["dataset"]["built_now"] is True
    assert tfds_folder in summary["dataset"]["data_folder"]
    assert f"built in this run from the cohort folder {manual.resolve()}" in (out / "report.md").read_text()
    again = tmp_path / "again"
    assert main(["evaluate", "--manual-dir", str(manual), "--data-dir", str(tmp_path / "tfds"), "--backbones", "random",
                 "--max-learners", "3", "--seeds", "1", "--bootstrap", "20", "--no-finetune", "--quiet",
                 "--output", str(again)]) == 0
    printed = capsys.readouterr().out
    assert f"Data: patches read from {summary['dataset']['data_folder']}, prepared by an earlier build and reused" in printed
    assert json.loads((again / "summary.json").read_text())["dataset"]["built_now"] is False
