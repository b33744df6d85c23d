"""The `tfds build` command line builds both datasets offline, from the checkout folder and through
``--imports lm_zoo.datasets`` (the installed package), in one subprocess: TensorFlow's import
costs seconds per process, so the two commands run through the CLI's own parser and ``main`` in a
single Python process (what the ``tfds`` console script calls)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

import lm_zoo.datasets  # noqa: F401  (registers the builders for reading back)

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import sys
    from tensorflow_datasets.scripts.cli import main as cli

    for argv in ({commands}):
        cli.main(cli._parse_flags(["tfds", *argv]))
    """
)


def test_tfds_build_from_checkout_and_with_imports(tmp_path):
    data_dir = tmp_path / "data"
    commands = (
        ["build", "datasets/landmark_ct_patches", "--config", "phantom_tiny", "--data_dir", str(data_dir)],
        ["build", "--imports", "lm_zoo.datasets", "mra_aneurysm_patches", "--config", "manual",
         "--manual_dir", str(REPO / "datasets" / "mra_aneurysm_patches" / "dummy_data"), "--data_dir", str(data_dir)],
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", NO_GCE_CHECK="true")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(commands=", ".join(map(repr, commands)))],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]

    landmark = tfds.builder("landmark_ct_patches/phantom_tiny", data_dir=str(data_dir))
    assert landmark.is_prepared()
    assert sorted(landmark.info.splits) == ["test", "train", "validation"]
    train = tfds.as_numpy(landmark.as_dataset(split="train", batch_size=-1))
    assert train["patch"].shape[1:] == (32, 32, 3) and train["patch"].dtype == np.float32
    assert set(train["source"]) == {b"phantom"}

    mra = tfds.builder("mra_aneurysm_patches/manual", data_dir=str(data_dir))
    assert mra.is_prepared() and mra.info.features["label"].names == ["normal_vessel", "aneurysm"]
    test = tfds.as_numpy(mra.as_dataset(split="test", batch_size=-1))
    assert set(test["source"]) == {b"user"} and len(test["label"]) > 0
