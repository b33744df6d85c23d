"""landmark_ct_patches: 2.5D patches (axial, coronal, sagittal) at anatomical landmarks in torso CT."""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from lm_zoo import anatomy, cohorts
from lm_zoo import dataset_builder as glue

# Case-level split proportions (a case's patches all go to one split).
SPLIT_FRACTIONS = {"train": 0.70, "validation": 0.15, "test": 0.15}
CLASS_SETS = ("lm20", "lm60", "manual")

_MANUAL_INSTRUCTIONS = """\
Put your CT cohort in `manual_dir` (default `~/tensorflow_datasets/downloads/manual/`, or pass
`--manual_dir` to `tfds build` / `DownloadConfig(manual_dir=...)`) with exactly this layout:

    images/<case_id>.<nii.gz|nii|mha|mhd|nrrd|nhdr>   one CT volume per case, in HU
      or images/<case_id>/                          a folder holding one DICOM series
    landmarks/<case_id>.<csv|fcsv|mrk.json|json>    one landmark file per image (same case_id)
    classes.txt                                     optional: the landmark class names, one a line

Landmark files: `.csv` = `name,x,y,z` in LPS mm (a `# coordinate_system = RAS` line before the
header switches to RAS); `.fcsv` / `.mrk.json` = 3D Slicer markups (their coordinate system is
honoured); `.json` = VerSe centroid files (voxel indices of the image). Every landmark name must be
listed in `classes.txt` when that file exists (otherwise the classes are the union of the names in
all files, sorted). Every image needs a landmark file and every landmark file an image; two
volumes with the same case_id are an error. Cases are split 70/15/15 (train/validation/test).
"""


@dataclasses.dataclass(eq=False)
class BuilderConfig(tfds.core.BuilderConfig):
    """A class set, a cohort (phantom size or the manual folder) and the patch sampling."""

    class_set: str = "lm60"  # "lm20" / "lm60": phantom landmark tables; "manual": classes.txt
    n_cases: int = 0  # phantom cohort size; 0 for the manual cohort
    phantom_spacing_mm: float | None = None  # phantom voxel size; None: torso_ct's "cohort" resolution
    patch_size: int = 32
    spacing_mm: float = 1.5
    samples_per_landmark: int = 4  # 1 at the exact point + (n - 1) augmented copies
    negatives_per_case: int = 40
    negative_min_distance_mm: float = 20.0
    max_rotation_deg: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    jitter_mm: float = 1.5
    seed: int = 0

    def __post_init__(self):
        if self.class_set not in CLASS_SETS:
            raise ValueError(f"BuilderConfig {self.name!r}: class_set {self.class_set!r} not in {CLASS_SETS}")
        if (self.class_set == "manual") != (self.n_cases == 0):
            raise ValueError(f"BuilderConfig {self.name!r}: n_cases must be 0 exactly for the manual class set")

    @property
    def is_phantom(self) -> bool:
        return self.class_set != "manual"


def _phantom_classes(class_set: str) -> list[str]:
    return list(anatomy.LM20 if class_set == "lm20" else anatomy.LM60)


class Builder(glue.PatchBuilderMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for landmark_ct_patches."""

    VERSION = tfds.core.Version("1.3.0")
    RELEASE_NOTES = {
        "1.3.0": "manual_adapt config: the manual cohort sampled densely (48 patches per landmark, 400 "
        "negatives per case), the real patches of the landmark weights' second training stage. Other "
        "configs' patches are unchanged."
        " The lm_zoo 0.2 restructure moved the generator code (lm_zoo.dataset_builder, lm_zoo.anatomy, "
        "lm_zoo.segmentation): the generator_digest changed, the examples did not (checked example by example"
        " on phantom_tiny and manual builds); a build made with lm_zoo 0.1 is refused as stale once, then "
        "rebuilt. Landmarks derived from segmentations/ are now derived once per case and cached beside the "
        "phantom cache (downloads/lm_zoo_derived); same examples."
        " lm_zoo 0.3: one worker pool per build and the build lock no longer counted in the digest: the generator_digest changed, the examples did not (checked example by example on phantom_tiny and manual builds, 1 and 2 workers); a build made with lm_zoo 0.2 is refused as stale once, then rebuilt.",
        "1.2.0": "New torso phantom generator: thin cortical shells around trabecular (textured) cancellous "
        "bone (vertebral bodies with posterior concavity, posterior elements, ribs, sternum, pelvis, "
        "acetabulum, femoral head/neck), organ parenchyma texture, portal-venous phase, HU calibrated "
        "against the shared real CTs. Phantom patches differ from 1.0.0; rebuild.",
        "1.1.0": "manual builds are stamped source='user' (was 'real'); metadata.json records the "
        "generator_digest (and source_digest of manual_dir), and a prepared dataset whose digest differs "
        "from the installed code's or the folder's is refused (StaleDatasetError). Also holds this "
        "release's reader, phantom and sampling changes (truncated files refused, dropped landmarks "
        "listed in metadata, one border rule -0.5 <= index < size - 0.5).",
        "1.0.0": "Initial release: phantom_tiny, phantom_lm20, phantom_lm60 (phantom torso CT) and "
        "manual (your CT cohort); splits by case 70/15/15.",
    }
    BUILDER_CONFIGS = [
        BuilderConfig(
            name="phantom_lm60",
            description="60 landmarks + non_landmark, 120 phantom torso CT cases (the method's class set).",
            class_set="lm60", n_cases=120,
        ),
        BuilderConfig(
            name="phantom_lm20",
            description="20 landmarks (a nested subset of lm60) + non_landmark, the same 120 phantom cases.",
            class_set="lm20", n_cases=120,
        ),
        BuilderConfig(
            name="phantom_tiny",
            description="20 landmarks + non_landmark on 5 coarse (3 mm) phantom cases, 1 patch per landmark (seconds; tests).",
            class_set="lm20", n_cases=5, phantom_spacing_mm=3.0, samples_per_landmark=1, negatives_per_case=4,
        ),
        BuilderConfig(
            name="manual",
            description="Your CT cohort from manual_dir (see the manual download instructions).",
            class_set="manual", n_cases=0,
        ),
        BuilderConfig(
            name="manual_adapt",
            description="Your CT cohort from manual_dir, sampled densely (48 patches per landmark, 400 negatives "
            "per case) to adapt phantom-trained weights to a few real scans: lm-zoo train landmark "
            "--real-dataset landmark_ct_patches/manual_adapt (every split is used for training there).",
            class_set="manual", n_cases=0, samples_per_landmark=48, negatives_per_case=400,
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "phantom_lm60"
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_INSTRUCTIONS

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        # The manual class set is only known once manual_dir is read (_split_generators).
        label = (
            tfds.features.ClassLabel(names=[*_phantom_classes(config.class_set), glue.NON_LANDMARK])
            if config.is_phantom
            else tfds.features.ClassLabel()
        )
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "patch": tfds.features.Tensor(shape=(config.patch_size, config.patch_size, 3), dtype=np.float32,
                                              doc="raw HU; channels axial, coronal, sagittal"),
                "label": label,
                "case_id": tfds.features.Text(),
                "point_lps_mm": tfds.features.Tensor(shape=(3,), dtype=np.float32,
                                                     doc="annotated point (before augmentation jitter), LPS mm"),
                "source": tfds.features.Text(doc="phantom (generated by lm_zoo) or user (read from manual_dir)"),
            }),
            supervised_keys=("patch", "label"),
            # dropped_landmarks: {case_id: [names]} outside their volume, so without a patch
            metadata=tfds.core.MetadataDict(),
        )

    def phantom_cohort_dir(self, cache_root):
        """The phantom cohort of this config, written under ``cache_root`` unless already there."""
        from lm_zoo.phantoms import torso_ct

        config = self.builder_config
        content = {} if config.phantom_spacing_mm is None else {"spacing_mm": config.phantom_spacing_mm}
        return cohorts.phantom_cohort(
            cache_root, torso_ct, config.n_cases, config.seed,
            runtime_kwargs={"workers": glue.workers_for(config.n_cases), "montage": False}, **content,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        config = self.builder_config
        if config.is_phantom:
            root = self.phantom_cohort_dir(self.phantom_cache())
            source = glue.SOURCE_PHANTOM
        else:
            root = self.read_manual_dir(dl_manager, cohorts.LANDMARK_LAYOUT)
            source = glue.SOURCE_USER
        cases, listed = cohorts.read_landmark_cohort(root)
        if config.is_phantom:
            classes = _phantom_classes(config.class_set)
            allowed = [name for name, _ in anatomy.LANDMARKS]
        else:
            names = glue.scan_landmark_names(cases, cache=self.derived_cache(), pool=self.case_pool())
            allowed = listed if listed is not None else sorted(set().union(*names.values()))
            if glue.NON_LANDMARK in allowed:
                raise cohorts.CohortError(
                    f"{root}: {glue.NON_LANDMARK!r} is reserved for the random body points; rename that landmark"
                )
            glue.check_landmark_names(names, allowed, cases)
            classes = list(allowed)
            self.info.features["label"].names = [*classes, glue.NON_LANDMARK]
        params = glue.LandmarkParams(
            classes=tuple(classes), allowed=tuple(allowed), source=source, seed=config.seed,
            patch_size=config.patch_size, spacing_mm=config.spacing_mm,
            samples_per_landmark=config.samples_per_landmark, negatives_per_case=config.negatives_per_case,
            negative_min_distance_mm=config.negative_min_distance_mm,
            augmentation=glue.AugmentationParams(config.max_rotation_deg, tuple(config.scale_range), config.jitter_mm),
        )
        dropped = glue.scan_dropped_landmarks(cases, classes)
        glue.report_dropped_landmarks(dropped, cases, f"{self.name}/{config.name}")
        self.info.metadata["dropped_landmarks"] = dropped
        by_id = {case.case_id: case for case in cases}
        splits = cohorts.split_cases(list(by_id), SPLIT_FRACTIONS, seed=config.seed)
        return {name: self._generate_examples([by_id[i] for i in ids], params) for name, ids in splits.items()}

    def _generate_examples(self, cases, params):
        """(key, example) of every case: a generator, or a Beam transform under a Beam runner."""
        return self._case_examples(cases, glue.landmark_case_examples, params)
