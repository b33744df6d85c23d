"""mra_aneurysm_patches: 2.5D patches of intracranial aneurysms vs normal vessel in head TOF-MRA."""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from lm_zoo import cohorts
from lm_zoo import dataset_builder as glue

# Manual cohorts: case-level proportions as in the method's 100 train / 50 test phantom split.
MANUAL_SPLIT_FRACTIONS = {"train": 2 / 3, "test": 1 / 3}
COHORTS = ("phantom", "manual", "inserted")

_MANUAL_INSTRUCTIONS = """\
Put your TOF-MRA cohort in `manual_dir` (default `~/tensorflow_datasets/downloads/manual/`, or pass
`--manual_dir` to `tfds build` / `DownloadConfig(manual_dir=...)`) with exactly this layout:

    images/<case_id>.<nii.gz|nii|mha|mhd|nrrd|nhdr>   one TOF-MRA volume per case
      or images/<case_id>/                          a folder holding one DICOM series
    aneurysms.csv                                   case_id,x,y,z,radius_mm,site  (one row per
                                                    aneurysm; LPS mm unless a line
                                                    `# coordinate_system = RAS` precedes the header;
                                                    cases without aneurysm have no row; site may be empty)
      or masks/<case_id>.nii.gz                     label masks as in the ADAM challenge (label 1 =
                                                    aneurysm; one mask per image; used when there is
                                                    no aneurysms.csv)
    cases.txt                                       optional: the case ids to use, one a line

Candidates are points on the vessels found by `lm_zoo.vessels`; a candidate inside an aneurysm is
labelled `aneurysm`, the others `normal_vessel`. Patches are per-volume normalised
(`lm_zoo.intensity.normalize_mra`). Cases are split 2/3 train, 1/3 test, stratified by whether the
case has an aneurysm.

For the `inserted` config, `manual_dir` holds HEALTHY TOF-MRAs instead (`images/<case_id>.<...>`,
optional `cases.txt`; no annotation: a folder holding `aneurysms.csv` or `masks/` is refused, build
`manual` for it): aneurysms are inserted deterministically by
`lm_zoo.phantoms.insert_aneurysms` (half of the cases get 1-3, the others none), then the same
candidate pipeline runs. Its examples say `source` = `user+inserted`.
"""


@dataclasses.dataclass(eq=False)
class BuilderConfig(tfds.core.BuilderConfig):
    """A cohort (phantom of fixed size, or the manual folder) and the patch sampling."""

    cohort: str = "phantom"
    n_train: int = 0  # phantom: exact numbers of train / test cases; 0 for manual / inserted cohorts
    n_test: int = 0
    aneurysm_fraction: float = 0.5  # phantom / inserted: share of cases with an aneurysm
    # phantom voxel sizes ((in-plane min, max), (slice min, max)) mm; None: head_mra's default
    phantom_spacing_range: tuple[tuple[float, float], tuple[float, float]] | None = None
    patch_size: int = 32
    spacing_mm: float = 0.6
    samples_per_aneurysm: int = 4  # 1 at the centre + (n - 1) augmented copies
    max_aneurysm_candidates: int = 8  # per aneurysm: vessel candidates inside it, also positives
    negatives_per_case: int = 40
    max_rotation_deg: float = 15.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    jitter_mm: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if self.cohort not in COHORTS:
            raise ValueError(f"BuilderConfig {self.name!r}: cohort {self.cohort!r} not in {COHORTS}")
        if (self.cohort == "phantom") != (self.n_train > 0 and self.n_test > 0):
            raise ValueError(f"BuilderConfig {self.name!r}: phantom cohorts need n_train, n_test > 0; manual "
                             "and inserted 0")


class Builder(glue.PatchBuilderMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for mra_aneurysm_patches."""

    # Vessel candidates and MRA normalisation make its examples too (see PatchBuilderMixin).
    EXTRA_GENERATOR_MODULES = ("lm_zoo.vessels", "lm_zoo.intensity")

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {
        "1.1.0": "manual builds are stamped source='user' (was 'real'); metadata.json records the "
        "generator_digest (and source_digest of manual_dir), and a prepared dataset whose digest differs "
        "from the installed code's or the folder's is refused (StaleDatasetError). Also holds this "
        "release's reader, phantom and sampling changes (truncated files refused, dropped landmarks "
        "listed in metadata, one border rule -0.5 <= index < size - 0.5).",
        "1.0.0": "Initial release: phantom (150 cases, 100 train / 50 test), phantom_tiny and manual "
        "(your TOF-MRA cohort with aneurysms.csv or ADAM-style masks).",
        "1.2.0": "inserted config (aneurysms inserted into your healthy TOF-MRAs, source user+inserted); "
        "phantom calibrated on a real TOF-MRA (wall profile, noise, tortuosity) with more hard negatives "
        "(infundibula at branch origins, close parallel vessels) and some fusiform aneurysms."
        " The lm_zoo 0.2 restructure moved the generator code (lm_zoo.dataset_builder, lm_zoo.anatomy, "
        "lm_zoo.segmentation): the generator_digest changed, the examples did not (checked example by example"
        " on phantom_tiny and manual builds); a build made with lm_zoo 0.1 is refused as stale once, then "
        "rebuilt."
        " lm_zoo 0.3: one worker pool per build and the build lock no longer counted in the digest: the generator_digest changed, the examples did not (checked example by example on phantom_tiny and manual builds, 1 and 2 workers); a build made with lm_zoo 0.2 is refused as stale once, then rebuilt.",
    }
    BUILDER_CONFIGS = [
        BuilderConfig(
            name="phantom",
            description="150 phantom TOF-MRA cases, half with aneurysms: 100 train / 50 test cases (as in the method).",
            cohort="phantom", n_train=100, n_test=50,
        ),
        BuilderConfig(
            name="phantom_tiny",
            description="6 coarse (0.8 mm) phantom cases (4 train / 2 test), 2 patches per aneurysm centre, "
            "6 normal-vessel patches per case (tests).",
            cohort="phantom", n_train=4, n_test=2, phantom_spacing_range=((0.8, 0.8), (0.8, 0.8)),
            samples_per_aneurysm=2, max_aneurysm_candidates=0,
            negatives_per_case=6,
        ),
        BuilderConfig(
            name="manual",
            description="Your TOF-MRA cohort from manual_dir (see the manual download instructions).",
            cohort="manual",
        ),
        BuilderConfig(
            name="inserted",
            description="Aneurysms inserted into your healthy TOF-MRAs from manual_dir (images/ only; half the "
            "cases get 1-3 aneurysms), source user+inserted.",
            cohort="inserted",
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "phantom"
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_INSTRUCTIONS

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.patch_size
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "patch": tfds.features.Tensor(shape=(size, size, 3), dtype=np.float32,
                                              doc="per-volume normalised (normalize_mra); axial, coronal, sagittal"),
                "label": tfds.features.ClassLabel(names=list(glue.ANEURYSM_CLASSES)),
                "case_id": tfds.features.Text(),
                "point_lps_mm": tfds.features.Tensor(shape=(3,), dtype=np.float32,
                                                     doc="candidate or aneurysm centre (before augmentation jitter), LPS mm"),
                "aneurysm_site": tfds.features.Text(doc="artery of the aneurysm, empty for normal_vessel"),
                "source": tfds.features.Text(doc="phantom (generated by lm_zoo), user (read from manual_dir) or user+inserted (the user's healthy MRAs with aneurysms inserted by lm_zoo)"),
            }),
            supervised_keys=("patch", "label"),
        )

    def phantom_cohort_dir(self, cache_root):
        """The phantom cohort of this config, written under ``cache_root`` unless already there."""
        from lm_zoo.phantoms import head_mra

        config = self.builder_config
        content = {"aneurysm_fraction": config.aneurysm_fraction}
        if config.phantom_spacing_range is not None:
            content["spacing_range"] = tuple(tuple(r) for r in config.phantom_spacing_range)
        return cohorts.phantom_cohort(
            cache_root, head_mra, config.n_train + config.n_test, config.seed,
            runtime_kwargs={"montage_cases": 0, "workers": glue.workers_for(config.n_train + config.n_test)},
            **content,
        )

    def inserted_cohort_dir(self, source_dir, cache_root):
        """The healthy cohort ``source_dir`` with aneurysms inserted, written under ``cache_root``
        once per content of its volumes (and generator sources)."""
        from lm_zoo.phantoms import insertion

        config = self.builder_config
        n = len(insertion.healthy_cases(source_dir))
        return cohorts.phantom_cohort(
            cache_root, insertion, n, config.seed, source_dir=str(source_dir),
            source_digest=insertion.source_digest(source_dir), aneurysm_fraction=config.aneurysm_fraction,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        config = self.builder_config
        if config.cohort == "phantom":
            root = self.phantom_cohort_dir(self.phantom_cache())
            source = glue.SOURCE_PHANTOM
        elif config.cohort == "inserted":
            from lm_zoo.phantoms import insertion

            root = self.inserted_cohort_dir(self.read_manual_dir(dl_manager, insertion.HEALTHY_LAYOUT), self.phantom_cache())
            source = "user+inserted"
        else:
            root = self.read_manual_dir(dl_manager, cohorts.ANEURYSM_LAYOUT)
            source = glue.SOURCE_USER
        cases = cohorts.read_aneurysm_cohort(root)
        strata = glue.rows_to_strata(cases)
        ids = [case.case_id for case in cases]
        if config.cohort == "phantom":
            splits = cohorts.split_exact(ids, {"train": config.n_train, "test": config.n_test}, config.seed, strata)
        else:
            splits = cohorts.split_cases(ids, MANUAL_SPLIT_FRACTIONS, config.seed, strata)
        params = glue.AneurysmParams(
            source=source, seed=config.seed, patch_size=config.patch_size, spacing_mm=config.spacing_mm,
            samples_per_aneurysm=config.samples_per_aneurysm,
            max_aneurysm_candidates=config.max_aneurysm_candidates, negatives_per_case=config.negatives_per_case,
            augmentation=glue.AugmentationParams(config.max_rotation_deg, tuple(config.scale_range), config.jitter_mm),
        )
        by_id = {case.case_id: case for case in cases}
        return {name: self._generate_examples([by_id[i] for i in members], params) for name, members in splits.items()}

    def _generate_examples(self, cases, params):
        """(key, example) of every case: a generator, or a Beam transform under a Beam runner."""
        return self._case_examples(cases, glue.aneurysm_case_examples, params)
