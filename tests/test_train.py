"""Training recipes (lm_zoo.training): smoke runs, data loading, statistics. CI never retrains."""
from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from lm_zoo import cli, training
from lm_zoo.evaluation.statistics import bootstrap_ci
from lm_zoo.training.batches import crop_flip


def _write_cifar_like_tar(path, per_class=6, seed=0):
    """A tiny archive in the CIFAR-10 JPEG layout; each class has its own mean colour."""
    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w") as tar:
        for split in ("train", "test"):
            for k, cls in enumerate(training.CIFAR10_CLASSES):
                for i in range(per_class):
                    base = np.array([k * 25, 255 - k * 25, (k * 70) % 256], float)
                    img = np.clip(base + rng.normal(0, 10, (32, 32, 3)), 0, 255).astype(np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(img).save(buf, format="JPEG", quality=95)
                    info = tarfile.TarInfo(f"{split}/{cls}/{i:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
    return path


def test_cifar_archive_loader_reads_layout_and_labels(tmp_path):
    path = _write_cifar_like_tar(tmp_path / "c.tar", per_class=3)
    (x_tr, y_tr), (x_te, y_te), provenance = training.load_cifar10(path)
    assert x_tr.shape == (30, 32, 32, 3) and x_tr.dtype == np.uint8
    assert x_te.shape == (30, 32, 32, 3)
    assert np.bincount(y_tr, minlength=10).tolist() == [3] * 10
    # Class k was drawn with red channel ~25k: labels must follow the folder names.
    red = np.array([x_tr[y_tr == k, ..., 0].mean() for k in range(10)])
    assert np.all(np.diff(red) > 10)
    assert "c.tar" in provenance


def test_cifar_archive_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tar"):
        training.load_cifar10(tmp_path / "missing.tar")
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(training.TrainingDataError, match="bad.tar"):
        training.load_cifar10(bad)
    odd = tmp_path / "odd.tar"
    with tarfile.open(odd, "w") as tar:
        info = tarfile.TarInfo("train/unicorn/0000.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(training.TrainingDataError, match="unicorn"):
        training.load_cifar10(odd)


def test_crop_flip_keeps_content_and_is_seeded():
    x = np.arange(2 * 32 * 32 * 3, dtype=np.float32).reshape(2, 32, 32, 3)
    a = crop_flip(x, np.random.default_rng(1))
    b = crop_flip(x, np.random.default_rng(1))
    c = crop_flip(x, np.random.default_rng(2))
    assert a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Centre pixels always come from the source image (shift <= 4 px, reflect padding).
    assert set(np.unique(a[0, 12:20, 12:20])) <= set(np.unique(x[0]))


def test_bootstrap_ci_resamples_groups_whole():
    # 10 cases of 20 patches: 5 cases all correct, 5 all wrong (patches within a case agree).
    groups = np.repeat(np.arange(10), 20)
    correct = np.repeat([1.0, 0.0], 100)
    lo_p, hi_p = bootstrap_ci(correct)
    lo_c, hi_c = bootstrap_ci(correct, groups)
    assert lo_p <= correct.mean() <= hi_p
    # Patch-level CI is narrow; case-level CI must be much wider (cases are the unit).
    assert (hi_c - lo_c) > 3 * (hi_p - lo_p)


def test_cifar_smoke_recipe_writes_weights_history_and_metrics(tmp_path):
    archive = _write_cifar_like_tar(tmp_path / "c.tar", per_class=60)
    out = tmp_path / "run"
    assert cli.main(["train", "cifar", "--archive", str(archive), "--out", str(out), "--smoke"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["smoke"] is True and metrics["n_train"] == 512 and metrics["epochs"] == 1
    lo, hi = metrics["test_top1_ci95"]
    assert lo <= metrics["test_top1"] <= hi
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch") and "epoch_seconds" in history[0] and len(history) == 2

    from lm_zoo import MiniVGG25D

    model = MiniVGG25D(weights=str(out / "mini_vgg25d_cifar.weights.h5"))
    assert model.output_shape == (None, 10)
    # test_top1 is the saved model's accuracy on the smoke test subset (drawn as train_cifar does).
    from lm_zoo import preprocess_input

    (x_tr, _), (x_te, y_te), _ = training.load_cifar10(archive)
    rng = np.random.default_rng(training.CIFAR_RECIPE.seed)
    rng.choice(len(x_tr), 512, replace=False)
    pick = rng.choice(len(x_te), 256, replace=False)
    probs = model.predict(np.asarray(preprocess_input(x_te[pick].astype("float32"), weights="cifar")), verbose=0)
    assert metrics["test_top1"] == pytest.approx(float(np.mean(probs.argmax(1) == y_te[pick])), abs=1 / 256 + 1e-9)
    assert not list(out.glob(".tmp-*")), "temporary weight files must be renamed away"
    assert metrics["command"] == f"lm-zoo train cifar --archive {archive} --out {out} --smoke"  # the real argv
    from lm_zoo import pretrained

    weights = out / "mini_vgg25d_cifar.weights.h5"
    sidecar = json.loads(pretrained.sidecar_path(weights).read_text())
    assert sidecar["sha256"] == pretrained.sha256_file(weights) and len(sidecar["class_names"]) == 10
    assert pretrained.describe_weights(weights).preprocessing == pretrained.get_weight_set("cifar").preprocessing
    card = (out / "mini_vgg25d_cifar.md").read_text()
    assert "smoke run" in card and f"{metrics['test_top1']:.4f}" in card and "c.tar" in card


def test_train_cli_rejects_bad_epochs(tmp_path, capsys):
    assert cli.main(["train", "cifar", "--archive", "x.tar", "--out", str(tmp_path), "--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err


def test_classification_metrics_top1_top5_and_per_class():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(7), 4)
    probs = rng.random((len(labels), 7)) * 0.1
    probs[np.arange(len(labels)), labels] += 1.0       # all right ...
    probs[:4, 0] = 0.0                                  # ... except class 0: true class ranked last
    m = training.classification_metrics(probs, labels, [f"c{i}" for i in range(7)])
    assert m["test_top1"] == pytest.approx(24 / 28)
    assert m["test_top5"] == pytest.approx(24 / 28)     # rank 7 of 7 is outside the top 5 too
    assert m["per_class_accuracy"]["c0"] == 0.0 and m["per_class_accuracy"]["c6"] == 1.0
    lo, hi = m["test_top1_ci95"]
    assert lo <= m["test_top1"] <= hi
    grouped = training.classification_metrics(probs, labels, list("abcdefg"), groups=labels)
    assert "test_top1_ci95_case_bootstrap" in grouped


def test_landmark_smoke_recipe_on_phantom_tiny(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "landmark", "--dataset", "landmark_ct_patches/phantom_tiny",
                     "--data-dir", str(tmp_path / "tfds"), "--out", str(out), "--smoke"]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["weight_set"] == "landmark" and metrics["smoke"] is True
    assert metrics["source"] == "phantom" and metrics["n_test_cases"] >= 1  # read from the examples
    assert set(metrics["per_class_accuracy"]) <= set(metrics["class_names"])
    lo, hi = metrics["test_top1_ci95_case_bootstrap"]
    assert lo <= metrics["test_top1"] <= hi
    card = (out / "mini_vgg25d_landmark.md").read_text(encoding="utf-8")
    assert "landmark_ct_patches/phantom_tiny" in card and "smoke run" in card

    from lm_zoo import MiniVGG25D

    model = MiniVGG25D(weights=str(out / "mini_vgg25d_landmark.weights.h5"))
    assert model.output_shape == (None, len(metrics["class_names"]))


def test_load_patch_splits_reads_the_source_feature_not_the_name(tmp_path):
    from pathlib import Path

    import lm_zoo.datasets.landmark_ct_patches as package

    manual = Path(package.__file__).parent / "dummy_data"  # 3 fake cases, committed
    splits, names, info, sources = training.load_patch_splits(
        "landmark_ct_patches/manual", data_dir=tmp_path / "tfds", manual_dir=manual)
    assert sources == ["user"]  # a manual folder is the user's data, whatever it holds
    assert names[-1] == "non_landmark" and {len(splits[s][0]) for s in splits} == {52}


def test_training_loads_lm_zoo_datasets_from_a_fresh_interpreter(tmp_path):
    """lm_zoo.training registers the builders itself (it used to need `import lm_zoo.datasets` first)."""
    import subprocess
    import sys

    code = ("import sys; from lm_zoo import training; "
            "s, names, info, src = training.load_patch_splits('landmark_ct_patches/phantom_tiny', "
            "data_dir=sys.argv[1], splits=('test',)); print(src, len(s['test'][0]))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "tfds")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["['phantom']", "24"]


def test_model_card_states_real_ct_figures_from_sim_to_real_json():
    from lm_zoo.training import model_card

    metrics = {"weight_set": "landmark", "recipe": {"name": "landmark", "epochs": 1}, "test_top1": 0.9,
               "test_top1_ci95_case_bootstrap": (0.85, 0.95), "test_top5": 0.99, "per_class_accuracy": {"a": 0.5},
               "data": "phantom", "n_train": 1, "n_test": 1, "seconds_train": 1, "seconds_data": 1, "machine": "m",
               "real_ct": [{"title": "TotalSegmentator example", "data": "real CT X; landmarks derived from its segmentation",
                            "real_top1": 0.5, "real_top5": 0.75, "n_landmarks": 4, "non_landmark_recall": 0.9,
                            "n_non_landmark": 40, "per_landmark": [{"landmark": "vertebra_l1", "rank_of_truth": 2}]}]}
    card = model_card(metrics)
    assert "### Real CT: TotalSegmentator example" in card and "real CT X" in card
    assert "0.500" in card and "0.750" in card and "vertebra_l1 2" in card
    assert "Real CT" not in model_card({k: v for k, v in metrics.items() if k != "real_ct"})


def test_landmark_smoke_recipe_mixes_in_a_real_dataset_and_says_so(tmp_path):
    """--real-dataset: the manual cohort's patches join the training split, the metrics and the card
    name them, and the run is the short second-stage recipe."""
    from pathlib import Path

    import lm_zoo.datasets.landmark_ct_patches as package

    import shutil

    # The fake cohort's names, vertebra_l1 renamed to a class of phantom_tiny's 20 (vertebra_l3).
    manual = tmp_path / "cohort"
    shutil.copytree(Path(package.__file__).parent / "dummy_data", manual)
    for f in [manual / "classes.txt", *(manual / "landmarks").iterdir()]:
        f.write_text(f.read_text(encoding="utf-8").replace("vertebra_l1", "vertebra_l3"), encoding="utf-8")
    out = tmp_path / "run"
    assert cli.main(["train", "landmark", "--dataset", "landmark_ct_patches/phantom_tiny",
                     "--real-dataset", "landmark_ct_patches/manual", "--real-manual-dir", str(manual),
                     "--data-dir", str(tmp_path / "tfds"), "--out", str(out), "--smoke"]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    real = metrics["real_training"]
    assert metrics["source"] == "phantom+user" and metrics["recipe"]["name"] == "landmark_real"
    assert real["cases"] == ["case_a", "case_b", "case_c"] and real["n_patches"] == 64  # smoke: first 64
    assert real["repeats"] >= 1 and 0 < real["share"] < 1
    phantom_train = len(training.load_patch_splits("landmark_ct_patches/phantom_tiny", data_dir=tmp_path / "tfds",
                                                splits=("train",))[0]["train"][0])
    assert metrics["n_train"] == min(256, phantom_train) + real["repeats"] * 64
    assert {"carina", "vertebra_l3"} <= set(real["classes_present"]) <= set(metrics["class_names"])
    card = (out / "mini_vgg25d_landmark.md").read_text(encoding="utf-8")
    assert "real training patches" in card and "case_a, case_b, case_c" in card and "training-data figures" in card


def test_real_dataset_classes_unknown_to_the_training_set_are_refused(tmp_path):
    import shutil
    from pathlib import Path

    import lm_zoo.datasets.landmark_ct_patches as package

    manual = tmp_path / "cohort"
    shutil.copytree(Path(package.__file__).parent / "dummy_data", manual)
    with open(manual / "classes.txt", "a", encoding="utf-8") as fh:
        fh.write("made_up_point\tnot a landmark of the phantom\n")
    splits, names, *_ = training.load_patch_splits("landmark_ct_patches/phantom_tiny", data_dir=tmp_path / "tfds",
                                                splits=("test",))
    with pytest.raises(training.TrainingDataError, match=r"landmark_ct_patches/manual.*made_up_point"):
        training.real_training_patches("landmark_ct_patches/manual", names, tmp_path / "tfds", manual)


def test_train_cli_refuses_real_options_without_a_real_dataset(tmp_path, capsys):
    assert cli.main(["train", "landmark", "--real-share", "0.2", "--out", str(tmp_path / "o")]) == 2
    assert "--real-share need --real-dataset" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_old_module_path_lm_zoo_train_keeps_its_names():
    """lm_zoo.train is a re-export of lm_zoo.training (and the accuracy bootstrap) for old imports."""
    import lm_zoo.train as old

    for name in training.__all__:
        assert getattr(old, name) is getattr(training, name), name
    assert old.bootstrap_ci is bootstrap_ci and old.TrainingDataError is training.TrainingDataError


def test_accuracy_bootstrap_gives_the_numbers_it_always_gave():
    """The one accuracy bootstrap (moved from lm_zoo.train to evaluation.statistics) draws as before
    (figures recorded from lm_zoo.train.bootstrap_ci before the move)."""
    rng = np.random.default_rng(3)
    correct = (rng.random(300) < 0.7).astype(float)
    groups = rng.integers(0, 17, 300)
    assert bootstrap_ci(correct) == pytest.approx((0.6533333333333333, 0.7566666666666667), abs=0)
    assert bootstrap_ci(correct, groups) == pytest.approx((0.6572210287066442, 0.7573559947234707), abs=0)


def test_every_train_option_has_a_help_text():
    import argparse

    from lm_zoo.commands import train as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert all(action.help for action in parser._actions if action.dest != "help")
