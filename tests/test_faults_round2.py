"""Issue 27's faults on tiny synthetic inputs: truncated masks refused wherever a mask is read, an
annotated cohort refused by the ``inserted`` config, the detector's voxel-spacing bounds and
search-grid bound, the truncated-gzip message's byte count, builds that leave no lock file and
no empty folders, and TensorFlow's start-up noise hidden whatever TF_CPP_MIN_LOG_LEVEL says."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lm_zoo import cli

REPO_ROOT = Path(__file__).resolve().parents[1]


def _image(array: np.ndarray, spacing=(2.0, 2.0, 2.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    return image


def _truncate(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def _healthy(root: Path, n: int = 3) -> Path:
    (root / "images").mkdir(parents=True)
    for i in range(n):
        sitk.WriteImage(_image(np.full((20, 20, 20), 10, np.int16)), str(root / "images" / f"s{i}.nii.gz"))
    return root


def _build(name: str, data_dir: Path, manual_dir: Path):
    import tensorflow_datasets as tfds

    import lm_zoo.datasets  # noqa: F401  (registers the builders)

    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


# ------------------------------------------------------------------ A: truncated masks, every reader
def _segmented_cohort(root: Path, single_file: bool) -> Path:
    """images/c1, c2 (water boxes) and their TotalSegmentator segmentations: per-structure mask
    folders, or one multi-label map per case (total ids 31 = L2, 32 = L1)."""
    (root / "images").mkdir(parents=True)
    (root / "segmentations").mkdir()
    for case in ("c1", "c2"):
        sitk.WriteImage(_image(np.full((40, 30, 30), 40, np.int16)), str(root / "images" / f"{case}.nii.gz"))
        masks = {}
        for k, name in enumerate(("vertebrae_L1", "vertebrae_L2")):
            mask = np.zeros((40, 30, 30), np.uint8)
            mask[25 - 15 * k:35 - 15 * k, 10:20, 10:20] = 1
            masks[name] = mask
        if single_file:
            from lm_zoo.segmentation import TOTAL

            ids = {name: label for label, name in TOTAL.items()}
            total = sum(m * ids[n] for n, m in masks.items()).astype(np.uint8)
            sitk.WriteImage(_image(total), str(root / "segmentations" / f"{case}.nii.gz"))
        else:
            (root / "segmentations" / case).mkdir()
            for name, mask in masks.items():
                sitk.WriteImage(_image(mask), str(root / "segmentations" / case / f"{name}.nii.gz"))
    return root


@pytest.mark.parametrize("single_file", [False, True], ids=["mask_folder", "multi_label_map"])
def test_landmark_manual_build_refuses_a_truncated_segmentation_naming_the_file(tmp_path, single_file):
    from lm_zoo.cohorts import CohortError

    root = _segmented_cohort(tmp_path / "manual", single_file)
    bad = root / "segmentations" / ("c2.nii.gz" if single_file else "c2/vertebrae_L2.nii.gz")
    _truncate(bad)
    with pytest.raises(CohortError, match=re.escape(str(bad)) + r": truncated or corrupt compressed file"):
        _build("landmark_ct_patches/manual", tmp_path / "data", root)
    # Only the cache of the landmarks derived from the intact case (c1) stays (like the phantom cache):
    # the rerun after the mask is fixed derives just the fixed case again.
    left = _tree(tmp_path / "data")
    cached = [p for p in left if p.startswith("downloads/lm_zoo_derived/") and p.endswith(".json")]
    assert left == sorted(["downloads", "downloads/lm_zoo_derived", *cached]) and len(cached) == 1, \
        "a refused build leaves nothing in data_dir but the derived-landmark cache of the intact case"


def test_from_segmentation_refuses_a_truncated_multi_label_map_in_one_line(tmp_path, capsys):
    root = _segmented_cohort(tmp_path / "cohort", single_file=True)
    seg = root / "segmentations" / "c1.nii.gz"
    assert cli.main(["landmarks", "from-segmentation", str(seg), "--out", str(tmp_path / "whole.csv")]) == 0
    assert "wrote 2 landmarks" in capsys.readouterr().out
    _truncate(seg, 0.8)
    out = tmp_path / "cut.csv"
    assert cli.main(["landmarks", "from-segmentation", str(seg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lm-zoo landmarks: error: ") and f"{seg}: truncated" in err, err
    assert not out.exists()
    folder = _segmented_cohort(tmp_path / "folders", single_file=False) / "segmentations" / "c1"
    _truncate(folder / "vertebrae_L2.nii.gz")  # the case: one mask of a mask folder
    assert cli.main(["landmarks", "from-segmentation", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{folder / 'vertebrae_L2.nii.gz'}: truncated" in err, err
    assert not out.exists()


def test_mra_manual_build_refuses_a_truncated_aneurysm_mask_naming_it(tmp_path):
    from lm_zoo.cohorts import CohortError

    root = _healthy(tmp_path / "manual")
    (root / "masks").mkdir()
    for i in range(3):
        sitk.WriteImage(_image(np.zeros((20, 20, 20), np.uint8)), str(root / "masks" / f"s{i}.nii.gz"))
        _truncate(root / "masks" / f"s{i}.nii.gz")  # each: whichever case is read first refuses
    with pytest.raises(CohortError, match=r"case 's(\d)': cannot read mask .*s\1\.nii\.gz: truncated"):
        _build("mra_aneurysm_patches/manual", tmp_path / "data", root)
    assert _tree(tmp_path / "data") == []


def test_one_subject_layout_refuses_a_truncated_source_at_once(tmp_path):
    from lm_zoo import cohorts

    source = _healthy(tmp_path / "healthy", 1) / "images" / "s0.nii.gz"
    _truncate(source, 0.7)
    with pytest.raises(cohorts.CohortError, match=re.escape(str(source)) + r": truncated"):
        cohorts.write_repeated_cohort(tmp_path / "one", 3, source)
    assert not (tmp_path / "one").exists()


# ------------------------------------------------------------------ D(a): the truncated-gzip message
def test_truncated_gzip_message_reports_the_bytes_recovered(tmp_path):
    from lm_zoo.io import ImageReadError, read_image

    rng = np.random.default_rng(0)  # noise: compresses poorly, so the cut falls inside the voxels
    path = tmp_path / "cut.nii.gz"
    sitk.WriteImage(_image(rng.integers(0, 1000, (40, 50, 60)).astype(np.int16)), str(path))
    _truncate(path, 2 / 3)
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    found = re.search(r"after (\d+) uncompressed bytes of the (\d+) its NIfTI header describes", str(err.value))
    assert found, str(err.value)
    recovered, expected = map(int, found.groups())
    assert expected == 352 + 40 * 50 * 60 * 2 and 0.5 * expected < recovered < expected


# ------------------------------------------------------------------ B: inserted given an annotated cohort
@pytest.mark.parametrize("annotation", ["aneurysms.csv", "masks"])
def test_inserted_config_refuses_an_annotated_cohort_naming_it(tmp_path, annotation):
    from lm_zoo.cohorts import CohortError
    from lm_zoo.phantoms import insertion

    root = _healthy(tmp_path / "cohort")
    if annotation == "masks":
        (root / "masks").mkdir()
        assert len(insertion.healthy_cases(root)) == 3, "an empty masks/ holds no annotation"
        sitk.WriteImage(_image(np.zeros((20, 20, 20), np.uint8)), str(root / "masks" / "s0.nii.gz"))
    else:
        (root / "aneurysms.csv").write_text("case_id,x,y,z,radius_mm,site\ns0,5,5,5,2,\n")
    expected = re.escape(str(root / annotation)) + r": the inserted config expects HEALTHY TOF-MRAs.*mra_aneurysm_patches/manual"
    with pytest.raises(CohortError, match=expected):
        insertion.healthy_cases(root)
    with pytest.raises(CohortError, match=expected):
        _build("mra_aneurysm_patches/inserted", tmp_path / "data", root)
    assert _tree(tmp_path / "data") == []


# ------------------------------------------------------------------ D(b, c): lock files and folders left
def test_a_failed_inserted_build_leaves_nothing_in_data_dir(tmp_path):
    from lm_zoo.cohorts import CohortError

    root = _healthy(tmp_path / "cohort")
    _truncate(root / "images" / "s1.nii.gz")
    data = tmp_path / "data"
    with pytest.raises(CohortError, match=r"s1\.nii\.gz: truncated"):
        _build("mra_aneurysm_patches/inserted", data, root)
    assert _tree(data) == [], "no lock file, no empty downloads/lm_zoo_phantoms/ or downloads/extracted/"
    # folders that were there before the build are the user's: kept, even empty
    (data / "downloads" / "lm_zoo_phantoms").mkdir(parents=True)
    with pytest.raises(CohortError):
        _build("mra_aneurysm_patches/inserted", data, root)
    assert _tree(data) == ["downloads", "downloads/lm_zoo_phantoms"]


def test_a_build_removes_its_lock_file_and_a_waiting_build_locks_the_file_at_the_path(tmp_path):
    import fcntl
    import threading
    import time
    import types

    from lm_zoo.dataset_builder.lock import build_lock

    builder = types.SimpleNamespace(name="toy", version="1.0.0", builder_config=types.SimpleNamespace(name="cfg"),
                                    data_dir=str(tmp_path / "toy" / "cfg" / "1.0.0"), is_prepared=lambda: False)
    lock_path = tmp_path / ".lock.toy.cfg.1.0.0"
    second_holds = threading.Event()
    release_second = threading.Event()

    def second_build():
        with build_lock(builder):
            second_holds.set()
            release_second.wait(30)

    with build_lock(builder):
        assert lock_path.is_file()
        waiter = threading.Thread(target=second_build)
        waiter.start()
        time.sleep(0.5)  # the second build now waits on the first one's file
        assert not second_holds.is_set()
    assert second_holds.wait(10)
    # the first build removed its file; the second one holds the file now at the path, so a
    # third build must wait (it would run beside the second if that held the removed file)
    with open(lock_path) as third:
        with pytest.raises(BlockingIOError):
            fcntl.flock(third, fcntl.LOCK_EX | fcntl.LOCK_NB)
    release_second.set()
    waiter.join(10)
    assert not lock_path.exists() and _tree(tmp_path) == []


def test_a_successful_build_leaves_no_lock_file(tmp_path):
    _build("landmark_ct_patches/manual", tmp_path / "data", REPO_ROOT / "datasets" / "landmark_ct_patches" / "dummy_data")
    assert not list((tmp_path / "data").glob(".lock*"))


def test_a_build_script_without_a_main_guard_is_told_so_instead_of_waiting_forever(tmp_path):
    """multiprocessing starts workers by importing the main script again: an unguarded script's
    worker starts the same build and would wait for its own parent's lock forever."""
    script = tmp_path / "build_at_module_level.py"
    script.write_text(
        "import multiprocessing, os\n"
        "from pathlib import Path\n"
        "from lm_zoo.dataset_builder import lock\n"
        f"root = Path({str(tmp_path / 'data')!r})\n"
        "fd, _ = lock._acquire(root / '.lock.ds.cfg.1.0.0', 'ds/cfg', root, None)\n"
        "worker = multiprocessing.get_context('spawn').Process(target=os.getpid)\n"
        "worker.start()\n"
        "worker.join()\n"
        "print('worker exit code', worker.exitcode)\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "worker exit code 1" in done.stdout
    assert "started by the build it is waiting for" in done.stderr and 'if __name__ == "__main__":' in done.stderr
