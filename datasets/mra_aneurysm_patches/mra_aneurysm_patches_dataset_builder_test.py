"""TFDS conformance tests of mra_aneurysm_patches: the manual config on dummy_data/ (3 cropped
phantom volumes with aneurysms.csv, see datasets/make_dummy_data.py) and phantom_tiny.

The expected counts are written out, not recomputed with the builder's own functions: a change
to vessel extraction, candidate sampling or the phantom must show up here (update the numbers
together with the builder's VERSION and RELEASE_NOTES).
"""
import tensorflow_datasets as tfds

from lm_zoo.datasets.mra_aneurysm_patches import mra_aneurysm_patches_dataset_builder as builder_module


class MraAneurysmPatchesManualTest(tfds.testing.DatasetBuilderTestCase):
    """manual on dummy_data/: 2 aneurysm cases + 1 without, split 2/3 : 1/3 stratified (train
    mra_a + mra_b, test mra_c); per case 4 patches per aneurysm centre, up to 8 candidates inside
    each aneurysm and up to 40 normal-vessel candidates."""

    DATASET_CLASS = builder_module.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["manual"]
    SPLITS = {"train": 84, "test": 42}


class MraAneurysmPatchesPhantomTinyTest(tfds.testing.DatasetBuilderTestCase):
    """phantom_tiny: 6 phantom cases, exactly 4 train / 2 test; per case 6 normal-vessel patches and
    2 per aneurysm (no candidate positives). Train: cases 0, 3, 4, 5 with 1 + 0 + 1 + 0 aneurysms
    (4 x 6 + 2 x 2 = 28); test: cases 1, 2 with 0 + 1 aneurysms (2 x 6 + 2 x 1 = 14). Counts of the
    calibrated head-MRA phantom (v1.2.0 of the dataset)."""

    DATASET_CLASS = builder_module.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["phantom_tiny"]
    SPLITS = {"train": 28, "test": 14}


if __name__ == "__main__":
    tfds.testing.test_main()
