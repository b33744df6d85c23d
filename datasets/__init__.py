"""TFDS builders of lm_zoo, installed as ``lm_zoo.datasets``.

Importing this package registers every builder, so ``tfds build --imports lm_zoo.datasets NAME``
and ``tfds.load(NAME)`` find them.
"""
