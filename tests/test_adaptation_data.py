"""lm_zoo.training.unlabelled and .adapt: unlabelled real CT checked before training, AdaBN, and
the background recalibration (issue 26's baseline)."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lm_zoo.training import adapt, unlabelled


def _ct(size=(40, 36, 30), spacing=(2.0, 2.0, 2.5), body=40.0, air=-1000.0, seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: size[2], : size[1], : size[0]]
    inside = ((x - size[0] / 2) / (size[0] / 3)) ** 2 + ((y - size[1] / 2) / (size[1] / 3)) ** 2 < 1
    values = np.where(inside, body + 20 * rng.standard_normal(inside.shape), air).astype(np.int16)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing)
    return image


def test_find_and_check_scans_take_files_folders_and_dicom_series(tmp_path):
    cohort = tmp_path / "cohort"
    (cohort / "site_b").mkdir(parents=True)
    sitk.WriteImage(_ct(seed=1), str(cohort / "a.nii.gz"))
    sitk.WriteImage(_ct(seed=2), str(cohort / "site_b" / "b.mha"))
    (cohort / ".hidden.nii.gz").write_text("not read")
    (cohort / "notes.txt").write_text("a file that is neither a volume nor DICOM")
    found = unlabelled.find_scans([cohort])
    assert [p.relative_to(cohort).as_posix() for p in found] == ["a.nii.gz", "site_b/b.mha"]
    scans = unlabelled.check_scans(found)
    assert [s.size for s in scans] == [(40, 36, 30)] * 2
    assert unlabelled.find_scans([cohort / "a.nii.gz"]) == [cohort / "a.nii.gz"], "a scan given directly"


@pytest.mark.shared_data
def test_a_dicom_series_folder_is_one_scan(shared_data, tmp_path):
    import shutil

    series = shared_data / "real_ct" / "thorax10_dicom"
    if not series.is_dir():
        pytest.skip(f"shared sample {series} is absent")
    shutil.copytree(series, tmp_path / "cohort" / "patient_1" / "ct")
    found = unlabelled.find_scans([tmp_path / "cohort"])
    assert found == [tmp_path / "cohort" / "patient_1" / "ct"]
    assert len(unlabelled.check_scans(found)) == 1


def test_bad_scans_are_all_named_in_one_error_before_training(tmp_path):
    sitk.WriteImage(_ct(), str(tmp_path / "ct.nii.gz"))
    mr = sitk.GetImageFromArray(np.random.default_rng(0).uniform(0, 800, (20, 24, 24)).astype(np.float32))
    sitk.WriteImage(mr, str(tmp_path / "mr.nii.gz"))
    sitk.WriteImage(sitk.Image(32, 32, sitk.sitkInt16), str(tmp_path / "slice.nrrd"))  # a 2D image
    good = (tmp_path / "ct.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(unlabelled.AdaptationDataError) as err:
        unlabelled.check_scans(unlabelled.find_scans([tmp_path]))
    message = str(err.value)
    assert "3 of 4 scans cannot serve adaptation" in message
    for name in ("mr.nii.gz", "slice.nrrd", "cut.nii.gz"):
        assert name in message
    assert "ct.nii.gz:" not in message
    assert isinstance(err.value, ValueError)


def test_empty_or_missing_folders_are_refused(tmp_path):
    with pytest.raises(unlabelled.AdaptationDataError, match="no volume file"):
        unlabelled.check_scans(unlabelled.find_scans([tmp_path]))
    with pytest.raises(unlabelled.AdaptationDataError, match="no such file or folder"):
        unlabelled.find_scans([tmp_path / "absent"])


def test_body_patches_stream_one_scan_at_a_time_and_repeat_with_the_seed(tmp_path):
    for k in range(2):
        sitk.WriteImage(_ct(seed=k), str(tmp_path / f"c{k}.nii.gz"))
    scans = unlabelled.check_scans(unlabelled.find_scans([tmp_path]))
    first = [(s.path.name, p) for s, p in unlabelled.body_patches(scans, 7, seed=3, patch_size=16, spacing_mm=1.5)]
    again = [p for _, p in unlabelled.body_patches(scans, 7, seed=3, patch_size=16, spacing_mm=1.5)]
    assert [n for n, _ in first] == ["c0.nii.gz", "c1.nii.gz"]
    assert all(p.shape == (7, 16, 16, 3) for _, p in first)
    assert all(np.array_equal(a, b) for (_, a), b in zip(first, again))
    assert (np.stack([p for _, p in first])[..., :].mean() > -500), "body points, not air"


def _model(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Flatten()(keras.layers.Activation("relu")(h))
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(h)
    return keras.Model(inputs, outputs)


def test_adapt_batchnorm_sets_the_moving_statistics_of_the_target_domain():
    import keras

    model = _model()
    x = np.random.default_rng(1).normal(3.0, 2.0, (64, 8, 8, 3)).astype(np.float32)
    assert adapt.adapt_batchnorm(model, x) == 1
    conv = keras.Model(model.inputs, model.get_layer("bn").input).predict(x, verbose=0)
    bn = model.get_layer("bn")
    np.testing.assert_allclose(np.asarray(bn.moving_mean), conv.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), conv.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 patches"):
        adapt.adapt_batchnorm(model, x[:1])


def test_recalibrate_background_reaches_the_share_and_never_lowers_the_bias():
    model = _model(2)
    x = np.random.default_rng(2).normal(0.0, 1.0, (200, 8, 8, 3)).astype(np.float32)
    names = ["a", "b", "non_landmark"]
    before = model.get_layer("predictions").get_weights()[1].copy()
    shift = adapt.recalibrate_background(model, x, names, share=0.9)
    called = (model.predict(x, verbose=0).argmax(axis=1) == 2).mean()
    assert shift >= 0 and called >= 0.9
    after = model.get_layer("predictions").get_weights()[1]
    assert after[2] == pytest.approx(before[2] + shift) and np.array_equal(after[:2], before[:2])
    assert adapt.recalibrate_background(model, x, names, share=0.5) == 0.0, "already reached: unchanged"
    with pytest.raises(ValueError, match="not one of the model's classes"):
        adapt.recalibrate_background(model, x, ["a", "b", "c"])


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Smoke-trained weights on phantom_tiny (its classes) and the TFDS folder it was built in."""
    from lm_zoo import cli

    root = tmp_path_factory.mktemp("tiny")
    assert cli.main(["train", "landmark", "--dataset", "landmark_ct_patches/phantom_tiny", "--data-dir",
                     str(root / "tfds"), "--out", str(root / "run"), "--smoke", "--no-progress"]) == 0
    return root / "run" / "mini_vgg25d_landmark.weights.h5", root / "tfds"


@pytest.mark.parametrize("method", ["dann", "adabn"])
def test_adapt_to_a_two_scan_folder_in_seconds(tiny_weights, tmp_path, method):
    import json

    from lm_zoo import MiniVGG25D, cli

    weights, tfds_dir = tiny_weights
    scans = tmp_path / "scanner_b"
    scans.mkdir()
    for k in range(2):
        sitk.WriteImage(_ct(size=(48, 44, 40), seed=k), str(scans / f"ct{k}.nii.gz"))
    out = tmp_path / "adapted"
    assert cli.main(["train", "landmark", "--dataset", "landmark_ct_patches/phantom_tiny", "--data-dir", str(tfds_dir),
                     "--init-from", str(weights), "--adapt-to", str(scans), "--adapt-method", method,
                     "--out", str(out), "--smoke", "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    adaptation = metrics["adaptation"]
    assert adaptation["method"] == method and adaptation["scans"] == [str(scans / "ct0.nii.gz"), str(scans / "ct1.nii.gz")]
    assert adaptation["n_real_patches"] == 2 * 64 and "labels never used" in metrics["data"]
    card = (out / "mini_vgg25d_landmark.md").read_text(encoding="utf-8")
    assert "adapted to unlabelled real CT" in card and "`ct0.nii.gz`, `ct1.nii.gz`" in card
    adapted = MiniVGG25D(weights=str(out / "mini_vgg25d_landmark.weights.h5"))
    before = MiniVGG25D(weights=str(weights))
    changed = [layer.name for layer in adapted.layers if layer.weights and not all(
        np.array_equal(a, b) for a, b in zip(layer.get_weights(), before.get_layer(layer.name).get_weights()))]
    assert "block1_bn1" in changed, "adaptation changed nothing"


def test_adapt_to_refuses_an_mr_volume_before_training_and_writes_nothing(tiny_weights, tmp_path, capsys):
    from lm_zoo import cli

    weights, tfds_dir = tiny_weights
    scans = tmp_path / "mixed"
    scans.mkdir()
    sitk.WriteImage(_ct(), str(scans / "ct.nii.gz"))
    mr = sitk.GetImageFromArray(np.random.default_rng(0).uniform(0, 800, (20, 24, 24)).astype(np.float32))
    sitk.WriteImage(mr, str(scans / "t1_mr.nii.gz"))
    out = tmp_path / "adapted"
    assert cli.main(["train", "landmark", "--dataset", "landmark_ct_patches/phantom_tiny", "--data-dir", str(tfds_dir),
                     "--init-from", str(weights), "--adapt-to", str(scans), "--out", str(out), "--smoke"]) == 2
    err = capsys.readouterr().err
    assert "t1_mr.nii.gz" in err and "ct.nii.gz:" not in err
    assert not out.exists() and not any(p.name.startswith(".adapted") for p in tmp_path.iterdir())


def test_adapt_options_need_each_other(tmp_path, capsys):
    from lm_zoo import cli

    assert cli.main(["train", "landmark", "--adapt-method", "adabn", "--out", str(tmp_path / "o")]) == 2
    assert "--adapt-method needs --adapt-to" in capsys.readouterr().err
    assert cli.main(["train", "cifar", "--adapt-to", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "--adapt-to" in capsys.readouterr().err


def test_real_patches_are_capped_for_large_cohorts_and_kept_as_int16(tmp_path):
    from types import SimpleNamespace

    from lm_zoo.training.adaptation import AdaptSettings, _real_patches

    for k in range(3):
        sitk.WriteImage(_ct(seed=k), str(tmp_path / f"c{k}.nii.gz"))
    geometry = SimpleNamespace(patch_size=16, spacing_mm=1.5)
    x, scans = _real_patches([tmp_path], AdaptSettings(points_per_scan=100, max_patches=30), geometry, False)
    assert len(scans) == 3 and x.shape == (30, 16, 16, 3) and x.dtype == np.int16
    assert x.mean() > -500, "body points, in HU"
