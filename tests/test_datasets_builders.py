"""The two TFDS builders end to end: what the examples hold, case-level splits, determinism
(plain loop, worker processes and Apache Beam give the same bytes), bad manual folders (clear
error, nothing left in data_dir) and the manual configs on the real samples in ../shared/data."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import tensorflow_datasets as tfds

import lm_zoo.datasets  # noqa: F401  (registers the builders)
from lm_zoo import dataset_builder
from lm_zoo.dataset_builder import workers
from lm_zoo.cohorts import CohortError, CohortNotFoundError
from lm_zoo.landmarks import read_landmarks

from tests.conftest import shared_file

REPO = Path(__file__).resolve().parents[1]
LANDMARK_DUMMY = REPO / "datasets" / "landmark_ct_patches" / "dummy_data"
MRA_DUMMY = REPO / "datasets" / "mra_aneurysm_patches" / "dummy_data"


def build(name: str, data_dir: Path, manual_dir=None, beam: bool = False):
    config = {}
    if manual_dir is not None:
        config["manual_dir"] = str(manual_dir)
    if beam:
        import apache_beam as beam_lib

        config["beam_options"] = beam_lib.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(**config))
    return builder


def as_numpy(builder) -> dict[str, dict[str, np.ndarray]]:
    return {split: tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1)) for split in builder.info.splits}


def centre(patches: np.ndarray) -> np.ndarray:
    """Mean of the 2x2 central pixels of each channel: the value at the patch's point."""
    return patches[:, 15:17, 15:17, :].mean(axis=(1, 2))


def assert_nothing_left(data_dir: Path, name: str) -> None:
    dataset_dir = data_dir / name
    left = [p for p in dataset_dir.rglob("*") if p.is_file()] if dataset_dir.exists() else []
    assert left == [], f"files left after a failed build: {left}"
    assert not dataset_dir.exists(), f"empty dataset folder {dataset_dir} left behind"


# ------------------------------------------------------------------------------ landmark, manual
@pytest.fixture(scope="module")
def landmark_manual(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("landmark_manual")
    return as_numpy(build("landmark_ct_patches/manual", data_dir, manual_dir=LANDMARK_DUMMY))


def test_landmark_manual_patches_sit_on_the_annotated_points(landmark_manual):
    # dummy_data has a 700 HU bone sphere (r = 5 mm) at every landmark, water (40 HU) or air
    # elsewhere; the landmark files are LPS csv, RAS fcsv and markups json: a wrong conversion
    # would miss the spheres.
    seen_cases = set()
    for ds in landmark_manual.values():
        values = centre(ds["patch"])
        is_landmark = ds["label"] != ds["label"].max()  # non_landmark is the last class
        assert is_landmark.sum() == 3 * 4 and (~is_landmark).sum() == 40
        assert (values[is_landmark] > 400).all(), values[is_landmark].min()
        assert (values[~is_landmark] < 400).all(), values[~is_landmark].max()
        assert set(ds["source"]) == {b"user"}
        seen_cases |= set(ds["case_id"])
    assert seen_cases == {b"case_a", b"case_b", b"case_c"}


def test_landmark_manual_points_are_the_files_points_in_lps(landmark_manual):
    for ds in landmark_manual.values():
        case_id = ds["case_id"][0].decode()
        path = next((LANDMARK_DUMMY / "landmarks").glob(f"{case_id}.*"))
        expected = read_landmarks(path).points
        is_landmark = ds["label"] != ds["label"].max()
        points = ds["point_lps_mm"][is_landmark]
        distance = np.linalg.norm(points[:, None, :] - expected[None, :, :], axis=-1).min(axis=1)
        assert distance.max() < 1e-3


def test_landmark_manual_class_names_come_from_classes_txt(tmp_path):
    builder = build("landmark_ct_patches/manual", tmp_path, manual_dir=LANDMARK_DUMMY)
    assert builder.info.features["label"].names == ["carina", "vertebra_l1", "liver_dome", "non_landmark"]
    reloaded = tfds.builder("landmark_ct_patches/manual", data_dir=str(tmp_path))
    assert reloaded.info.features["label"].names == builder.info.features["label"].names


# ------------------------------------------------------------------------------ determinism
def test_loop_worker_processes_and_beam_build_identical_examples(tmp_path, monkeypatch, assert_same_examples):
    # Six cases (the dummy three plus renamed copies) so that train (4 cases) runs on 2 workers.
    root = tmp_path / "manual"
    shutil.copytree(LANDMARK_DUMMY, root)
    for old, new in (("case_a", "case_d"), ("case_b", "case_e"), ("case_c", "case_f")):
        for folder in ("images", "landmarks"):
            for path in (root / folder).glob(f"{old}.*"):
                shutil.copy(path, path.with_name(new + path.name[len(old):]))
    import concurrent.futures

    pools = []

    class CountingPool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setenv("LM_ZOO_DATASET_WORKERS", "1")
    plain = as_numpy(build("landmark_ct_patches/manual", tmp_path / "a", manual_dir=root))
    monkeypatch.setenv("LM_ZOO_DATASET_WORKERS", "2")  # the override: a pool though the cohort is small
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", CountingPool)
    pooled = as_numpy(build("landmark_ct_patches/manual", tmp_path / "b", manual_dir=root))
    assert [args[0] for args in pools] == [2]  # one pool of two processes for the three splits
    assert_same_examples(plain, pooled)
    monkeypatch.setenv("LM_ZOO_DATASET_WORKERS", "1")
    beamed = as_numpy(build("landmark_ct_patches/manual", tmp_path / "c", manual_dir=root, beam=True))
    assert_same_examples(plain, beamed)
    assert len(plain["train"]["case_id"]) == 4 * 52


def test_worker_count_follows_the_cohort_the_idle_cpus_and_the_override(monkeypatch):
    monkeypatch.delenv("LM_ZOO_DATASET_WORKERS", raising=False)
    monkeypatch.setattr(workers, "_usable_cpus", lambda: 4)
    load = [1.0]  # the 1-minute load average: this build's own process alone
    monkeypatch.setattr(workers.os, "getloadavg", lambda: (load[0], load[0], load[0]))
    assert workers.workers_for(workers.MIN_CASES_FOR_POOL - 1) == 1  # start-up would dominate
    assert workers.workers_for(1000) == 4  # never more than the CPUs
    assert workers.workers_for(5 + workers.MIN_CASES_FOR_POOL) == 4
    load[0] = 3.0  # other jobs keep two cores busy
    assert workers.workers_for(1000) == 2
    load[0] = 9.0
    assert workers.workers_for(1000) == 1
    monkeypatch.setenv("LM_ZOO_DATASET_WORKERS", "6")  # the override, whatever the load
    assert workers.workers_for(3) == 3  # never more than cases
    assert workers.workers_for(1000) == 6
    monkeypatch.setenv("LM_ZOO_DATASET_WORKERS", "two")
    with pytest.raises(ValueError, match="LM_ZOO_DATASET_WORKERS"):
        workers.workers_for(10)


def test_phantom_tiny_builds_identically_twice_with_no_case_in_two_splits(tmp_path, assert_same_examples):
    first = build("landmark_ct_patches/phantom_tiny", tmp_path / "one")
    second = build("landmark_ct_patches/phantom_tiny", tmp_path / "two")  # regenerates the phantom cohort
    a, b = as_numpy(first), as_numpy(second)
    assert_same_examples(a, b)
    cases = {split: set(ds["case_id"]) for split, ds in a.items()}
    assert sorted(cases) == ["test", "train", "validation"]
    assert [len(cases[s]) for s in ("train", "validation", "test")] == [3, 1, 1]
    assert not (cases["train"] & cases["validation"] or cases["train"] & cases["test"] or cases["validation"] & cases["test"])
    assert all(set(ds["source"]) == {b"phantom"} for ds in a.values())
    names = first.info.features["label"].names
    assert len(names) == 21 and names[-1] == "non_landmark"


def test_mra_manual_builds_identically_twice_and_keeps_cases_apart(tmp_path, assert_same_examples):
    a = as_numpy(build("mra_aneurysm_patches/manual", tmp_path / "one", manual_dir=MRA_DUMMY))
    b = as_numpy(build("mra_aneurysm_patches/manual", tmp_path / "two", manual_dir=MRA_DUMMY))
    assert_same_examples(a, b)
    assert not set(a["train"]["case_id"]) & set(a["test"]["case_id"])
    everything = {k: np.concatenate([a[s][k] for s in a]) for k in a["train"]}
    aneurysm = everything["label"] == 1
    assert aneurysm.any() and (~aneurysm).any()
    assert set(everything["aneurysm_site"][aneurysm]) <= {b"ica_pcomm", b"acomm"}
    assert set(everything["aneurysm_site"][~aneurysm]) == {b""}
    assert set(everything["case_id"][aneurysm]) == {b"mra_a", b"mra_c"}  # mra_b has no aneurysm
    # Per-volume normalised: vessels ~1, background low, nothing far above the clip.
    assert 0.0 <= everything["patch"].min() and everything["patch"].max() <= 1.0 + 1e-6


def test_mra_manual_from_adam_style_masks(tmp_path):
    # The dummy cohort re-annotated as label masks: a sphere (label 1) at each CSV aneurysm and a
    # "treated" one (label 2, not a target) elsewhere; no aneurysms.csv.
    from lm_zoo.cohorts import read_aneurysm_table

    root = tmp_path / "manual"
    shutil.copytree(MRA_DUMMY / "images", root / "images")
    table = read_aneurysm_table(MRA_DUMMY / "aneurysms.csv")
    (root / "masks").mkdir()
    for image_path in sorted((root / "images").iterdir()):
        case_id = image_path.name[: -len(".nii.gz")]
        image = sitk.ReadImage(str(image_path))
        index = np.stack(np.meshgrid(*(np.arange(n) for n in image.GetSize()), indexing="ij"), -1).reshape(-1, 3)
        lps = np.asarray(image.GetOrigin()) + index * np.asarray(image.GetSpacing())  # identity direction
        labels = np.zeros(len(index), np.uint8)
        labels[np.linalg.norm(lps - (lps.min(0) + 3.0), axis=1) < 2.0] = 2
        for row in table.get(case_id, []):
            labels[np.linalg.norm(lps - row.center_lps, axis=1) <= row.radius_mm] = 1
        mask = sitk.GetImageFromArray(labels.reshape(image.GetSize()).transpose(2, 1, 0).copy())
        mask.CopyInformation(image)
        sitk.WriteImage(mask, str(root / "masks" / image_path.name))
    data = as_numpy(build("mra_aneurysm_patches/manual", tmp_path / "data", manual_dir=root))
    everything = {k: np.concatenate([data[s][k] for s in data]) for k in ("label", "case_id", "point_lps_mm")}
    for case_id, rows in table.items():
        centres = everything["point_lps_mm"][(everything["case_id"] == case_id.encode()) & (everything["label"] == 1)]
        # the mask's centroid is the sphere centre to within a voxel
        assert np.linalg.norm(centres - np.asarray(rows[0].center_lps), axis=1).min() < 0.8
    assert not np.any((everything["case_id"] == b"mra_b") & (everything["label"] == 1))


# ------------------------------------------------------------------------------ bad manual folders
def _landmark_copy(tmp_path: Path) -> Path:
    root = tmp_path / "manual"
    shutil.copytree(LANDMARK_DUMMY, root)
    return root


def _break_missing_landmarks(root):
    (root / "landmarks" / "case_b.fcsv").unlink()
    return CohortError, r"\['case_b'\] have an image but no landmark file"


def _break_orphan_landmarks(root):
    (root / "images" / "case_c.nrrd").unlink()
    return CohortError, r"\['case_c'\] have a landmark file but no image"


def _break_unknown_name(root):
    path = root / "landmarks" / "case_a.csv"
    path.write_text(path.read_text().replace("carina", "carinna"))
    return CohortError, r"case 'case_a'.*case_a\.csv names unknown landmark\(s\) \['carinna'\]; allowed.*carina"


def _break_duplicate_case(root):
    shutil.copy(root / "images" / "case_b.mha", root / "images" / "case_a.mha")
    return CohortError, r"duplicate case id 'case_a'"


def _break_unreadable_volume(root):
    (root / "images" / "case_b.mha").write_bytes(b"this is not an image")
    return CohortError, r"case 'case_b': cannot read volume .*case_b\.mha"


def _break_reserved_name(root):
    (root / "classes.txt").write_text("carina\nvertebra_l1\nliver_dome\nnon_landmark\n")
    return CohortError, r"'non_landmark' is reserved"


def _break_empty(root):
    shutil.rmtree(root)
    root.mkdir()
    return CohortNotFoundError, r"does not exist or is empty.*images/<case_id>"


def _break_missing(root):
    shutil.rmtree(root)
    return CohortNotFoundError, r"does not exist or is empty"


@pytest.mark.parametrize(
    "breaker",
    [_break_missing_landmarks, _break_orphan_landmarks, _break_unknown_name, _break_duplicate_case,
     _break_unreadable_volume, _break_reserved_name, _break_empty, _break_missing],
    ids=lambda f: f.__name__[len("_break_"):],
)
def test_bad_landmark_manual_dir_fails_clearly_and_leaves_nothing(tmp_path, breaker):
    root = _landmark_copy(tmp_path)
    error, message = breaker(root)
    data_dir = tmp_path / "data"
    with pytest.raises(error, match=message):
        build("landmark_ct_patches/manual", data_dir, manual_dir=root)
    assert_nothing_left(data_dir, "landmark_ct_patches")
    assert not tfds.builder("landmark_ct_patches/manual", data_dir=str(data_dir)).is_prepared()


def test_mra_annotation_outside_the_volume_names_the_case(tmp_path):
    root = tmp_path / "manual"
    shutil.copytree(MRA_DUMMY, root)
    table = root / "aneurysms.csv"
    # Claiming RAS flips x and y of every row: the centres land outside the cropped volumes.
    table.write_text("# coordinate_system = RAS\n" + table.read_text())
    with pytest.raises(CohortError, match=r"case 'mra_\w': aneurysm centre\(s\) .* lie outside the volume"):
        build("mra_aneurysm_patches/manual", tmp_path / "data", manual_dir=root)
    assert_nothing_left(tmp_path / "data", "mra_aneurysm_patches")


# ------------------------------------------------------------------------------ real samples
@pytest.mark.shared_data
def test_landmark_manual_on_totalsegmentator_ct_with_vertebra_centroids(shared_data, tmp_path):
    from lm_zoo.landmarks import Landmarks, label_centroids, write_landmarks

    ct = shared_file(shared_data, "totalseg_example/example_ct.nii.gz")
    seg = shared_file(shared_data, "totalseg_example/example_seg_fast_force_split.nii.gz")
    labels = json.loads(shared_file(shared_data, "totalseg_example/labels.json").read_text())
    vertebrae = {int(k): v.lower() for k, v in labels["vertebrae"].items()}
    centroids = label_centroids(seg, vertebrae)
    root = tmp_path / "manual"
    (root / "images").mkdir(parents=True)
    (root / "images" / "totalseg_example.nii.gz").symlink_to(ct)
    write_landmarks(root / "landmarks" / "totalseg_example.csv", Landmarks(centroids.names, centroids.points))

    builder = build("landmark_ct_patches/manual", tmp_path / "data", manual_dir=root)
    names = builder.info.features["label"].names
    assert names[:-1] == sorted(centroids.names) and names[-1] == "non_landmark"
    assert {"vertebrae_l1", "vertebrae_l5", "sacrum"} <= set(names)
    assert list(builder.info.splits) == ["train"]  # one case: the other splits get no case
    ds = as_numpy(builder)["train"]
    is_landmark = ds["label"] != len(names) - 1
    assert is_landmark.sum() == 4 * len(centroids.names) and (~is_landmark).sum() == 40
    assert set(ds["source"]) == {b"user"} and set(ds["case_id"]) == {b"totalseg_example"}
    # Vertebra centroids lie in bone or the spinal canal; random body points mostly in soft tissue/air.
    assert np.median(centre(ds["patch"][is_landmark])) > np.median(centre(ds["patch"][~is_landmark]))


@pytest.mark.shared_data
def test_mra_manual_on_real_tof_volume_with_a_fake_annotation(shared_data, tmp_path):
    mra = shared_file(shared_data, "mra/chris_MRA.nii.gz")
    image = sitk.ReadImage(str(mra))
    # FAKE annotation for testing only: chris_MRA has no known aneurysm. We mark a 2 mm "aneurysm"
    # at the brightest voxel, which in this background-removed TOF volume is on an artery.
    array = sitk.GetArrayViewFromImage(image)
    k, j, i = np.unravel_index(int(np.argmax(array)), array.shape)
    x, y, z = image.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))
    root = tmp_path / "manual"
    (root / "images").mkdir(parents=True)
    (root / "images" / "chris_mra.nii.gz").symlink_to(mra)
    (root / "aneurysms.csv").write_text(f"case_id,x,y,z,radius_mm,site\nchris_mra,{x},{y},{z},2.0,fake_for_testing\n")

    builder = build("mra_aneurysm_patches/manual", tmp_path / "data", manual_dir=root)
    ds = as_numpy(builder)["train"]
    aneurysm = ds["label"] == 1
    assert aneurysm.sum() >= 4 and (~aneurysm).sum() > 10  # vessel extraction found normal vessel
    assert set(ds["aneurysm_site"][aneurysm]) == {b"fake_for_testing"}
    assert set(ds["source"]) == {b"user"}
    # The annotated point is bright vessel after normalisation; the normal-vessel candidates too.
    assert centre(ds["patch"][aneurysm][:1]).min() > 0.5
    assert np.median(centre(ds["patch"][~aneurysm])) > 0.3


# ------------------------------------------------------------------------------ documentation
def test_landmark_readme_documents_every_phantom_class_and_lm20():
    from lm_zoo.phantoms import torso_ct

    readme = (REPO / "datasets" / "landmark_ct_patches" / "README.md").read_text()
    for index, (name, definition) in enumerate(torso_ct.LANDMARKS):
        row = f"| {index} | `{name}` | {definition} | {'yes' if name in torso_ct.LM20 else ''} |"
        assert row in readme, f"README class table is out of date for {name!r}"
    assert "not clinical" in readme


@pytest.mark.parametrize("name", ["landmark_ct_patches/phantom_tiny", "mra_aneurysm_patches/phantom_tiny"])
def test_builder_metadata_version_citation_and_manual_layout(name, tmp_path):
    builder = tfds.builder(name, data_dir=str(tmp_path))
    # every version has release notes, and the current one is the newest of them
    assert str(builder.info.version) in builder.RELEASE_NOTES and "1.0.0" in builder.RELEASE_NOTES
    assert str(builder.info.version) == max(builder.RELEASE_NOTES, key=lambda v: tuple(map(int, v.split("."))))
    assert "lm_zoo" in builder.info.citation
    assert "not clinical" in builder.info.description
    assert "images/<case_id>" in builder.MANUAL_DOWNLOAD_INSTRUCTIONS
    layout = "landmarks/<case_id>" if name.startswith("landmark") else "aneurysms.csv"
    assert layout in builder.MANUAL_DOWNLOAD_INSTRUCTIONS


@pytest.mark.shared_data
def test_landmark_manual_derives_landmarks_from_a_totalsegmentator_segmentation(shared_data, tmp_path):
    """images/ + segmentations/<case>.nii.gz (no landmark file): the landmarks come from the
    segmentation at build time, with the package's landmark names."""
    from lm_zoo.landmarks import landmarks_from_segmentation

    ct = shared_file(shared_data, "totalseg_example/example_ct.nii.gz")
    seg = shared_file(shared_data, "totalseg_example/example_seg_fast_force_split.nii.gz")
    root = tmp_path / "manual"
    (root / "images").mkdir(parents=True)
    (root / "segmentations").mkdir()
    (root / "images" / "totalseg_example.nii.gz").symlink_to(ct)
    (root / "segmentations" / "totalseg_example.nii.gz").symlink_to(seg)
    with pytest.warns(UserWarning, match="cut by the field of view"):
        derived = landmarks_from_segmentation(seg, image=ct)
        builder = build("landmark_ct_patches/manual", tmp_path / "data", manual_dir=root)
    names = builder.info.features["label"].names
    assert names[:-1] == sorted(derived.names) and {"vertebra_l1", "kidney_left_hilum", "femoral_head_right"} <= set(names)
    ds = as_numpy(builder)["train"]
    is_landmark = ds["label"] != len(names) - 1
    assert is_landmark.sum() == 4 * len(derived) and (~is_landmark).sum() == 40
    exact = {}
    for label, point in zip(ds["label"][is_landmark], ds["point_lps_mm"][is_landmark]):
        exact.setdefault(names[label], point)
    for name, point in zip(derived.names, derived.points):
        np.testing.assert_allclose(exact[name], point, atol=1e-3)


# ------------------------------------------------------------------------------ build reports, locks
def test_landmarks_outside_the_volume_are_reported_per_case_and_in_metadata(tmp_path, caplog):
    root = _landmark_copy(tmp_path)
    path = root / "landmarks" / "case_a.csv"
    lines = path.read_text().splitlines()
    lines[2] = "carina,0.8,-7.4,9999"  # far above the volume
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level("WARNING", logger="lm_zoo.dataset_builder.scans"), pytest.warns(UserWarning, match="outside"):
        build("landmark_ct_patches/manual", tmp_path / "data", manual_dir=root)
    assert "case 'case_a': 1 landmark(s) outside the volume, no patch made: ['carina']" in caplog.text
    assert "case_a.csv" in caplog.text
    reloaded = tfds.builder("landmark_ct_patches/manual", data_dir=str(tmp_path / "data"))
    assert dict(reloaded.info.metadata)["dropped_landmarks"] == {"case_a": ["carina"]}


def test_a_second_concurrent_build_waits_then_refuses_clearly(tmp_path, monkeypatch, capsys):
    import fcntl

    builder = tfds.builder("landmark_ct_patches/manual", data_dir=str(tmp_path / "data"))
    lock_path = tmp_path / "data" / f".lock.landmark_ct_patches.manual.{builder.version}"
    lock_path.parent.mkdir(parents=True)
    with open(lock_path, "w") as held:  # the "first build"
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("pid 4242\n")
        held.flush()
        monkeypatch.setenv("LM_ZOO_BUILD_LOCK_TIMEOUT", "0.3")
        with pytest.raises(dataset_builder.DatasetLockedError,
                           match=r"landmark_ct_patches/manual is being built into .*data by another process "
                                 r"\(pid 4242; lock file .*\.lock\.landmark_ct_patches\.manual"):
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(LANDMARK_DUMMY)))
    assert "another build (pid 4242) is preparing this dataset" in capsys.readouterr().err
    assert not (tmp_path / "data" / "landmark_ct_patches").exists()
    monkeypatch.delenv("LM_ZOO_BUILD_LOCK_TIMEOUT")
    build("landmark_ct_patches/manual", tmp_path / "data", manual_dir=LANDMARK_DUMMY)  # lock released: builds
