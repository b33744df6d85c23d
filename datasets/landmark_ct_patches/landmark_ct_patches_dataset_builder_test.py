"""TFDS conformance tests of landmark_ct_patches: the manual config on dummy_data/ (a fake 3-case
cohort, see datasets/make_dummy_data.py) and phantom_tiny (generated phantom cases)."""
import tensorflow_datasets as tfds

from lm_zoo.datasets.landmark_ct_patches import landmark_ct_patches_dataset_builder


class LandmarkCtPatchesManualTest(tfds.testing.DatasetBuilderTestCase):
    """manual on dummy_data/: 3 cases split 1/1/1; per case 3 landmarks x 4 samples + 40 negatives."""

    DATASET_CLASS = landmark_ct_patches_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["manual"]
    SPLITS = {"train": 52, "validation": 52, "test": 52}


class LandmarkCtPatchesPhantomTinyTest(tfds.testing.DatasetBuilderTestCase):
    """phantom_tiny: 5 cases split 3/1/1; per case the 20 LM20 landmarks x 1 sample + 4 negatives."""

    DATASET_CLASS = landmark_ct_patches_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["phantom_tiny"]
    SPLITS = {"train": 3 * 24, "validation": 24, "test": 24}


if __name__ == "__main__":
    tfds.testing.test_main()
