"""What the patch dataset builders share: per-case example generation and a TFDS builder base.

Each case's examples are a pure function of (case, parameters): the case's random draws use a
seed derived from the config seed and the case id only. So the same code runs as a plain loop
(the default) or as an Apache Beam ``FlatMap`` over case ids when a Beam runner or
``--beam_pipeline_options`` is given, and both give the same examples.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from lm_zoo.anatomy import NON_LANDMARK
from lm_zoo.cohorts import AneurysmCase, CohortError, LandmarkCase, aneurysms_from_mask, case_seed
from lm_zoo.digests import files_digest, folder_listing_digest, module_files
from lm_zoo.errors import LmZooError, StaleDatasetError
from lm_zoo.io import inside_grid

__all__ = [
    "NON_LANDMARK",
    "SOURCE_PHANTOM",
    "SOURCE_USER",
    "ANEURYSM_CLASSES",
    "LandmarkParams",
    "AneurysmParams",
    "landmark_case_examples",
    "aneurysm_case_examples",
    "PatchBuilderMixin",
]

log = logging.getLogger(__name__)

# The `source` feature: what the package knows about where a patch came from. A manual folder may
# hold real scans, phantoms or test crops, so it is "user" data, never claimed "real".
SOURCE_PHANTOM = "phantom"
SOURCE_USER = "user"
ANEURYSM_CLASSES = ("normal_vessel", "aneurysm")
# Air: what a CT patch shows outside the scanned volume.
CT_OUTSIDE_HU = -1024.0
# Negatives are drawn from the body mask of the volume binned to about this voxel size: the body
# outline needs no finer grid, and the mask of a full-resolution torso costs seconds per case.
NEGATIVE_GRID_MM = 4.0
# Below this many cases, starting worker processes costs more than it saves.
MIN_CASES_FOR_POOL = 8
# Modules (or packages: every .py in them) whose source determines the examples of every patch
# dataset; a builder adds its own file and ``EXTRA_GENERATOR_MODULES``. Their digest is stored in
# each build's metadata.json, so a prepared dataset is never reused after this code changed.
GENERATOR_MODULES = (
    "lm_zoo.patch_datasets", "lm_zoo.patches", "lm_zoo._sampling", "lm_zoo.io", "lm_zoo.landmarks",
    "lm_zoo.cohorts", "lm_zoo.phantoms",
)
# DownloadManager attribute where manual_dir() leaves the manual folder's digest for the metadata.
_MANUAL_DIGEST_ATTR = "_lm_zoo_manual_source"


@dataclasses.dataclass(frozen=True)
class AugmentationParams:
    """Plain numbers for lm_zoo.patches.Augmentation (kept separate so params pickle simply)."""

    max_rotation_deg: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    jitter_mm: float = 1.0

    def build(self):
        from lm_zoo.patches import Augmentation

        return Augmentation(self.max_rotation_deg, tuple(self.scale_range), self.jitter_mm)


@dataclasses.dataclass(frozen=True)
class LandmarkParams:
    classes: tuple[str, ...]  # landmark classes that get patches (non_landmark is added)
    allowed: tuple[str, ...]  # names a landmark file may hold; anything else is an error
    source: str  # SOURCE_PHANTOM or SOURCE_USER
    seed: int
    patch_size: int = 32
    spacing_mm: float = 1.5
    samples_per_landmark: int = 4  # 1 at the exact point + (n - 1) augmented
    negatives_per_case: int = 40
    negative_min_distance_mm: float = 20.0
    body_threshold_hu: float = -500.0
    augmentation: AugmentationParams = AugmentationParams()


@dataclasses.dataclass(frozen=True)
class AneurysmParams:
    source: str
    seed: int
    patch_size: int = 32
    spacing_mm: float = 0.6
    samples_per_aneurysm: int = 4  # 1 at the centre + (n - 1) augmented
    max_aneurysm_candidates: int = 8  # vessel candidates inside an aneurysm also count as positives
    negatives_per_case: int = 40
    augmentation: AugmentationParams = AugmentationParams(jitter_mm=0.5)


def _read_case_image(case_id: str, path: str):
    from lm_zoo.io import read_image

    try:
        return read_image(path)
    except (ValueError, FileNotFoundError) as err:
        raise CohortError(f"case {case_id!r}: cannot read volume {path}: {err}") from None


def _inside(image, points: np.ndarray) -> np.ndarray:
    """Which LPS points fall inside the volume's voxel grid (``lm_zoo.io.inside_grid``)."""
    return inside_grid(image, points)


def _coarse(image, grid_mm: float):
    """``image`` averaged over bins of about ``grid_mm`` (same physical extent)."""
    import SimpleITK as sitk

    factors = [max(1, int(round(grid_mm / s))) for s in image.GetSpacing()]
    return image if factors == [1, 1, 1] else sitk.BinShrink(image, factors)


def _example(patch, label: str, case_id: str, point, source: str, **extra) -> dict:
    return {
        "patch": patch.astype(np.float32, copy=False),
        "label": label,
        "case_id": case_id,
        "point_lps_mm": np.asarray(point, dtype=np.float32),
        "source": source,
        **extra,
    }


def _patches(image, points, copies: int, params, default_value, seed):
    """One unaugmented patch per point, then ``copies - 1`` augmented copies of each point (in
    point order, drawn with ``seed``); returns (patches, their points)."""
    from lm_zoo.patches import extract_25d

    if len(points) == 0:
        return np.empty((0, params.patch_size, params.patch_size, 3), np.float32), np.empty((0, 3))
    plain = extract_25d(image, points, params.patch_size, params.spacing_mm, default_value)
    if copies <= 1:
        return plain, points
    repeated = np.repeat(points, copies - 1, axis=0)
    augmented = extract_25d(
        image, repeated, params.patch_size, params.spacing_mm, default_value,
        augment=params.augmentation.build(), seed=seed,
    )
    return np.concatenate([plain, augmented]), np.concatenate([points, repeated])


def scan_landmark_names(cases) -> dict[str, list[str]]:
    """{case_id: landmark names} of every case, read before any patch is written so that a bad
    file fails the build at once. Only VerSe-style ``.json`` files (voxel-index centroids) need their
    image read here; the other formats are read without opening the volume."""
    from lm_zoo.cohorts import read_case_landmarks

    names = {}
    for case in cases:
        lower = case.landmarks.lower()
        image = case.image if lower.endswith(".json") and not lower.endswith(".mrk.json") else None
        try:
            names[case.case_id] = read_case_landmarks(case.landmarks, image=image).names
        except (ValueError, FileNotFoundError) as err:
            raise CohortError(f"case {case.case_id!r}: cannot read landmarks {case.landmarks}: {err}") from None
    return names


def scan_dropped_landmarks(cases, classes) -> dict[str, list[str]]:
    """{case_id: names} of the landmarks of ``classes`` that lie outside their volume and that
    :func:`landmark_case_examples` will skip, found in the main process before the build (worker
    processes' warnings never reach the console). Volume files are opened for their header only."""
    from lm_zoo.cohorts import is_segmentation
    from lm_zoo.landmarks import read_landmarks

    wanted = set(classes)
    dropped = {}
    for case in cases:
        if is_segmentation(case.landmarks):
            continue  # landmarks derived from a segmentation on the volume's grid lie inside it
        lower = case.landmarks.lower()
        verse = lower.endswith(".json") and not lower.endswith(".mrk.json")
        try:
            landmarks = read_landmarks(case.landmarks, image=case.image if verse else None)
        except (ValueError, FileNotFoundError) as err:
            raise CohortError(f"case {case.case_id!r}: cannot read landmarks {case.landmarks}: {err}") from None
        names = [n for n in landmarks.names if n in wanted]
        if not names:
            continue
        points = landmarks.subset(names).points
        outside = [n for n, ok in zip(names, _inside(_image_geometry(case), points)) if not ok]
        if outside:
            dropped[case.case_id] = outside
    return dropped


def report_dropped_landmarks(dropped: dict[str, list[str]], cases, dataset: str) -> None:
    """One warning line per case with landmarks outside the volume, in the build's console output."""
    files = {case.case_id: case.landmarks for case in cases}
    for case_id in sorted(dropped):
        log.warning("%s: case %r: %d landmark(s) outside the volume, no patch made: %s (%s; check its coordinate "
                    "system)", dataset, case_id, len(dropped[case_id]), dropped[case_id], files.get(case_id, "?"))
    if dropped:
        log.warning("%s: %d landmark(s) dropped in %d case(s); listed in the dataset's metadata "
                    "(builder.info.metadata['dropped_landmarks'])", dataset,
                    sum(len(v) for v in dropped.values()), len(dropped))


class _Geometry:
    """Origin, spacing, direction and size of a volume, read from its header only."""

    def __init__(self, reader):
        self._origin, self._spacing = reader.GetOrigin(), reader.GetSpacing()
        self._direction, self._size = reader.GetDirection(), reader.GetSize()

    def GetOrigin(self):  # noqa: N802 (SimpleITK's names, so continuous_index takes either)
        return self._origin

    def GetSpacing(self):  # noqa: N802
        return self._spacing

    def GetDirection(self):  # noqa: N802
        return self._direction

    def GetSize(self):  # noqa: N802
        return self._size


def _image_geometry(case):
    import SimpleITK as sitk

    if Path(case.image).is_dir():  # a DICOM series: read it (validated like every volume)
        return _read_case_image(case.case_id, case.image)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(case.image))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return _read_case_image(case.case_id, case.image)  # its clear error
    return _Geometry(reader)


def check_landmark_names(names: dict[str, list[str]], allowed, cases) -> None:
    """CohortError naming the first case whose landmark file holds a name outside ``allowed``."""
    files = {case.case_id: case.landmarks for case in cases}
    for case_id in sorted(names):
        unknown = sorted(set(names[case_id]) - set(allowed))
        if unknown:
            raise CohortError(_unknown_message(case_id, files.get(case_id, "?"), unknown, list(allowed)))


def _unknown_message(case_id, path, unknown, allowed) -> str:
    shown = allowed[:12] + (["..."] if len(allowed) > 12 else [])
    return (f"case {case_id!r}: {path} names unknown landmark(s) {unknown}; allowed ({len(allowed)}): {shown} "
            "(list every class name in classes.txt)")


def landmark_case_examples(case: LandmarkCase, params: LandmarkParams) -> list[tuple[str, dict]]:
    """(key, example) pairs of one landmark case: patches at its landmarks of ``params.classes``
    (exact + augmented copies) and ``negatives_per_case`` body points away from every landmark."""
    from lm_zoo.cohorts import read_case_landmarks
    from lm_zoo.landmarks import sample_negatives

    image = _read_case_image(case.case_id, case.image)
    try:
        landmarks = read_case_landmarks(case.landmarks, image=image)
    except (ValueError, FileNotFoundError) as err:
        raise CohortError(f"case {case.case_id!r}: cannot read landmarks {case.landmarks}: {err}") from None
    unknown = sorted(set(landmarks.names) - set(params.allowed))
    if unknown:
        raise CohortError(_unknown_message(case.case_id, case.landmarks, unknown, list(params.allowed)))
    wanted = [(n, p) for n, p in zip(landmarks.names, landmarks.points) if n in set(params.classes)]
    names = [n for n, _ in wanted]
    points = np.array([p for _, p in wanted], dtype=float).reshape(-1, 3)
    inside = _inside(image, points)
    if not inside.all():
        # Reported by the main process (scan_dropped_landmarks): a worker's warning is lost.
        log.info("case %r: landmark(s) %s lie outside the volume; skipped", case.case_id,
                    [n for n, ok in zip(names, inside) if not ok])
        names = [n for n, ok in zip(names, inside) if ok]
        points = points[inside]
    seeds = np.random.SeedSequence(case_seed(params.seed, case.case_id)).generate_state(2)
    patches, where = _patches(image, points, params.samples_per_landmark, params, CT_OUTSIDE_HU, int(seeds[0]))
    labels = names + [n for n in names for _ in range(params.samples_per_landmark - 1)]
    if params.negatives_per_case:
        try:
            negatives = sample_negatives(
                _coarse(image, NEGATIVE_GRID_MM), landmarks.points, params.negatives_per_case, params.negative_min_distance_mm,
                seed=int(seeds[1]), body_threshold=params.body_threshold_hu,
            )
        except ValueError as err:
            raise CohortError(f"case {case.case_id!r}: cannot place negatives: {err}") from None
        negative_patches, _ = _patches(image, negatives, 1, params, CT_OUTSIDE_HU, None)
        patches = np.concatenate([patches, negative_patches])
        where = np.concatenate([where, negatives])
        labels = labels + [NON_LANDMARK] * len(negatives)
    return [
        (f"{case.case_id}/{i:05d}", _example(patches[i], labels[i], case.case_id, where[i], params.source))
        for i in range(len(labels))
    ]


def aneurysm_case_examples(case: AneurysmCase, params: AneurysmParams) -> list[tuple[str, dict]]:
    """(key, example) pairs of one MRA case, patches from the per-volume normalised image:
    aneurysm centres (exact + augmented copies) and vessel candidates inside an aneurysm as
    ``aneurysm``; up to ``negatives_per_case`` other vessel candidates as ``normal_vessel``."""
    from lm_zoo.intensity import normalize_mra
    from lm_zoo.vessels import candidate_points, label_candidates, vessel_mask

    image = _read_case_image(case.case_id, case.image)
    if case.mask is not None:
        try:
            rows = aneurysms_from_mask(case.mask)
        except (ValueError, FileNotFoundError) as err:
            raise CohortError(f"case {case.case_id!r}: cannot read mask {case.mask}: {err}") from None
    else:
        rows = list(case.aneurysms)
    centres = np.array([r.center_lps for r in rows], dtype=float).reshape(-1, 3)
    outside = ~_inside(image, centres)
    if outside.any():
        raise CohortError(
            f"case {case.case_id!r}: aneurysm centre(s) {centres[outside].round(1).tolist()} (LPS mm) lie outside "
            f"the volume {case.image}; check the coordinate system (LPS unless '# coordinate_system = RAS')"
        )
    seeds = np.random.SeedSequence(case_seed(params.seed, case.case_id)).generate_state(3)
    normalised = normalize_mra(image)
    candidates = np.asarray(candidate_points(image, mask=vessel_mask(image), seed=int(seeds[0])), dtype=float).reshape(-1, 3)
    if len(candidates):
        labels, sites = label_candidates(candidates, rows)
        labels, sites = np.asarray(labels).astype(str), np.asarray(sites).astype(str)
    else:
        labels = sites = np.empty(0, dtype=str)
    rng = np.random.default_rng(seeds[1])
    positive = np.flatnonzero(labels == "aneurysm")
    positive = np.sort(rng.permutation(positive)[: params.max_aneurysm_candidates * max(len(rows), 1)])
    negative = np.flatnonzero(labels == "normal_vessel")
    negative = np.sort(rng.permutation(negative)[: params.negatives_per_case])

    centre_patches, centre_points = _patches(normalised, centres, params.samples_per_aneurysm, params, 0.0, int(seeds[2]))
    centre_sites = [r.site for r in rows]
    centre_sites = centre_sites + [s for s in centre_sites for _ in range(params.samples_per_aneurysm - 1)]
    chosen = np.concatenate([positive, negative]).astype(int)
    candidate_patches, _ = _patches(normalised, candidates[chosen], 1, params, 0.0, None)
    examples = []
    for i in range(len(centre_patches)):
        examples.append(_example(centre_patches[i], "aneurysm", case.case_id, centre_points[i], params.source,
                                 aneurysm_site=centre_sites[i]))
    for j, c in enumerate(chosen):
        examples.append(_example(candidate_patches[j], str(labels[c]), case.case_id, candidates[c], params.source,
                                 aneurysm_site=str(sites[c]) if labels[c] == "aneurysm" else ""))
    return [(f"{case.case_id}/{i:05d}", ex) for i, ex in enumerate(examples)]


# ------------------------------------------------------------------------------ TFDS base
class _classproperty:
    """Read-only class attribute computed from the class (TFDS reads ``Builder.code_path``)."""

    def __init__(self, fget):
        self.fget = fget

    def __get__(self, obj, owner):
        return self.fget(owner)


class PatchBuilderMixin:
    """Beam-or-loop example generation and a clean data_dir after a failed build.

    Mixed into ``tfds.core.GeneratorBasedBuilder`` subclasses (kept a plain mixin so that TFDS
    does not register it as a dataset).
    """

    _use_beam = False
    # Modules beyond GENERATOR_MODULES whose source determines this builder's examples.
    EXTRA_GENERATOR_MODULES: tuple[str, ...] = ()
    _GENERATOR_DIGESTS: dict = {}

    @classmethod
    def generator_digest(cls) -> str:
        """sha256 of the source files that determine this builder's examples (computed once per
        process): lm_zoo's patch, cohort and phantom code and the builder's own module."""
        key = f"{cls.__module__}.{cls.__qualname__}"
        if key not in PatchBuilderMixin._GENERATOR_DIGESTS:
            files = [f for name in (*GENERATOR_MODULES, *cls.EXTRA_GENERATOR_MODULES) for f in module_files(name)]
            files.append((f"builder/{cls.name}", Path(inspect.getfile(cls))))
            PatchBuilderMixin._GENERATOR_DIGESTS[key] = files_digest(files)
        return PatchBuilderMixin._GENERATOR_DIGESTS[key]

    def dataset_info_from_configs(self, **kwargs):
        # A MetadataDict makes TFDS write metadata.json beside dataset_info.json (the digests).
        import tensorflow_datasets as tfds

        kwargs.setdefault("metadata", tfds.core.MetadataDict())
        return super().dataset_info_from_configs(**kwargs)

    # ----------------------------------------------------------------- stale-build checks
    def _recorded_metadata(self) -> dict:
        path = Path(str(self.data_dir)) / "metadata.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _rebuild_hint(self, manual: str | None) -> str:
        root = Path(str(self.data_dir)).parents[2]
        command = f"tfds build --imports lm_zoo.datasets {self.name}/{self.builder_config.name} --data_dir={root}"
        if manual:
            command += f" --manual_dir={manual}"
        return f"delete {self.data_dir} and rebuild it: {command}"

    def check_not_stale(self, manual_dir=None) -> None:
        """StaleDatasetError when the prepared dataset in ``data_dir`` was made by other generator
        code than the installed one, or (manual configs) from a manual folder whose listing has
        changed since. ``manual_dir``: the folder to compare (default: the one recorded at build
        time; not compared when it no longer exists)."""
        recorded = self._recorded_metadata()
        full = f"{self.name}/{self.builder_config.name} {self.version}"
        manual = manual_dir or recorded.get("manual_dir")
        installed = self.generator_digest()
        if recorded.get("generator_digest") != installed:
            found = recorded.get("generator_digest")
            why = (f"generator_digest {found[:12]} recorded, {installed[:12]} for the installed lm_zoo" if found
                   else "no generator_digest recorded (built by an older lm_zoo)")
            raise StaleDatasetError(
                f"dataset {full} in {self.data_dir} was built by other code than the installed lm_zoo ({why}): "
                f"its examples may differ from what this code makes. {self._rebuild_hint(manual)}"
            )
        if "source_digest" in recorded and manual and Path(str(manual)).is_dir():
            current = folder_listing_digest(manual)
            if current != recorded["source_digest"]:
                raise StaleDatasetError(
                    f"dataset {full} in {self.data_dir} was built from other files than {manual} holds now "
                    f"(a file was added, removed or modified since the build). {self._rebuild_hint(str(manual))}"
                )

    def as_dataset(self, *args, **kwargs):
        if not getattr(self, "_lm_zoo_checked", False) and Path(str(self.data_dir)).is_dir():
            self.check_not_stale()
            self._lm_zoo_checked = True
        return super().as_dataset(*args, **kwargs)

    # TFDS finds README.md, CITATIONS.bib, TAGS.txt, checksums.tsv and dummy_data/ by mapping the
    # module name onto the top package's folder (lm_zoo/datasets/<name>/), which is wrong for the
    # editable install (the builders live in <checkout>/datasets/); the defining file is right
    # in every install mode.
    @classmethod
    def _get_pkg_dir_path(cls):
        from etils import epath

        return epath.Path(inspect.getfile(cls)).parent

    @_classproperty
    def code_path(cls):
        from etils import epath

        return epath.Path(inspect.getfile(cls))

    def _download_and_prepare(self, dl_manager, download_config):
        # Beam only when asked for: a local build of a phantom config is faster as a plain loop.
        self._use_beam = download_config.beam_runner is not None or download_config.beam_options is not None
        result = super()._download_and_prepare(dl_manager, download_config)
        # TFDS writes info.metadata to metadata.json right after this returns.
        metadata = self.info.metadata
        metadata["generator_digest"] = self.generator_digest()
        manual = getattr(dl_manager, _MANUAL_DIGEST_ATTR, None)
        if manual is not None:
            metadata["manual_dir"], metadata["source_digest"] = manual
        return result

    def download_and_prepare(self, *args, **kwargs):
        # One build of a dataset config per data_dir at a time: a second one waits for the first
        # (and then reuses its result) instead of failing inside TFDS with FileExistsError.
        with build_lock(self):
            return self._download_and_prepare_cleanly(*args, **kwargs)

    def _download_and_prepare_cleanly(self, *args, **kwargs):
        # TFDS removes its incomplete.* folder on failure but leaves the dataset/config folders it
        # created (and .config/metadata.json); remove those too so a failed build leaves nothing.
        config_dir = Path(str(self.data_dir)).parent
        dataset_dir = config_dir.parent
        dataset_existed, config_existed = dataset_dir.exists(), config_dir.exists()
        download_config = kwargs.get("download_config")
        mode = getattr(download_config, "download_mode", None)
        overwrite = mode is not None and getattr(mode, "overwrite_dataset", False)
        if Path(str(self.data_dir)).is_dir() and not overwrite:
            # TFDS would reuse it silently: refuse a build of other code or other files.
            self.check_not_stale(getattr(download_config, "manual_dir", None))
            self._lm_zoo_checked = True
        try:
            return super().download_and_prepare(*args, **kwargs)
        except BaseException:
            if not config_existed and config_dir.is_dir() and not any(p.is_file() for p in config_dir.rglob("*")):
                shutil.rmtree(config_dir, ignore_errors=True)
            if not dataset_existed and dataset_dir.is_dir():
                leftovers = [p for p in dataset_dir.rglob("*") if p.is_file() and ".config" not in p.parts]
                if not leftovers:
                    shutil.rmtree(dataset_dir, ignore_errors=True)
            raise

    def _case_examples(self, cases, fn, params):
        """Examples of ``cases``: a Beam transform when a Beam pipeline runs, else a generator."""
        per_case = functools.partial(fn, params=params)
        if self._use_beam:
            import apache_beam as beam

            return beam.Create(list(cases)) | "per_case_examples" >> beam.FlatMap(per_case)
        return self._local_examples(cases, per_case)

    @staticmethod
    def _local_examples(cases, per_case):
        from tqdm.auto import tqdm

        cases = list(cases)
        workers = workers_for(len(cases))
        if workers < 2:
            for case in tqdm(cases, desc="cases", unit="case", leave=False):
                yield from per_case(case)
            return
        # "spawn": the parent has TensorFlow's threads running, which a forked child must not inherit.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            # map() keeps case order, so the examples are the same as with the plain loop.
            for examples in tqdm(pool.map(per_case, cases), total=len(cases), desc="cases", unit="case", leave=False):
                yield from examples
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class DatasetLockedError(LmZooError, RuntimeError):
    """Another process is building the same dataset config into the same data_dir."""


@contextlib.contextmanager
def build_lock(builder):
    """Hold ``<data_dir>/.lock.<dataset>.<config>.<version>`` (an flock, released by the OS even
    when its holder is killed) while ``builder`` is prepared.

    A second build waits, saying so on stderr, for at most ``$LM_ZOO_BUILD_LOCK_TIMEOUT`` seconds
    (default: as long as the first one runs), then refuses with :class:`DatasetLockedError`. When
    the first build finished meanwhile, the waiting builder reads its result (TFDS then reuses it).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    root = Path(str(getattr(builder, "_data_dir_root", None) or Path(str(builder.data_dir)).parents[2]))
    config = builder.builder_config.name if builder.builder_config else "default"
    lock_path = root / f".lock.{builder.name}.{config}.{builder.version}"
    root.mkdir(parents=True, exist_ok=True)
    timeout = os.environ.get("LM_ZOO_BUILD_LOCK_TIMEOUT")
    try:
        timeout = None if timeout in (None, "") else float(timeout)
    except ValueError:
        raise ValueError(f"LM_ZOO_BUILD_LOCK_TIMEOUT must be a number of seconds, got {timeout!r}") from None
    handle = open(lock_path, "a+")
    try:
        waited = False
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(lock_path)
                if not waited:
                    print(f"{builder.name}/{config}: another build ({holder}) is preparing this dataset in {root}; "
                          f"waiting for it to finish (lock file {lock_path})", file=sys.stderr, flush=True)
                    waited = True
                if timeout is not None and time.monotonic() - start >= timeout:
                    raise DatasetLockedError(
                        f"{builder.name}/{config} is being built into {root} by another process ({holder}; lock file "
                        f"{lock_path}); waited {timeout:g} s. Wait for it to finish, or build into another data_dir"
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        if waited and builder.is_prepared():
            builder.info.read_from_directory(builder.data_dir)  # the other build's splits and metadata
        yield
    finally:
        handle.close()  # releases the lock


def _lock_holder(lock_path: Path) -> str:
    try:
        return lock_path.read_text().strip() or "pid unknown"
    except OSError:
        return "pid unknown"


def workers_for(n_cases: int) -> int:
    """Worker processes for ``n_cases`` cases: 1 for a few cases, where starting processes costs
    more than it saves, else :func:`local_workers` (at most one per case)."""
    return 1 if n_cases < MIN_CASES_FOR_POOL else min(local_workers(), n_cases)


def local_workers() -> int:
    """Processes for a local (non-Beam) build: ``$LM_ZOO_DATASET_WORKERS``, else the usable CPUs."""
    value = os.environ.get("LM_ZOO_DATASET_WORKERS")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"LM_ZOO_DATASET_WORKERS must be a positive integer, got {value!r}")
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cache_root(dl_manager) -> Path:
    """Where phantom cohorts are cached: the download folder of this build.

    ``_download_dir`` is read instead of ``download_dir`` because TFDS's test harness patches
    the latter to point at the read-only ``dummy_data/`` folder.
    """
    return Path(str(getattr(dl_manager, "_download_dir", None) or dl_manager.download_dir)) / "lm_zoo_phantoms"


def manual_dir(dl_manager, layout: str) -> Path:
    """The manual folder, with TFDS's AssertionError for a missing/empty one turned into our error."""
    from lm_zoo.cohorts import CohortNotFoundError

    try:
        root = Path(str(dl_manager.manual_dir))
    except AssertionError as err:
        raise CohortNotFoundError(f"{err.args[0].splitlines()[0]} Expected layout: {layout}") from None
    # Recorded in the build's metadata.json (PatchBuilderMixin): a later change to the folder
    # makes the prepared dataset stale.
    setattr(dl_manager, _MANUAL_DIGEST_ATTR, (str(root.resolve()), folder_listing_digest(root)))
    return root


def rows_to_strata(cases) -> dict[str, str]:
    """{case_id: "aneurysm" | "none"} for stratified MRA splits, from CSV rows (mask cohorts are
    not opened just for this, so they are split unstratified)."""
    return {c.case_id: ("aneurysm" if c.aneurysms else "none") for c in cases}


__all__ += ["GENERATOR_MODULES", "cache_root", "manual_dir", "rows_to_strata",
            "scan_landmark_names", "check_landmark_names", "AugmentationParams", "scan_dropped_landmarks",
            "report_dropped_landmarks", "build_lock", "DatasetLockedError"]
