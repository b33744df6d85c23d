"""The weight-set presets (lm_zoo.pretrained) and `lm-zoo weights`."""
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
def registry():
    """The package's registry dict (one object, shared by every module), restored afterwards."""
    saved = dict(pretrained.WEIGHT_SETS)
    yield pretrained.WEIGHT_SETS
    pretrained.WEIGHT_SETS.clear()
    pretrained.WEIGHT_SETS.update(saved)


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


def test_presets_round_trip():
    on_disk = pretrained.read_registry(pretrained.PRESETS_DIR)
    assert on_disk == pretrained.WEIGHT_SETS
    for name, ws in on_disk.items():
        raw = json.loads(pretrained.preset_file(ws, "metadata").read_text())
        assert raw == {k: v for k, v in ws.to_json().items() if k != "filename"}
        assert list(raw) == list(pretrained.presets.METADATA_FIELDS)
        assert ws.filename == f"{name}/model.weights.h5" and ws.version


@pytest.mark.parametrize("name", sorted(pretrained.WEIGHT_SETS))
def test_every_part_of_a_shipped_preset_lies_in_its_folder(name):
    ws = pretrained.get_weight_set(name)
    folder = pretrained.PRESETS_DIR / name
    for kind in ("weights", "metadata", "card", "preamble", "metrics", "history"):
        assert pretrained.preset_file(ws, kind).parent == folder and pretrained.preset_file(ws, kind).is_file(), kind
    assert pretrained.preset_file(name, "weights") == pretrained.local_path(ws)
    detection = pretrained.preset_file(ws, "detection")
    assert detection == folder / "detection.json"
    assert ws.detection == (json.loads(detection.read_text()) if detection.is_file() else None)
    if ws.modality == "ct":  # the 2.5D patch geometry is part of the preset, never assumed
        assert (ws.preprocessing["patch_size"], ws.preprocessing["spacing_mm"]) == (ws.patch_size, ws.spacing_mm)


def test_landmark_presets_carry_their_detection_calibration():
    for name in ("landmark", "landmark_phantom"):
        detection = pretrained.get_weight_set(name).detection
        assert 0 < detection["threshold"] < 1 and detection["weights_sha256"] == pretrained.get_weight_set(name).sha256
    assert pretrained.get_weight_set("cifar").detection is None


def test_parts_of_a_weights_file_given_by_path(tmp_path):
    weights = tmp_path / "x.weights.h5"
    expected = {"weights": "x.weights.h5", "metadata": "x.json", "detection": "x.detection.json", "card": "x.md",
                "preamble": "x.preamble.md", "metrics": "x.metrics.json", "history": "x.history.csv"}
    for kind, name in expected.items():
        assert pretrained.preset_file(weights, kind) == tmp_path / name
        assert pretrained.preset_file(str(weights), kind) == tmp_path / name
    assert pretrained.preset_file(pretrained.describe_weights(weights), "detection") == tmp_path / "x.detection.json"
    assert pretrained.sidecar_path(weights) == tmp_path / "x.json"
    # A copied preset folder reads as a preset: model.weights.h5 beside metadata.json.
    assert pretrained.preset_file(tmp_path / "model.weights.h5", "detection") == tmp_path / "detection.json"
    assert pretrained.sidecar_path(tmp_path / "model.weights.h5") == tmp_path / "metadata.json"
    with pytest.raises(ValueError, match="kind must be one of"):
        pretrained.preset_file(weights, "weights.h5")


def test_patch_geometry_falls_back_for_older_sidecars(weights_file):
    prep = dict(pretrained.get_weight_set("landmark").preprocessing)
    pretrained.write_sidecar(weights_file, preprocessing=dict(prep, patch_size=48, spacing_mm=0.8))
    ws = pretrained.describe_weights(weights_file)
    assert (ws.patch_size, ws.spacing_mm) == (48, 0.8)
    del prep["patch_size"], prep["spacing_mm"]
    pretrained.write_sidecar(weights_file, preprocessing=prep)
    ws = pretrained.describe_weights(weights_file)
    assert (ws.patch_size, ws.spacing_mm) == (pretrained.DEFAULT_PATCH_SIZE, pretrained.DEFAULT_SPACING_MM) == (32, 1.5)
    assert ws.detection is None


def test_unreadable_detection_settings_name_the_file(weights_file):
    weights_file.with_name("demo.detection.json").write_text("{not json")
    with pytest.raises(pretrained.PresetError, match=r"demo.detection.json is not valid JSON"):
        pretrained.describe_weights(weights_file).detection


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


def test_write_registry_entry_writes_a_preset_folder(tmp_path):
    pretrained.write_registry_entry(_weight_set(), registry_path=tmp_path)
    updated = pretrained.write_registry_entry("demo", registry_path=tmp_path, sha256=SHA_ZERO, version="2")
    assert updated.sha256 == SHA_ZERO and updated.version == "2" and updated.class_names == ("a", "b")
    assert updated.filename == str(tmp_path / "demo" / "model.weights.h5")
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["metadata.json"]
    assert pretrained.read_registry(tmp_path) == {"demo": updated}
    assert "demo" not in pretrained.WEIGHT_SETS  # another folder: the package's presets untouched
    with pytest.raises(pretrained.PresetError, match="name 'demo' differs from its folder's 'other'"):
        (tmp_path / "demo").rename(tmp_path / "other")
        pretrained.read_registry(tmp_path)


def test_writing_package_registry_updates_weight_sets(tmp_path, monkeypatch, registry):
    import shutil

    shutil.copytree(pretrained.PRESETS_DIR / "landmark", tmp_path / "landmark",
                    ignore=shutil.ignore_patterns("*.h5"))
    monkeypatch.setattr(pretrained.presets, "PRESETS_DIR", tmp_path)
    pretrained.write_registry_entry("landmark", sha256=SHA_ZERO, class_names=["liver_dome", "non_landmark"],
                                    descriptions=["top of the liver", "no landmark"])
    assert pretrained.WEIGHT_SETS["landmark"].sha256 == SHA_ZERO
    assert pretrained.read_registry(tmp_path)["landmark"].class_names == ("liver_dome", "non_landmark")
    assert pretrained.WEIGHT_SETS["landmark"].filename == "landmark/model.weights.h5"


def test_register_weight_set_refuses_silent_overwrite(registry):
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


def test_registered_file_verified(weights_file, registry):
    pretrained.register_weight_set(_weight_set(filename=str(weights_file), sha256=pretrained.sha256_file(weights_file)))
    assert pretrained.weights_path("demo") == weights_file
    assert pretrained.verify("demo") == weights_file
    pretrained.register_weight_set(_weight_set(filename=str(weights_file), sha256=SHA_ZERO), overwrite=True)
    with pytest.raises(pretrained.WeightsIntegrityError, match="demo.weights.h5"):
        pretrained.weights_path("demo")
    pretrained.register_weight_set(_weight_set(filename=str(weights_file), sha256=None), overwrite=True)
    with pytest.raises(pretrained.WeightsNotAvailableError, match="no registered sha256"):
        pretrained.weights_path("demo")


def test_remote_origin_fetched_with_hash(weights_file, tmp_path, registry):
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
    assert "landmark" in out and "cifar" in out and "cifar/model.weights.h5" in out
    lines = out.splitlines()
    # Aligned columns: every field of a column starts where its header does.
    for column in ("modality", "status", "file"):
        start = lines[0].index(column)
        assert all(line[start - 2:start] == "  " and line[start] != " " for line in lines), (column, lines)
    end = lines[0].index("classes") + len("classes")  # right-aligned numbers
    assert all(line[end - 1] != " " and line[end:end + 2] == "  " for line in lines), lines
    assert cli.main(["weights", "info", "cifar"]) == 0
    out = capsys.readouterr().out
    assert "(0.4914, 0.4822, 0.4465)" in out and "truck" in out and "modality:      rgb" in out
    assert cli.main(["weights", "info", "landmark"]) == 0
    assert "patches:       32 px at 1.5 mm" in capsys.readouterr().out
    assert cli.main(["weights", "info", "imagenet"]) == 2
    assert "unknown weight set 'imagenet'" in capsys.readouterr().err


def test_cli_verify(weights_file, capsys, registry):
    good = pretrained.sha256_file(weights_file)
    assert cli.main(["weights", "verify", str(weights_file), "--sha256", good]) == 0
    assert f"OK      {weights_file}" in capsys.readouterr().out
    assert cli.main(["weights", "verify", str(weights_file), "--sha256", SHA_ZERO]) == 1
    assert "failed its integrity check" in capsys.readouterr().out
    registry.clear()
    registry["demo"] = _weight_set(filename=str(weights_file), sha256=good)
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

    shipped = pretrained.local_path(pretrained.get_weight_set("landmark"))  # committed: absence is a failure
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


def test_weights_file_by_path_is_verified_or_loaded_with_a_warning(weights_file):
    """A file with a recorded sha256 (sidecar) is refused once one byte flips; a file without one
    loads unverified, with a warning that says how to record its hash."""
    pretrained.write_sidecar(weights_file)
    assert pretrained.checked_weights_file(weights_file) == weights_file
    data = bytearray(weights_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights_file.write_bytes(bytes(data))
    with pytest.raises(pretrained.WeightsIntegrityError, match="demo.weights.h5 failed its integrity check"):
        pretrained.checked_weights_file(weights_file)
    pretrained.sidecar_path(weights_file).unlink()
    with pytest.warns(UserWarning, match=r"demo.weights.h5 has no recorded sha256 .*demo.json.*loaded unverified; "
                                         r"record its hash with lm_zoo.pretrained.write_sidecar"):
        assert pretrained.checked_weights_file(weights_file) == weights_file
