"""The shipped weight sets load offline, verified, and still predict what they predicted at release.

Expectations in ``tests/data/shipped_weights_expectations.json`` were written by
``python tests/test_shipped_weights.py --write`` when the weights were released; regenerate them
only together with new weight files. Scores are stored to 5 decimals and compared to 2e-5: a
change of the model, its loading, preprocessing or patch geometry shows, float noise of another
CPU does not.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lm_zoo import MiniVGG25D, decode_predictions, preprocess_input, pretrained
from lm_zoo.applications import predict_batched

EXPECTATIONS = Path(__file__).parent / "data" / "shipped_weights_expectations.json"
SCORE_ATOL = 2e-5  # stored rounded to 5 decimals
HELD_OUT_CT_SEED = 10_000  # no cohort case of phantom_lm60 (seed 0, cases 0..119) uses this seed
LANDMARK_SETS = ("landmark", "landmark_phantom")  # the shipped set and its phantom-only first stage


def _shipped(name):
    ws = pretrained.get_weight_set(name)
    if not pretrained.local_path(ws).exists():
        pytest.fail(f"weight set {name!r} must ship with the package ({pretrained.local_path(ws)} missing)")
    return ws


def held_out_landmark_patches(name="landmark"):
    """Patches at the 60 landmarks of a phantom case that no training split contains, with the
    patch geometry the weight set ``name`` records in its preset."""
    from lm_zoo.patches import extract_25d
    from lm_zoo.phantoms import torso_ct

    ws = pretrained.get_weight_set(name)
    image, landmarks = torso_ct.generate_case(HELD_OUT_CT_SEED)
    return extract_25d(image, landmarks.points, size=ws.patch_size, spacing_mm=ws.spacing_mm), list(landmarks.names)


def held_out_cifar_images(shared_data_dir: Path, per_class: int = 3):
    from lm_zoo import train

    (_, _), (x, y), _ = train.load_cifar10(shared_data_dir / "cifar10_jpeg" / "cifar10-jpeg.tar")
    idx = np.concatenate([np.flatnonzero(y == k)[:per_class] for k in range(10)])
    return x[idx], y[idx]


@pytest.mark.parametrize("name", ["landmark", "landmark_phantom", "cifar"])
def test_shipped_set_loads_offline_with_verified_hash(name):
    ws = _shipped(name)
    assert pretrained.sha256_file(pretrained.weights_path(name)) == ws.sha256
    model = MiniVGG25D(weights=name)
    assert model.output_shape == (None, ws.n_classes)
    assert len(ws.class_names) == len(set(ws.class_names)) == ws.n_classes
    headless = MiniVGG25D(weights=name, include_top=False, pooling="avg")
    assert headless.output_shape == (None, 64)


@pytest.mark.parametrize("damage", ["flipped_byte", "truncated"])
def test_tampered_copy_is_refused_before_loading(tmp_path, monkeypatch, damage):
    ws = _shipped("cifar")
    data = bytearray(pretrained.local_path(ws).read_bytes())
    if damage == "flipped_byte":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 3]
    copy = tmp_path / "mini_vgg25d_cifar.weights.h5"
    copy.write_bytes(bytes(data))
    monkeypatch.setitem(pretrained.WEIGHT_SETS, "cifar", dataclasses.replace(ws, filename=str(copy)))
    with pytest.raises(pretrained.WeightsIntegrityError, match="mini_vgg25d_cifar.weights.h5"):
        MiniVGG25D(weights="cifar")


@pytest.mark.parametrize("name", LANDMARK_SETS)
def test_landmark_set_classes_are_the_phantom_landmarks_plus_non_landmark(name):
    from lm_zoo.phantoms import torso_ct

    ws = _shipped(name)
    assert set(ws.class_names) == set(torso_ct.LM60) | {"non_landmark"}
    assert all(ws.descriptions), "every class needs its one-line definition"


@pytest.mark.parametrize("name", LANDMARK_SETS)
def test_landmark_set_recognises_a_held_out_phantom_case(name):
    patches, names = held_out_landmark_patches(name)
    model = MiniVGG25D(weights=name)
    preds = model.predict(preprocess_input(patches, weights=name), verbose=0)
    decoded = decode_predictions(preds, top=5, weights=name)
    top1 = [d[0][0] for d in decoded]
    accuracy = np.mean([t == n for t, n in zip(top1, names)])
    # Phantom data: a case generated from a seed no training case used.
    assert accuracy >= 0.8, list(zip(names, top1))
    assert all(isinstance(d[0][1], str) and d[0][1] for d in decoded)
    expected = json.loads(EXPECTATIONS.read_text(encoding="utf-8"))[name]
    assert top1 == expected["top1"]
    np.testing.assert_allclose(preds.max(axis=1), expected["top1_score"], atol=SCORE_ATOL)
    # The one batched forward pass (features, detection) gives the same numbers; it folds BatchNorm
    # into the layer before it (lm_zoo.applications.folding), which changes float rounding only.
    np.testing.assert_allclose(predict_batched(model, preprocess_input(patches, weights=name), 16), preds,
                               rtol=1e-5, atol=1e-6)


def test_expectations_belong_to_the_shipped_files():
    recorded = json.loads(EXPECTATIONS.read_text(encoding="utf-8"))["sha256"]
    for name, sha256 in recorded.items():
        ws = _shipped(name)
        assert ws.sha256 == sha256 == pretrained.sha256_file(pretrained.preset_file(ws, "weights")), name


def test_cifar_set_still_predicts_the_released_classes(shared_data):
    if not (shared_data / "cifar10_jpeg" / "cifar10-jpeg.tar").exists():
        pytest.skip(f"CIFAR-10 archive absent under {shared_data}")
    x, y = held_out_cifar_images(shared_data)
    preds = MiniVGG25D(weights="cifar").predict(preprocess_input(x.astype("float32"), weights="cifar"), verbose=0)
    # Real CIFAR-10 test images (3 per class); the released model scored 0.854 on all 10,000.
    assert np.mean(preds.argmax(axis=1) == y) >= 0.6
    assert decode_predictions(preds[:1], top=1, weights="cifar")[0][0][0] in pretrained.get_weight_set("cifar").class_names
    expected = json.loads(EXPECTATIONS.read_text(encoding="utf-8"))["cifar"]
    assert preds.argmax(axis=1).tolist() == expected["top1"]
    np.testing.assert_allclose(preds.max(axis=1), expected["top1_score"], atol=SCORE_ATOL)


def _write_expectations(shared_data_dir: Path):
    out = {}
    for name in LANDMARK_SETS:
        patches, _ = held_out_landmark_patches(name)
        preds = MiniVGG25D(weights=name).predict(preprocess_input(patches, weights=name), verbose=0)
        out[name] = {"top1": [d[0][0] for d in decode_predictions(preds, top=1, weights=name)],
                     "top1_score": [round(float(p), 5) for p in preds.max(axis=1)]}
    x, y = held_out_cifar_images(shared_data_dir)
    preds = MiniVGG25D(weights="cifar").predict(preprocess_input(x.astype("float32"), weights="cifar"), verbose=0)
    out["cifar"] = {"top1": [int(i) for i in preds.argmax(axis=1)],
                    "top1_score": [round(float(p), 5) for p in preds.max(axis=1)]}
    out["sha256"] = {n: pretrained.get_weight_set(n).sha256 for n in (*LANDMARK_SETS, "cifar")}
    EXPECTATIONS.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__" and "--write" in sys.argv:
    _write_expectations(Path(sys.argv[sys.argv.index("--write") + 1]) if len(sys.argv) > 2 else
                        Path(__file__).resolve().parents[2] / "shared" / "data")
