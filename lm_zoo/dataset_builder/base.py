"""The TFDS builder base the patch datasets share, on the public ``GeneratorBasedBuilder`` API.

Builders override the public hooks (``_info``, ``_split_generators``, ``_generate_examples``);
this mixin wraps the public ``download_and_prepare`` (one build per data_dir at a time, a stale
prepared build refused, nothing left behind by a failed build, the generator digest recorded) and
``as_dataset`` (a stale build refused on load).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import itertools
import shutil
from pathlib import Path

from lm_zoo.cohorts import CohortNotFoundError
from lm_zoo.dataset_builder import beam_runner, derived, staleness
from lm_zoo.dataset_builder.lock import build_lock, data_root
from lm_zoo.dataset_builder.workers import build_pool
from lm_zoo.parallel import CasePool

__all__ = ["PatchBuilderMixin", "manual_dir"]

# Under the build's download folder: where phantom cohorts are written once and reused.
PHANTOM_CACHE = "lm_zoo_phantoms"


class PatchBuilderMixin:
    """Beam-or-loop example generation, stale-build checks and a clean data_dir after a failed build.

    Mixed into ``tfds.core.GeneratorBasedBuilder`` subclasses (kept a plain mixin so that TFDS
    does not register it as a dataset).
    """

    _use_beam = False
    # Modules beyond staleness.GENERATOR_MODULES whose source determines this builder's examples.
    EXTRA_GENERATOR_MODULES: tuple[str, ...] = ()
    _GENERATOR_DIGESTS = staleness._DIGESTS  # {builder key: digest}, once per process

    def __init_subclass__(cls, **kwargs):
        # TFDS finds README.md, CITATIONS.bib, TAGS.txt, checksums.tsv and dummy_data/ by mapping
        # the module name onto the top package's folder (lm_zoo/datasets/<name>/), which is wrong
        # for the editable install (the builders live in <checkout>/datasets/); the defining file
        # is right in every install mode. pkg_dir_path is TFDS's documented override.
        from etils import epath

        cls.code_path = epath.Path(inspect.getfile(cls))
        cls.pkg_dir_path = cls.code_path.parent
        super().__init_subclass__(**kwargs)

    @classmethod
    def generator_digest(cls) -> str:
        """sha256 of the source files that determine this builder's examples (computed once per
        process): lm_zoo's patch, cohort and phantom code and the builder's own module."""
        return staleness.generator_digest(cls)

    def dataset_info_from_configs(self, **kwargs):
        # A MetadataDict makes TFDS write metadata.json beside dataset_info.json (the digests).
        import tensorflow_datasets as tfds

        kwargs.setdefault("metadata", tfds.core.MetadataDict())
        info = super().dataset_info_from_configs(**kwargs)
        # TFDS's own DatasetInfo, built by TFDS's code, with one lookup switched off (see the class).
        info.__class__ = _local_dataset_info_class()
        return info

    def check_not_stale(self, manual_dir=None) -> None:
        """StaleDatasetError when the prepared dataset in ``data_dir`` was made by other generator
        code than the installed one, or (manual configs) from a manual folder whose listing has
        changed since. ``manual_dir``: the folder to compare (default: the one recorded at build
        time; not compared when it no longer exists)."""
        staleness.check_not_stale(self, data_root(self), manual_dir)

    def as_dataset(self, *args, **kwargs):
        if not getattr(self, "_lm_zoo_checked", False) and Path(str(self.data_dir)).is_dir():
            self.check_not_stale()
            self._lm_zoo_checked = True
        return super().as_dataset(*args, **kwargs)

    def download_and_prepare(self, *, download_dir=None, download_config=None, **kwargs):
        # One build of a dataset config per data_dir at a time: a second one waits for the first
        # (and then reuses its result) instead of failing inside TFDS with FileExistsError.
        # Beam only when asked for: a local build of a phantom config is faster as a plain loop.
        self._use_beam = download_config is not None and (
            download_config.beam_runner is not None or download_config.beam_options is not None)
        if self._use_beam:
            download_config = beam_runner.offline_download_config(download_config)
        # TFDS's default download folder; its test harness patches DownloadManager.download_dir to
        # the read-only dummy_data/, so the phantom cache is placed from what was passed here.
        self._phantom_cache = Path(str(download_dir or data_root(self) / "downloads")) / PHANTOM_CACHE
        # The lock is released (its file removed) before the folders it sat in are tidied.
        with _remove_new_empty_folders_on_failure(data_root(self), self._phantom_cache.parent), build_lock(self):
            self._refuse_stale(download_config)
            # TFDS writes info.metadata to metadata.json when the build succeeds.
            self.info.metadata["generator_digest"] = self.generator_digest()
            # One pool for the whole build (the scan of names and every split), started once.
            with _cleanup_on_failure(Path(str(self.data_dir)).parent), build_pool() as self._pool:
                try:
                    return super().download_and_prepare(download_dir=download_dir, download_config=download_config,
                                                        **kwargs)
                finally:
                    self._pool = None

    def _refuse_stale(self, download_config) -> None:
        mode = getattr(download_config, "download_mode", None)
        overwrite = mode is not None and getattr(mode, "overwrite_dataset", False)
        if Path(str(self.data_dir)).is_dir() and not overwrite:
            # TFDS would reuse it silently: refuse a build of other code or other files.
            self.check_not_stale(getattr(download_config, "manual_dir", None))
            self._lm_zoo_checked = True

    def phantom_cache(self) -> Path:
        """Where this build writes and reuses phantom cohorts: ``<download folder>/lm_zoo_phantoms``."""
        cache = getattr(self, "_phantom_cache", None)
        return cache if cache is not None else data_root(self) / "downloads" / PHANTOM_CACHE

    def derived_cache(self) -> Path:
        """Where this build keeps landmarks derived from segmentations, once per case
        (:mod:`lm_zoo.dataset_builder.derived`): ``<download folder>/lm_zoo_derived``."""
        return self.phantom_cache().parent / derived.DERIVED_CACHE

    def case_pool(self) -> CasePool:
        """The worker pool of the build under way (:func:`lm_zoo.dataset_builder.workers.build_pool`);
        outside a build, a serial one (nothing to shut down)."""
        pool = getattr(self, "_pool", None)
        return pool if pool is not None else CasePool(1)

    def read_manual_dir(self, dl_manager, layout: str) -> Path:
        """The manual folder (:func:`manual_dir`), recorded in this build's metadata.json."""
        return manual_dir(dl_manager, layout, self.info.metadata)

    def _case_examples(self, cases, fn, params):
        """Examples of ``cases``: a Beam transform when a Beam pipeline runs, else a generator."""
        if getattr(params, "derived_cache", False) is None and self.derived_cache() is not None:
            # The scan of names derived each case's landmarks from its segmentation: reuse them.
            params = dataclasses.replace(params, derived_cache=str(self.derived_cache()))
        per_case = functools.partial(fn, params=params)
        if self._use_beam:
            import apache_beam as beam

            return beam.Create(list(cases)) | "per_case_examples" >> beam.FlatMap(per_case)
        # Queued now (every split before the first is read), computed as the writer reads them.
        results = self.case_pool().map(per_case, list(cases), desc="cases", unit="case", leave=False)
        return itertools.chain.from_iterable(results)


@functools.cache
def _local_dataset_info_class():
    """``tfds.core.DatasetInfo`` that never looks for its dataset in TFDS's GCS bucket: lm_zoo's
    datasets are not there, and TFDS's lookup leaves an empty ``tmp*tfds`` folder in the system
    temp folder for every builder made before its dataset is prepared."""
    import tensorflow_datasets as tfds

    class LocalDatasetInfo(tfds.core.DatasetInfo):
        def initialize_from_bucket(self) -> None:
            return None

    return LocalDatasetInfo


@contextlib.contextmanager
def _cleanup_on_failure(config_dir: Path):
    """TFDS removes its incomplete.* folder on failure but leaves the dataset/config folders it
    created (and .config/metadata.json); remove those too so a failed build leaves nothing."""
    dataset_dir = config_dir.parent
    dataset_existed, config_existed = dataset_dir.exists(), config_dir.exists()
    try:
        yield
    except BaseException:
        if not config_existed and config_dir.is_dir() and not any(p.is_file() for p in config_dir.rglob("*")):
            shutil.rmtree(config_dir, ignore_errors=True)
        if not dataset_existed and dataset_dir.is_dir():
            leftovers = [p for p in dataset_dir.rglob("*") if p.is_file() and ".config" not in p.parts]
            if not leftovers:
                shutil.rmtree(dataset_dir, ignore_errors=True)
        raise


@contextlib.contextmanager
def _remove_new_empty_folders_on_failure(*folders: Path):
    """A failed build leaves no folder it created: ``folders`` (data_dir, the download folder)
    and their direct subfolders (``downloads/extracted``, ``downloads/lm_zoo_phantoms``) that did
    not exist before are removed if empty. Only empty ones: a cohort cached there is complete
    (written to a temporary name, then renamed) and saves the next build its generation, as
    TFDS keeps its downloads. Never more than rmdir: nothing with content is ever deleted."""
    def present() -> set[Path]:
        found = set()
        for folder in folders:
            if folder.is_dir():
                found |= {folder, *(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())}
        return found

    before = present()
    try:
        yield
    except BaseException:
        for folder in sorted(present() - before, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # not empty (or another build's meanwhile): kept
                folder.rmdir()
        raise


def manual_dir(dl_manager, layout: str, metadata=None) -> Path:
    """The manual folder, with TFDS's AssertionError for a missing/empty one turned into our error;
    noted in ``metadata`` (a build's ``info.metadata``) when given, see ``staleness.record_manual_dir``."""
    try:
        root = Path(str(dl_manager.manual_dir))
    except AssertionError as err:
        raise CohortNotFoundError(f"{err.args[0].splitlines()[0]} Expected layout: {layout}") from None
    if metadata is not None:
        staleness.record_manual_dir(metadata, root)
    return root
