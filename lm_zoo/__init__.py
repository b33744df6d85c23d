"""lm_zoo: MiniVGG25D and 2.5D patch tools for transfer learning in medical imaging.

The public surface mirrors ``keras.applications``::

    from lm_zoo import MiniVGG25D, preprocess_input, decode_predictions

The model symbols are loaded on first use, so ``import lm_zoo.patches`` (pure NumPy/SimpleITK)
does not pay for importing Keras and TensorFlow.
"""
__version__ = "0.3.0"

__all__ = ["MiniVGG25D", "preprocess_input", "decode_predictions", "__version__"]

_LAZY = {"MiniVGG25D", "preprocess_input", "decode_predictions"}


def __getattr__(name):
    if name in _LAZY:
        from lm_zoo import applications

        return getattr(applications, name)
    raise AttributeError(f"module 'lm_zoo' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
