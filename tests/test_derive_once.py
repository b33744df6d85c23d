"""Issue 25 item 1: landmarks from segmentations are derived once per case in a manual build (the
scan of names and the example step share it), cached in the download folder so a rebuild into
another data_dir derives nothing, and the examples are those of a build without the cache."""
from __future__ import annotations

import shutil
import warnings

import pytest
import tensorflow_datasets as tfds

import lm_zoo.datasets  # noqa: F401  (registers the builders)
import lm_zoo.landmarks
from lm_zoo.dataset_builder import PatchBuilderMixin

N_CASES = 3


@pytest.fixture(scope="module")
def segmentation_cohort(tmp_path_factory):
    from lm_zoo.phantoms.torso_ct import write_cohort

    root = tmp_path_factory.mktemp("derive_once") / "cohort"
    write_cohort(root, N_CASES, seed=3, progress=False, spacing_mm=3.0, montage=False, segmentations=True)
    shutil.rmtree(root / "landmarks")  # segmentations only: every case's landmarks are derived
    return root


def _counting(monkeypatch) -> list[str]:
    calls: list[str] = []
    derive = lm_zoo.landmarks.landmarks_from_segmentation

    def counted(segmentation, *args, **kwargs):
        calls.append(str(segmentation))
        return derive(segmentation, *args, **kwargs)

    monkeypatch.setattr(lm_zoo.landmarks, "landmarks_from_segmentation", counted)
    return calls


def _build(root, data_dir, download_dir):
    builder = tfds.builder("landmark_ct_patches/manual", data_dir=str(data_dir))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        builder.download_and_prepare(download_dir=str(download_dir),
                                     download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    given = sorted(str(w.message) for w in caught if "segmentation" in type(w.message).__name__.lower())
    data = {split: tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1)) for split in builder.info.splits}
    return builder, data, given


def test_landmarks_from_segmentations_are_derived_once_per_case_and_reused(segmentation_cohort, tmp_path,
                                                                            monkeypatch, assert_same_examples):
    monkeypatch.setenv("LM_ZOO_DATASET_WORKERS", "1")  # derivations counted in this process
    calls = _counting(monkeypatch)
    downloads = tmp_path / "downloads"
    first, first_data, first_warnings = _build(segmentation_cohort, tmp_path / "one", downloads)
    assert len(calls) == N_CASES and len(set(calls)) == N_CASES  # once per case (it was twice)
    assert len(list((downloads / "lm_zoo_derived").glob("*.json"))) == N_CASES

    calls.clear()
    second, second_data, second_warnings = _build(segmentation_cohort, tmp_path / "two", downloads)
    assert calls == []  # a rebuild with the same download folder derives nothing
    assert second_warnings == first_warnings  # the derivation's warnings are given again from the cache
    assert_same_examples(first_data, second_data)

    # Without the cache (the code before it): every case derived by the scan and again per example.
    calls.clear()
    monkeypatch.setattr(PatchBuilderMixin, "derived_cache", lambda self: None)
    _, plain_data, plain_warnings = _build(segmentation_cohort, tmp_path / "three", tmp_path / "other_downloads")
    assert len(calls) == 2 * N_CASES
    assert not (tmp_path / "other_downloads" / "lm_zoo_derived").exists()
    assert first.info.features["label"].names == second.info.features["label"].names
    assert_same_examples(first_data, plain_data)
    assert set(plain_warnings) == set(first_warnings)


def test_a_changed_segmentation_is_derived_again(segmentation_cohort, tmp_path, monkeypatch):
    """The cache key is the case's source digest: touching a segmentation file derives it anew."""
    import os

    from lm_zoo.cohorts import read_landmark_cohort
    from lm_zoo.dataset_builder import derived

    calls = _counting(monkeypatch)
    cases, _ = read_landmark_cohort(segmentation_cohort)
    case = cases[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh, _ = derived.cached_landmarks(case, tmp_path)
        again, _ = derived.cached_landmarks(case, tmp_path)
        assert len(calls) == 1
        assert again.names == fresh.names and again.points.tobytes() == fresh.points.tobytes()  # lossless
        stat = os.stat(case.landmarks)
        os.utime(case.landmarks, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        try:
            derived.cached_landmarks(case, tmp_path)
        finally:
            os.utime(case.landmarks, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert len(calls) == 2
