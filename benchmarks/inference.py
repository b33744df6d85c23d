"""MiniVGG25D inference throughput against this CPU's fp32 matmul limit, measured in one run.

Prints, in one process: (a) the fp32 matmul limit (GFLOP/s of a large ``tf.linalg.matmul``,
warm-up then best of several); (b) MiniVGG25D's FLOPs per patch, counted from its Conv2D and
Dense layers (2*k*k*cin*cout*H*W per conv, 2*in*out per dense; BatchNorm, ReLU and pooling are
not counted, so the percentages are of useful multiply-adds); (c) patches/s of
``lm_zoo.applications.predict_batched`` on the shipped ``landmark`` weights as the library calls
it (its default batch size) and of variants: batch size, BatchNorm folded into the layer before it
(``lm_zoo.applications.folding``, the library's path) or run as Keras layers (the path before it),
``jit_compile`` (XLA) on the cached function, NumPy slices instead of the tf.data feed, and a bare compiled call on one fixed tensor (no
input pipeline: the ceiling of the feed). Each variant: patches/s (best and median of the interleaved repeats), GFLOP/s, % of the
matmul limit, and its ratio to the library default measured in the same run. Variants run
interleaved (round-robin) because the machine is shared; the load is printed.

Data: random normal float32 patches (32x32x3, seed 0); the cost of the forward pass does not
depend on the values. Thread and oneDNN settings are fixed when TensorFlow starts, so they are
not variants here (run the script with ``TF_ENABLE_ONEDNN_OPTS=0`` or ``TF_NUM_INTRAOP_THREADS``
set to compare them across runs).

    python benchmarks/inference.py [--patches 8192] [--repeats 5] [--weights landmark] [--only "batch 1024"]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np


def matmul_limit_gflops(n: int = 2048, repeats: int = 8) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    b = tf.random.normal((n, n), dtype=tf.float32)
    tf.linalg.matmul(a, b).numpy()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def flops_per_patch(model) -> int:
    """Multiply-adds x 2 of the Conv2D and Dense layers (the model's compute)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2 * kh * kw * cin * cout * h * w
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            total += 2 * cin * cout
    return int(total)


def _function(model, fold: bool, jit: bool):
    import tensorflow as tf

    from lm_zoo.applications.folding import folded_forward

    forward = folded_forward(model) if fold else (lambda b: model(b, training=False))
    return tf.function(forward, jit_compile=jit)


def variant_runner(model, batch_size: int, fold: bool, jit: bool = False):
    """``predict_batched``'s loop before it fed NumPy slices: a prefetching tf.data pipeline."""
    import tensorflow as tf

    fn = _function(model, fold, jit)

    def batches(x):
        def pad(b):
            b = tf.pad(b, [[0, batch_size - tf.shape(b)[0]]] + [[0, 0]] * (len(x.shape) - 1))
            return tf.ensure_shape(b, (batch_size, *x.shape[1:]))
        return tf.data.Dataset.from_tensor_slices(x).batch(batch_size).map(pad).prefetch(tf.data.AUTOTUNE)

    def run(x):
        out = [fn(b).numpy() for b in batches(x)]
        return np.concatenate(out)[:len(x)]
    return run, fn


def slices_runner(model, batch_size: int, jit: bool = False):
    """The folded function fed by NumPy slices (last one zero-padded): predict_batched's loop."""
    from lm_zoo.applications import inference

    fn = _function(model, True, jit)

    def run(x):
        out = [fn(inference._padded(x[i:i + batch_size], batch_size)).numpy() for i in range(0, len(x), batch_size)]
        return np.concatenate(out)[:len(x)]
    return run, fn


def bare_runner(model, batch_size: int, fold: bool):
    """The compiled call alone, on one resident batch: what the model costs without any feed."""
    import tensorflow as tf

    fn = _function(model, fold, False)

    def run(x):
        batch = tf.constant(x[:batch_size])
        for _ in range(len(x) // batch_size):
            fn(batch).numpy()
        return None
    return run, fn


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--weights", default="landmark")
    parser.add_argument("--only", default="", help="run only variants whose name contains this (the default always runs)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from lm_zoo.applications import MiniVGG25D, inference, predict_batched

    print(f"load before (1/5/15 min): {os.getloadavg()}; cpus: {os.cpu_count()}; "
          f"TF {tf.__version__}, intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}, "
          f"oneDNN opts env {os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}", flush=True)
    model = MiniVGG25D(weights=args.weights)
    flops = flops_per_patch(model)
    x = np.random.default_rng(0).normal(size=(args.patches, *model.input_shape[1:])).astype(np.float32)
    reference = predict_batched(model, x[:1000])
    default_bs = predict_batched.__defaults__[0]

    variants = {f"predict_batched default (batch {default_bs})": (lambda x: predict_batched(model, x), None)}
    for bs in (256, 512, 1024):
        variants[f"batch {bs}, tf.data, BN unfolded (before)"] = variant_runner(model, bs, fold=False)
        variants[f"batch {bs}, tf.data, BN folded"] = variant_runner(model, bs, fold=True)
        variants[f"batch {bs}, tf.data, folded, jit_compile"] = variant_runner(model, bs, fold=True, jit=True)
        variants[f"batch {bs}, NumPy slices, folded"] = slices_runner(model, bs)
        variants[f"batch {bs}, NumPy slices, folded, jit"] = slices_runner(model, bs, jit=True)
    variants["bare call, batch 512, unfolded, no feed"] = bare_runner(model, 512, fold=False)
    variants["bare call, batch 512, folded, no feed"] = bare_runner(model, 512, fold=True)
    default_name = next(iter(variants))
    variants = {k: v for k, v in variants.items() if k == default_name or args.only in k}
    # Warm-up: trace / XLA-compile once per variant; check outputs equal the library's.
    compile_s = {}
    for name, (run, fn) in variants.items():
        t0 = time.perf_counter()
        out = run(x[:1000])
        compile_s[name] = time.perf_counter() - t0
        if out is not None:
            err = float(np.max(np.abs(out - reference)))
            assert err < 1e-4, f"{name}: max |diff| {err} to predict_batched"

    limits, rates = [], {name: [] for name in variants}
    for _ in range(args.repeats):
        limits.append(matmul_limit_gflops())
        for name, (run, _) in variants.items():
            t0 = time.perf_counter()
            run(x)
            rates[name].append(args.patches / (time.perf_counter() - t0))
    limits.append(matmul_limit_gflops())
    limit = max(limits)

    for name, (_, fn) in variants.items():  # the compiled call was traced once, however many batches
        traced = fn.experimental_get_tracing_count() if fn is not None else \
            inference._COMPILED[id(model)][1].experimental_get_tracing_count()
        assert traced == 1, f"{name}: traced {traced} times"

    print(f"\nfp32 matmul limit (2048x2048 tf.linalg.matmul, best of {len(limits)} rounds of 8): "
          f"{limit:.1f} GFLOP/s (rounds: {', '.join(f'{v:.0f}' for v in limits)})")
    print(f"MiniVGG25D FLOPs per patch (Conv2D + Dense): {flops / 1e6:.2f} MFLOP; "
          f"{args.patches} patches x {args.repeats} interleaved repeats")
    base = max(rates[default_name])
    print(f"\n{'variant':<42} {'best p/s':>9} {'median':>8} {'GFLOP/s':>8} {'% limit':>8} "
          f"{'vs default':>10} {'1st call s':>10}")
    for name, r in rates.items():
        best = max(r)
        gf = best * flops / 1e9
        print(f"{name:<42} {best:>9.0f} {statistics.median(r):>8.0f} {gf:>8.1f} {100 * gf / limit:>7.1f}% "
              f"{best / base:>9.2f}x {compile_s[name]:>10.2f}")
    print(f"\nload after (1/5/15 min): {os.getloadavg()}")
    print("each compiled function traced once (asserted); '1st call s' = trace/compile + 1000 patches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
