"""TFDS conformance tests of mra_aneurysm_patches: the manual config on dummy_data/ (3 cropped
phantom volumes with aneurysms.csv, see datasets/make_dummy_data.py) and phantom_tiny."""
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from lm_zoo import cohorts
from lm_zoo.datasets.mra_aneurysm_patches import mra_aneurysm_patches_dataset_builder as builder_module

CONFIGS = {c.name: c for c in builder_module.Builder.BUILDER_CONFIGS}


def _candidate_seed(config, case_id) -> int:
    # The builder draws the candidate grid seed first from the per-case seed sequence.
    return int(np.random.SeedSequence(cohorts.case_seed(config.seed, case_id)).generate_state(3)[0])


def _expected_examples(config, case) -> int:
    """Examples of one case, counted from the vessel candidates directly: each aneurysm's centre +
    augmented copies, the candidates inside an aneurysm (capped) and the other candidates (capped)."""
    from lm_zoo.vessels import candidate_points, label_candidates

    n = config.samples_per_aneurysm * len(case.aneurysms)
    if config.max_aneurysm_candidates == 0 and config.negatives_per_case == 0:
        return n
    labels, _ = label_candidates(candidate_points(case.image, seed=_candidate_seed(config, case.case_id)), case.aneurysms)
    return (
        n
        + min(int(np.sum(labels == "aneurysm")), config.max_aneurysm_candidates * max(len(case.aneurysms), 1))
        + min(int(np.sum(labels == "normal_vessel")), config.negatives_per_case)
    )


def _expected_splits(config, cases, splits):
    return {name: sum(_expected_examples(config, cases[i]) for i in ids) for name, ids in splits.items()}


class MraAneurysmPatchesManualTest(tfds.testing.DatasetBuilderTestCase):
    """manual on dummy_data/: 2 aneurysm cases + 1 without, split 2/3 : 1/3 stratified."""

    DATASET_CLASS = builder_module.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["manual"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        config = CONFIGS["manual"]
        cases = {c.case_id: c for c in cohorts.read_aneurysm_cohort(cls.dummy_data)}
        strata = {k: "aneurysm" if c.aneurysms else "none" for k, c in cases.items()}
        splits = cohorts.split_cases(list(cases), builder_module.MANUAL_SPLIT_FRACTIONS, config.seed, strata)
        cls.SPLITS = _expected_splits(config, cases, splits)


class MraAneurysmPatchesPhantomTinyTest(tfds.testing.DatasetBuilderTestCase):
    """phantom_tiny: 6 phantom cases, exactly 4 train / 2 test; per case 6 normal-vessel patches and
    2 per aneurysm (no candidate positives, so the count follows from aneurysms.csv alone)."""

    DATASET_CLASS = builder_module.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["phantom_tiny"]

    def _download_and_prepare_as_dataset(self, builder):
        # Write the phantom cohort where the builder caches it (so it is generated once), read its
        # aneurysm table and derive the expected example counts before the build runs.
        config = builder.builder_config
        root = builder.phantom_cohort_dir(Path(self.tmp_dir) / "downloads" / "lm_zoo_phantoms")
        cases = {c.case_id: c for c in cohorts.read_aneurysm_cohort(root)}
        strata = {k: "aneurysm" if c.aneurysms else "none" for k, c in cases.items()}
        splits = cohorts.split_exact(list(cases), {"train": config.n_train, "test": config.n_test}, config.seed, strata)
        self.SPLITS = {
            name: sum(config.negatives_per_case + config.samples_per_aneurysm * len(cases[i].aneurysms) for i in ids)
            for name, ids in splits.items()
        }
        super()._download_and_prepare_as_dataset(builder)


if __name__ == "__main__":
    tfds.testing.test_main()
