"""The weight registry (lm_zoo.pretrained) and `lm-zoo weights`."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from lm_zoo import cli, pretrained

SHA_ZERO = "0" * 64


def _weight_set(**changes):
    fields = dict(name="demo", filename="demo.weights.h5", sha256=None, class_names=("a", "b"),
                  descriptions=("first", "second"),
                  preprocessing={"modality": "ct", "ct_window": {"level": 50.0, "width": 1000.0},
                                 "mean": [0.5] * 3, "std": [0.5] * 3},
                  origin=None, data="unit test")
    fields.update(changes)
    return pretrained.WeightSet(**fields)


@pytest.fixture
def weights_file(tmp_path):
    path = tmp_path / "demo.weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 40)
    return path


# ---------------------------------------------------------------------------- shipped registry
def test_shipped_entries_hold_the_documented_preprocessing():
    landmark = pretrained.get_weight_set("landmark")
    assert landmark.modality == "ct"
    assert landmark.preprocessing["ct_window"] == {"level": 50.0, "width": 1000.0}
    assert landmark.preprocessing["mean"] == [0.5, 0.5, 0.5] and landmark.preprocessing["std"] == [0.5, 0.5, 0.5]
    cifar = pretrained.get_weight_set("cifar")
    assert cifar.modality == "rgb" and cifar.preprocessing["rgb_scale"] == 255.0
    assert cifar.preprocessing["mean"] == [0.4914, 0.4822, 0.4465]
    assert cifar.preprocessing["std"] == [0.2470, 0.2435, 0.2616]
    assert cifar.class_names[:3] == ("airplane", "automobile", "bird") and cifar.n_classes == 10


@pytest.mark.parametrize("name", sorted(pretrained.WEIGHT_SETS))
def test_no_unverifiable_weight_file_ships(name):
    """A shipped file must have its sha256 registered and match it; no placeholder files."""
    ws = pretrained.get_weight_set(name)
    path = pretrained.local_path(ws)
    if path.exists():
        assert ws.sha256 is not None, f"{path} ships without a registered sha256"
        assert pretrained.verify(name) == path
        assert ws.n_classes, f"{name}: shipped weights need their class names"
    else:
        assert ws.origin is None or ws.sha256 is not None
        with pytest.raises(pretrained.WeightsNotAvailableError, match=f"{name!r} is not yet available in this release"):
            pretrained.weights_path(name)


def test_registry_file_round_trips():
    on_disk = pretrained.read_registry(pretrained.REGISTRY_PATH)
    assert on_disk == pretrained.WEIGHT_SETS
    raw = json.loads(pretrained.REGISTRY_PATH.read_text())
    assert {k: v.to_json() for k, v in on_disk.items()} == raw


def test_unknown_name():
    with pytest.raises(ValueError, match=r"unknown weight set 'imagenet'; registered: \['cifar', 'landmark'"):
        pretrained.get_weight_set("imagenet")


# ---------------------------------------------------------------------------- WeightSet validation
@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(filename="demo.h5"), r"filename must end in '.weights.h5'"),
        (dict(sha256="abc"), r"sha256 must be 64 lower-case hex digits"),
        (dict(descriptions=("only one",)), r"1 descriptions for 2 class names"),
        (dict(class_names=("a", "a"), descriptions=()), r"class names are not unique"),
        (dict(preprocessing={"modality": "pet", "mean": [0] * 3, "std": [1] * 3}), r"modality must be one of \('ct', 'mra', 'rgb'\)"),
        (dict(preprocessing={"modality": "ct", "mean": [0] * 2, "std": [1] * 3}), r"'mean' must hold 3 per-channel values"),
        (dict(preprocessing={"modality": "ct", "mean": [0] * 3, "std": [1, 0, 1]}), r"std must be positive"),
    ],
)
def test_weight_set_validation(changes, message):
    with pytest.raises(ValueError, match=message):
        _weight_set(**changes)


def test_descriptions_default_to_class_names():
    assert _weight_set(descriptions=()).descriptions == ("a", "b")


# ---------------------------------------------------------------------------- registry writing
def test_write_registry_entry_creates_and_merges(tmp_path):
    registry = tmp_path / "registry.json"
    pretrained.write_registry_entry(_weight_set(), registry_path=registry)
    updated = pretrained.write_registry_entry("demo", registry_path=registry, sha256=SHA_ZERO,
                                              class_names=["x", "y", "z"], descriptions=["X", "Y", "Z"])
    assert updated.sha256 == SHA_ZERO and updated.class_names == ("x", "y", "z")
    assert updated.preprocessing["ct_window"]["width"] == 1000.0  # untouched fields kept
    assert pretrained.read_registry(registry) == {"demo": updated}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.json"]  # no temporary left behind
    assert "demo" not in pretrained.WEIGHT_SETS  # another registry file: package registry untouched


def test_invalid_update_leaves_registry_unchanged(tmp_path):
    registry = tmp_path / "registry.json"
    pretrained.write_registry_entry(_weight_set(), registry_path=registry)
    before = registry.read_bytes()
    with pytest.raises(ValueError, match="2 descriptions for 3 class names"):
        pretrained.write_registry_entry("demo", registry_path=registry, class_names=["x", "y", "z"])
    with pytest.raises(ValueError, match=r"unknown fields \['n_classes'\]"):
        pretrained.write_registry_entry("demo", registry_path=registry, n_classes=3)
    assert registry.read_bytes() == before


def test_writing_package_registry_updates_weight_sets(tmp_path, monkeypatch):
    registry = tmp_path / "registry.json"
    registry.write_text(pretrained.REGISTRY_PATH.read_text())
    monkeypatch.setattr(pretrained, "REGISTRY_PATH", registry)
    monkeypatch.setattr(pretrained, "WEIGHT_SETS", dict(pretrained.WEIGHT_SETS))
    pretrained.write_registry_entry("landmark", sha256=SHA_ZERO, class_names=["liver_dome", "non_landmark"],
                                    descriptions=["top of the liver", "no landmark"])
    assert pretrained.WEIGHT_SETS["landmark"].sha256 == SHA_ZERO
    assert pretrained.read_registry(registry)["landmark"].class_names == ("liver_dome", "non_landmark")


def test_register_weight_set_refuses_silent_overwrite(monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHT_SETS", dict(pretrained.WEIGHT_SETS))
    pretrained.register_weight_set(_weight_set())
    with pytest.raises(ValueError, match="'demo' is already registered"):
        pretrained.register_weight_set(_weight_set())
    pretrained.register_weight_set(_weight_set(data="v2"), overwrite=True)
    assert pretrained.get_weight_set("demo").data == "v2"


# ---------------------------------------------------------------------------- hashing and verification
def test_sha256_file(weights_file):
    assert pretrained.sha256_file(weights_file) == hashlib.sha256(weights_file.read_bytes()).hexdigest()


def test_verify_accepts_matching_and_refuses_mismatch(weights_file):
    good = pretrained.sha256_file(weights_file)
    assert pretrained.verify(weights_file, good) == weights_file
    with pytest.raises(pretrained.WeightsIntegrityError) as err:
        pretrained.verify(weights_file, SHA_ZERO)
    message = str(err.value)
    assert str(weights_file) in message and SHA_ZERO in message and good in message


def test_verify_refuses_truncated_file(weights_file):
    good = pretrained.sha256_file(weights_file)
    weights_file.write_bytes(weights_file.read_bytes()[:100])
    with pytest.raises(pretrained.WeightsIntegrityError, match=r"got [0-9a-f]{64} \(100 bytes\); the file is corrupt or truncated"):
        pretrained.verify(weights_file, good)


def test_verify_errors_without_file_or_hash(weights_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        pretrained.verify(tmp_path / "missing.weights.h5", SHA_ZERO)
    with pytest.raises(ValueError, match="no sha256 to verify .*demo.weights.h5"):
        pretrained.verify(weights_file)


def test_registered_file_verified(weights_file, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHT_SETS", dict(pretrained.WEIGHT_SETS))
    pretrained.register_weight_set(_weight_set(filename=str(weights_file), sha256=pretrained.sha256_file(weights_file)))
    assert pretrained.weights_path("demo") == weights_file
    assert pretrained.verify("demo") == weights_file
    pretrained.register_weight_set(_weight_set(filename=str(weights_file), sha256=SHA_ZERO), overwrite=True)
    with pytest.raises(pretrained.WeightsIntegrityError, match="demo.weights.h5"):
        pretrained.weights_path("demo")
    pretrained.register_weight_set(_weight_set(filename=str(weights_file), sha256=None), overwrite=True)
    with pytest.raises(pretrained.WeightsNotAvailableError, match="no registered sha256"):
        pretrained.weights_path("demo")


def test_remote_origin_fetched_with_hash(weights_file, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHT_SETS", dict(pretrained.WEIGHT_SETS))
    cache = tmp_path / "cache"
    cache.mkdir()
    good = pretrained.sha256_file(weights_file)
    pretrained.register_weight_set(_weight_set(filename="remote_demo.weights.h5", sha256=good,
                                               origin=weights_file.as_uri()))
    fetched = pretrained.weights_path("demo", cache_dir=cache)
    assert fetched.parent == cache / "lm_zoo" and fetched.read_bytes() == weights_file.read_bytes()
    pretrained.register_weight_set(_weight_set(filename="remote_bad.weights.h5", sha256=SHA_ZERO,
                                               origin=weights_file.as_uri()), overwrite=True)
    with pytest.raises(pretrained.WeightsIntegrityError, match=f"downloaded from {weights_file.as_uri()}"):
        pretrained.weights_path("demo", cache_dir=cache)


# ---------------------------------------------------------------------------- sidecars
def test_sidecar_describes_a_weights_file(weights_file):
    assert pretrained.describe_weights(weights_file).preprocessing == pretrained.get_weight_set("landmark").preprocessing
    side = pretrained.write_sidecar(weights_file, preprocessing="cifar", class_names=["p", "q"])
    assert side == weights_file.with_name("demo.json")
    ws = pretrained.describe_weights(weights_file)
    assert ws.preprocessing == pretrained.get_weight_set("cifar").preprocessing
    assert ws.class_names == ("p", "q") and ws.sha256 == pretrained.sha256_file(weights_file)
    assert pretrained.verify(weights_file) == weights_file  # hash taken from the sidecar
    with pytest.raises(ValueError, match="modality must be one of"):
        pretrained.write_sidecar(weights_file, preprocessing={"modality": "x", "mean": [0] * 3, "std": [1] * 3})


def test_random_init_follows_landmark_convention():
    ws = pretrained.describe_weights(None)
    assert ws.preprocessing == pretrained.get_weight_set("landmark").preprocessing and ws.class_names == ()


# ---------------------------------------------------------------------------- lm-zoo weights
def test_cli_list_and_info(capsys):
    assert cli.main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "landmark" in out and "cifar" in out and "mini_vgg25d_cifar.weights.h5" in out
    assert cli.main(["weights", "info", "cifar"]) == 0
    out = capsys.readouterr().out
    assert "(0.4914, 0.4822, 0.4465)" in out and "truck" in out and "modality:      rgb" in out
    assert cli.main(["weights", "info", "imagenet"]) == 2
    assert "unknown weight set 'imagenet'" in capsys.readouterr().err


def test_cli_verify(weights_file, capsys, monkeypatch):
    good = pretrained.sha256_file(weights_file)
    assert cli.main(["weights", "verify", str(weights_file), "--sha256", good]) == 0
    assert f"OK      {weights_file}" in capsys.readouterr().out
    assert cli.main(["weights", "verify", str(weights_file), "--sha256", SHA_ZERO]) == 1
    assert "failed its integrity check" in capsys.readouterr().out
    monkeypatch.setattr(pretrained, "WEIGHT_SETS", {"demo": _weight_set(filename=str(weights_file), sha256=good)})
    assert cli.main(["weights", "verify"]) == 0  # every shipped set
    assert "OK      demo" in capsys.readouterr().out
    pretrained.WEIGHT_SETS["demo"] = dataclasses.replace(pretrained.WEIGHT_SETS["demo"], sha256=SHA_ZERO)
    assert cli.main(["weights", "verify", "demo"]) == 1


def test_cli_verify_names_a_malformed_hash_and_lists_registered_names(weights_file, capsys):
    assert cli.main(["weights", "verify", str(weights_file), "--sha256", "zz"]) == 2
    err = capsys.readouterr().err
    assert "--sha256: malformed sha256 'zz'; expected 64 hexadecimal digits" in err
    assert cli.main(["weights", "verify", "landmrak"]) == 1
    out = capsys.readouterr().out
    assert "'landmrak' is neither a registered weight set nor a file; registered: [" in out
    assert "'landmark'" in out and "'cifar'" in out
    side = pretrained.sidecar_path(weights_file)
    side.write_text(json.dumps({"sha256": "not-a-hash"}))
    with pytest.raises(ValueError, match=r"sidecar .*demo.json: malformed sha256 'not-a-hash'"):
        pretrained.verify(weights_file)


def test_copy_of_shipped_weights_with_one_byte_changed_is_refused_or_warned(tmp_path):
    import shutil

    shipped = pretrained.local_path(pretrained.get_weight_set("landmark"))
    if not shipped.exists():
        pytest.skip(f"shipped landmark weights absent at {shipped}")
    copy = tmp_path / shipped.name
    shutil.copyfile(shipped, copy)
    pretrained.write_sidecar(copy)  # what the package writes beside every weights file it saves
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(pretrained.WeightsIntegrityError, match=rf"{shipped.name} failed its integrity check"):
        pretrained.verify(copy)
    pretrained.sidecar_path(copy).unlink()  # without its sidecar: a warning names the file and the set
    with pytest.warns(UserWarning, match=rf"{shipped.name} has the name and size of the shipped 'landmark'"):
        pretrained.warn_if_altered_copy(copy)
