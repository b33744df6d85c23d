"""Time of each stage of the transfer comparison, with same-run baselines.

1. feature extraction: ``lm_zoo.features.forward`` (tf.data, compiled forward) vs the
   model's plain ``predict`` on the same patches -> throughput ratio;
2. AdaBoost: one fit of N stumps + staged scores (the whole curve) vs N separate fits of 1..N
   stumps at a few sampled counts, extrapolated -> ratio;
3. bootstrap: the vectorised case-level AUC of B resamples x N counts vs ``roc_auc_score`` on
   explicitly duplicated patches (a subsample, extrapolated) -> ratio;
4. optionally (``--full``) ``lm_zoo.evaluation.evaluate`` end to end, printing its stage timings.

Data: by default synthetic patches/features shaped like ``mra_aneurysm_patches/phantom``
(5,000 training / 2,500 test patches, 100 / 50 cases; phantom-like, not real data). ``--dataset``
uses a real TFDS dataset's patches instead (say which in any figure you quote).

    python benchmarks/evaluation.py [--learners 200] [--bootstrap 1000] [--dataset NAME] [--full]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def synthetic(n_cases, per_case, seed):
    rng = np.random.default_rng(seed)
    case_ids = np.repeat([f"case{seed}_{i:03d}" for i in range(n_cases)], per_case)
    labels = ((rng.random(case_ids.size) < 0.2) & np.repeat(np.arange(n_cases) % 2 == 0, per_case)).astype(np.int64)
    patches = rng.random((case_ids.size, 32, 32, 3), dtype=np.float32)
    patches[labels == 1, 12:20, 12:20] += 0.5
    return patches, labels, case_ids


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--backbone", default="random", help="backbone for stages 1-3 (default: random)")
    parser.add_argument("--dataset", default=None, help="TFDS dataset for the patches (default: synthetic)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--full", action="store_true", help="also run evaluate() end to end on --dataset")
    parser.add_argument("--output", default="/tmp/lm_zoo_evaluation_benchmark")
    args = parser.parse_args(argv)

    from sklearn.metrics import roc_auc_score

    from lm_zoo.evaluation import backbones as bb
    from lm_zoo.evaluation import curves, data, statistics

    if args.dataset:
        d, t = timed(data.load, args.dataset, args.data_dir)
        print(f"load {args.dataset} ({d.provenance} data): {t:.1f} s")
        train = (d.train.patches, d.train.labels, d.train.case_ids)
        test = (d.test.patches, d.test.labels, d.test.case_ids)
        source = f"{args.dataset} ({d.provenance})"
    else:
        train, test = synthetic(100, 50, seed=0), synthetic(50, 50, seed=1)
        source = "synthetic patches shaped like mra_aneurysm_patches/phantom"
    print(f"data: {source}; train {len(train[1])} patches, test {len(test[1])} patches")

    # 1. feature extraction
    from lm_zoo.features import forward

    backbone = bb.resolve(args.backbone)
    model = bb.feature_extractor(backbone, batch_size=512).model_
    x = bb.preprocess(np.concatenate([train[0], test[0]]), backbone)
    # Both warm (tracing is not throughput), then best of 3 alternating runs: the machine is shared.
    forward(model, x, 512)
    model.predict(x, batch_size=512, verbose=0)
    t_ours = t_predict = np.inf
    for _ in range(3):
        feats, t = timed(forward, model, x, 512)
        t_ours = min(t_ours, t)
        ref, t = timed(model.predict, x, batch_size=512, verbose=0)
        t_predict = min(t_predict, t)
    np.testing.assert_allclose(feats, ref.reshape(len(ref), -1), rtol=1e-4, atol=1e-5)
    print(f"[1] features ({args.backbone}, fc1_relu, {len(x)} patches): tf.data {len(x) / t_ours:.0f} patches/s, "
          f"predict {len(x) / t_predict:.0f} patches/s -> ratio {t_predict / t_ours:.2f}x")
    ftrain, ftest = feats[: len(train[1])], feats[len(train[1]):]

    # 2. AdaBoost: one staged fit vs separate fits
    n = args.learners
    staged, t_staged = timed(curves.fit_staged, ftrain, train[1], train[2], ftest, max_learners=n, seed=0)
    weights = curves.training_weights(train[1], train[2], 0)
    kept = weights > 0
    sampled = sorted({1, max(1, n // 4), max(1, n // 2)})
    t_sep = 0.0
    for k in sampled:
        model_k, t = timed(curves.make_adaboost(k, 0).fit, ftrain[kept], train[1][kept], sample_weight=weights[kept])
        t_sep += t
        assert np.isclose(roc_auc_score(test[1], model_k.decision_function(ftest)), roc_auc_score(test[1], staged[k - 1]))
    # Fit time grows linearly with the number of stumps: sum over k=1..n of (mean per-stump time * k).
    per_stump = t_sep / sum(sampled)
    t_all_separate = per_stump * n * (n + 1) / 2
    print(f"[2] AdaBoost, {n} stumps on {int(kept.sum())} x {ftrain.shape[1]} features: one staged fit "
          f"{t_staged:.1f} s; separate fits for every count ~{t_all_separate:.0f} s (extrapolated) -> "
          f"ratio {t_all_separate / t_staged:.0f}x")

    # 3. bootstrap AUC
    _, index = statistics.case_index(test[2])
    n_cases = int(index.max()) + 1
    resamples = statistics.case_bootstrap(statistics.case_strata(test[1], index, n_cases), args.bootstrap, 0)
    stats, t_boot = timed(statistics.curve_stats, staged[None], test[1], index, resamples,
                          statistics.replicate_seeds(args.bootstrap, 1))
    n_ref = 20
    start = time.perf_counter()
    for b in range(n_ref):
        rows = np.repeat(np.arange(len(index)), resamples[b][index])
        ref_auc = roc_auc_score(test[1][rows], staged[n - 1][rows])
    t_ref = (time.perf_counter() - start) / n_ref * args.bootstrap * n
    assert np.isclose(ref_auc, stats.replicates[n_ref - 1, n - 1])
    print(f"[3] bootstrap, {args.bootstrap} case resamples x {n} counts: vectorised {t_boot:.1f} s; "
          f"roc_auc_score on duplicated patches ~{t_ref:.0f} s (extrapolated from {n_ref}) -> ratio {t_ref / t_boot:.0f}x")

    if args.full:
        from lm_zoo.evaluation import EvaluationConfig, evaluate

        if not args.dataset:
            parser.error("--full needs --dataset")
        config = EvaluationConfig(dataset=args.dataset, data_dir=args.data_dir, output=args.output,
                                  max_learners=n, bootstrap=args.bootstrap)
        result, t = timed(evaluate, config, progress=False)
        print(f"[4] evaluate() end to end on {args.dataset} ({result.dataset['provenance']} data): {t:.1f} s")
        for stage, seconds in result.timings.items():
            print(f"    {stage:<18} {seconds:7.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
