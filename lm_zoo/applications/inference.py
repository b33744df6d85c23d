"""The one batched forward pass: a Keras model in inference mode over many preprocessed patches.

Every batch has exactly ``batch_size`` rows (the last one is padded with zeros and the padding's
outputs dropped), so the compiled function is traced once per model and batch size, never per
call. Each row's output depends only on that row (inference mode: dropout off, BatchNorm on its
moving statistics), so padding does not change the numbers. On TensorFlow a plain layer chain
(MiniVGG25D, its backbones and cuts) runs with each BatchNorm folded into the layer before it
(``lm_zoo.applications.folding``), which lets oneDNN fuse conv, bias and ReLU. ``jit_compile``
(XLA) is not used: slower than oneDNN on CPU (``benchmarks/inference.py`` measures both).
"""
from __future__ import annotations

import numpy as np

__all__ = ["predict_batched"]

_COMPILED: dict = {}


def _compiled(model):
    """One traced function per model, reused across calls (tracing costs more than a batch); a
    chain's BatchNorms folded into the layers before them (``folding``: fewer passes, same numbers)."""
    import tensorflow as tf

    from lm_zoo.applications.folding import folded_forward

    entry = _COMPILED.get(id(model))
    if entry is None or entry[0] is not model:
        forward = folded_forward(model) or (lambda b: model(b, training=False))
        entry = _COMPILED[id(model)] = (model, tf.function(forward, reduce_retracing=True))
    return entry[1]


def predict_batched(model, x, batch_size: int = 256, progress=None):
    """``model`` in inference mode on preprocessed ``x`` in fixed-size batches; float32 ``(N, ...)``
    (a list of them for a model with several outputs).

    On the TensorFlow backend each batch goes to one compiled ``tf.function`` per model (no
    ``predict`` callback machinery: about twice the throughput on CPU); other backends use
    ``predict_on_batch``. ``progress``: a tqdm-like wrapper of the batch iterator,
    called as ``progress(batches, total=n_batches)``.
    """
    import keras

    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"predict_batched: batch_size must be a positive integer, got {batch_size!r}")
    x = np.asarray(x)
    n = len(x)
    n_batches = -(-n // batch_size)
    # NumPy slices, not a tf.data pipeline: on 2 cores the pipeline's copies and threads compete
    # with the model for the same cores (benchmarks/inference.py: 1.11-1.16x patches/s)
    batches = (_padded(x[i:i + batch_size], batch_size) for i in range(0, n, batch_size))
    run = _compiled(model) if keras.backend.backend() == "tensorflow" else model.predict_on_batch
    if progress is not None:
        batches = progress(batches, total=n_batches)
    out = [_as_list(run(b)) for b in batches]
    several = isinstance(model.output, (list, tuple))
    if not out:
        empty = [np.zeros((0, *o.shape[1:]), np.float32) for o in (model.output if several else [model.output])]
        return empty if several else empty[0]
    arrays = [np.concatenate(parts)[:n].astype(np.float32, copy=False) for parts in zip(*out)]
    return arrays if several else arrays[0]


def _as_list(outputs) -> list:
    import keras

    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [keras.ops.convert_to_numpy(o) for o in outputs]


def _padded(batch: np.ndarray, batch_size: int) -> np.ndarray:
    if len(batch) == batch_size:
        return batch
    return np.concatenate([batch, np.zeros((batch_size - len(batch),) + batch.shape[1:], batch.dtype)])
