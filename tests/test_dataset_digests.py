"""Stale datasets: each build records the digest of the code that made its examples (and, for
manual configs, of the manual folder's listing); a prepared dataset that no longer matches is
refused, and a change to the generator code demands a VERSION bump.

To record the digests after a deliberate change: bump the builder's VERSION, add its
RELEASE_NOTES entry, then run ``python tests/test_dataset_digests.py --update``. A change that moves
code without changing a single example (checked per example against a build of the previous code)
re-records the current version's digest without a bump; prepared datasets of that version are
then refused as stale once, like after any other generator change.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

import lm_zoo.datasets  # noqa: F401  (registers the builders)
from lm_zoo import dataset_builder, digests
from lm_zoo.datasets.landmark_ct_patches import landmark_ct_patches_dataset_builder as landmark_module
from lm_zoo.datasets.mra_aneurysm_patches import mra_aneurysm_patches_dataset_builder as mra_module
from lm_zoo.errors import StaleDatasetError

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "datasets" / "generator_digests.json"
BUILDERS = (landmark_module.Builder, mra_module.Builder)
LANDMARK_DUMMY = REPO / "datasets" / "landmark_ct_patches" / "dummy_data"
UPDATE = "python tests/test_dataset_digests.py --update"


def current_table() -> dict:
    table = json.loads(TABLE.read_text(encoding="utf-8")) if TABLE.exists() else {}
    for builder in BUILDERS:
        table.setdefault(builder.name, {})[str(builder.VERSION)] = builder.generator_digest()
    return table


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.name)
def test_generator_change_demands_a_version_bump(builder):
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    versions = table.get(builder.name, {})
    version, digest = str(builder.VERSION), builder.generator_digest()
    assert version in builder.RELEASE_NOTES, f"{builder.name} {version} has no RELEASE_NOTES entry"
    assert set(versions) <= set(builder.RELEASE_NOTES), f"{builder.name}: recorded versions without release notes"
    assert version in versions, (
        f"{builder.name} {version} has no recorded generator digest: after adding its RELEASE_NOTES "
        f"entry, record it with `{UPDATE}`")
    assert versions[version] == digest, (
        f"the code that generates {builder.name}'s examples changed ({dataset_builder.GENERATOR_MODULES}, "
        f"{builder.EXTRA_GENERATOR_MODULES} or its builder module) but VERSION is still {version}: prepared "
        f"{version} datasets would hold the old examples. Bump {builder.__module__}.Builder.VERSION, "
        f"add a RELEASE_NOTES entry saying what changed, then run `{UPDATE}`")


def test_digest_covers_the_phantom_and_the_builder_module(tmp_path, monkeypatch):
    files = dict(digests.module_files("lm_zoo.phantoms"))
    assert {"lm_zoo.phantoms/torso_ct.py", "lm_zoo.phantoms/head_mra.py"} <= set(files)
    assert "lm_zoo.vessels" in mra_module.Builder.EXTRA_GENERATOR_MODULES
    # One changed byte in any file changes the digest.
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("x = 1\n")
    before = digests.files_digest([("a", a), ("b", b)])
    b.write_text("x = 2\n")
    assert digests.files_digest([("a", a), ("b", b)]) != before


def _fake_new_code(monkeypatch, builder_cls):
    key = f"{builder_cls.__module__}.{builder_cls.__qualname__}"
    monkeypatch.setitem(dataset_builder.PatchBuilderMixin._GENERATOR_DIGESTS, key, "0" * 64)


def test_prepared_phantom_dataset_built_by_other_code_is_refused(tmp_path, monkeypatch):
    data_dir = tmp_path / "tfds"
    builder = tfds.builder("landmark_ct_patches/phantom_tiny", data_dir=str(data_dir))
    builder.download_and_prepare()
    folder = Path(str(builder.data_dir))
    recorded = json.loads((folder / "metadata.json").read_text())
    assert recorded["generator_digest"] == landmark_module.Builder.generator_digest()
    assert "source_digest" not in recorded
    # Same code: reused, loads.
    again = tfds.builder("landmark_ct_patches/phantom_tiny", data_dir=str(data_dir))
    again.download_and_prepare()
    assert len(list(again.as_dataset(split="test"))) == 24

    _fake_new_code(monkeypatch, landmark_module.Builder)
    stale = tfds.builder("landmark_ct_patches/phantom_tiny", data_dir=str(data_dir))
    version = re.escape(str(stale.info.version))
    expected = (rf"landmark_ct_patches/phantom_tiny {version} in {folder}.*other code.*delete {folder} and rebuild it: "
                rf"tfds build --imports lm_zoo.datasets landmark_ct_patches/phantom_tiny --data_dir={data_dir}")
    with pytest.raises(StaleDatasetError, match=expected):
        stale.download_and_prepare()
    with pytest.raises(StaleDatasetError, match="other code"):
        tfds.builder("landmark_ct_patches/phantom_tiny", data_dir=str(data_dir)).as_dataset(split="test")
    with pytest.raises(StaleDatasetError, match="other code"):
        tfds.load("landmark_ct_patches/phantom_tiny", split="test", data_dir=str(data_dir))

    # A build of an lm_zoo that recorded nothing is refused too.
    monkeypatch.undo()
    (folder / "metadata.json").write_text("{}")
    with pytest.raises(StaleDatasetError, match="no generator_digest recorded"):
        tfds.builder("landmark_ct_patches/phantom_tiny", data_dir=str(data_dir)).download_and_prepare()


def test_manual_dataset_whose_folder_changed_is_refused(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(LANDMARK_DUMMY, manual)
    data_dir = tmp_path / "tfds"
    config = tfds.download.DownloadConfig(manual_dir=str(manual))
    builder = tfds.builder("landmark_ct_patches/manual", data_dir=str(data_dir))
    builder.download_and_prepare(download_config=config)
    recorded = json.loads((Path(str(builder.data_dir)) / "metadata.json").read_text())
    assert recorded["source_digest"] == digests.folder_listing_digest(manual)
    assert recorded["manual_dir"] == str(manual.resolve())
    tfds.builder("landmark_ct_patches/manual", data_dir=str(data_dir)).download_and_prepare(download_config=config)

    landmark_file = sorted((manual / "landmarks").iterdir())[0]
    stat = landmark_file.stat()
    os.utime(landmark_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the user edited a file
    # Both folders named (the one built from, the one given now), and a separate data_dir offered.
    with pytest.raises(StaleDatasetError, match=rf"landmark_ct_patches/manual .*was built from {manual.resolve()}; "
                                                rf"{manual} holds other files now.*separate data_dir.*"
                                                rf"--manual_dir={manual}"):
        tfds.builder("landmark_ct_patches/manual", data_dir=str(data_dir)).download_and_prepare(download_config=config)
    with pytest.raises(StaleDatasetError, match="holds other files now"):  # the recorded folder is checked on load
        tfds.builder("landmark_ct_patches/manual", data_dir=str(data_dir)).as_dataset(split="test")


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        TABLE.write_text(json.dumps(current_table(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"recorded {TABLE}")
    else:
        sys.exit(f"usage: {UPDATE}")
