"""mra_aneurysm_patches dataset (TFDS builder in mra_aneurysm_patches_dataset_builder.py)."""
