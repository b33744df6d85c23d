"""What a command prints on a CPU-only machine: its own lines and progress bars, nothing a user
cannot act on (TensorFlow's start-up lines, tf.function retracing warnings, Keras bars written
as raw ANSI codes into a file). Each test runs the real ``lm-zoo`` in a subprocess, output piped."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

NOISE = ("retracing", "oneDNN", "cuInit", "cudart_stub", "absl::InitializeLog", "\x1b[")


def _run(argv, cwd):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "lm_zoo", *argv], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env=env)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    found = [noise for noise in NOISE if noise in printed]
    assert not found, f"{found} in the output of lm-zoo {argv[0]}:\n{printed}"
    return printed


@pytest.mark.slow
def test_evaluate_prints_no_tensorflow_noise_with_progress_shown(tmp_path):
    """phantom_tiny, the three default backbones, one epoch of fine-tuning: the fine-tuning's
    batch-norm recalibration (a Keras model and predict per layer) and its Keras fit bar are where
    the retracing warnings and ANSI codes came from. On phantom_tiny every predict is one batch, so
    even two traces per fine-tuned model reach TensorFlow's threshold (5 traces in about 10 calls).
    The dataset is built first, here: TFDS's own nested build bars move the cursor with ANSI codes."""
    from lm_zoo.evaluation import data

    data.load("mra_aneurysm_patches/phantom_tiny", str(tmp_path / "tfds"), None)
    printed = _run(["evaluate", "--dataset", "mra_aneurysm_patches/phantom_tiny", "--data-dir", str(tmp_path / "tfds"),
                    "--max-learners", "3", "--seeds", "1", "--bootstrap", "20", "--finetune-epochs", "1",
                    "--out", str(tmp_path / "out")], tmp_path)
    assert "fine-tuning random end to end" in printed and (tmp_path / "out" / "summary.json").is_file()


@pytest.mark.slow
def test_detect_prints_no_tensorflow_start_up_lines(tmp_path):
    import SimpleITK as sitk

    from lm_zoo.phantoms.torso_ct import case_seed, generate_case

    image, truth = generate_case(case_seed(1, 3), spacing_mm=3.0)
    z = np.mean([truth.as_dict()[n][2] for n in ("kidney_right_hilum", "kidney_left_hilum")])
    k = int(round(image.TransformPhysicalPointToContinuousIndex((0.0, 0.0, float(z)))[2]))
    sitk.WriteImage(image[:, :, k - 10:k + 11], str(tmp_path / "ct.nii.gz"))
    printed = _run(["detect", "ct.nii.gz", "--out", "points.csv", "--names", "kidney_right_hilum"], tmp_path)
    assert "1 of 1 found" in printed
