"""landmark_ct_patches dataset (TFDS builder in landmark_ct_patches_dataset_builder.py)."""
