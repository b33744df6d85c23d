"""lm_zoo.evaluation on synthetic features where the answer is known (test budget ~60 s in all,
with tests/test_evaluation_end_to_end.py)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lm_zoo.evaluation import EvaluationConfig, EvaluationError, backbones, compare_features, curves, evaluate, statistics


def cohort(n_cases, patches_per_case, seed, *, positive_rate=0.3):
    """Half the cases hold aneurysm patches; labels, case ids and a latent 'truth' signal."""
    rng = np.random.default_rng(seed)
    case_ids = np.repeat([f"s{seed}_case{i:03d}" for i in range(n_cases)], patches_per_case)
    has_aneurysm = np.repeat(np.arange(n_cases) % 2 == 0, patches_per_case)
    labels = ((rng.random(case_ids.size) < positive_rate) & has_aneurysm).astype(np.int64)
    return labels, case_ids


def features(labels, signal, n_features, seed):
    """Gaussian features; the first 3 are shifted by ``signal`` for positives (0 = pure noise)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(labels.size, n_features)).astype(np.float32)
    x[:, :3] += signal * labels[:, None]
    return x


@pytest.fixture(scope="module")
def synthetic():
    train_y, train_c = cohort(40, 20, seed=1)
    test_y, test_c = cohort(30, 20, seed=2)
    return train_y, train_c, test_y, test_c


def run_compare(synthetic, signals, *, max_learners=20, seeds=2, bootstrap=400):
    train_y, train_c, test_y, test_c = synthetic
    feats = {
        name: (features(train_y, s, 10, seed=10 + i), features(test_y, s, 10, seed=20 + i))
        for i, (name, s) in enumerate(signals.items())
    }
    return compare_features(feats, train_y, train_c, test_y, test_c, max_learners=max_learners,
                            seeds=seeds, bootstrap=bootstrap, seed=0, n_jobs=2)


# --- AUC under case resampling -------------------------------------------------------------


def test_weighted_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + labels, 1)  # rounding makes many ties
    _, index = statistics.case_index(np.repeat(np.arange(30), 10))
    got = statistics.weighted_auc(scores, labels, index, np.ones((1, 30)))[0]
    assert got == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_weighted_auc_equals_auc_of_the_duplicated_cases():
    rng = np.random.default_rng(1)
    labels, case_ids = cohort(20, 15, seed=3)
    scores = rng.normal(size=labels.size) + labels
    _, index = statistics.case_index(case_ids)
    resamples = statistics.case_bootstrap(statistics.case_strata(labels, index, 20), 5, seed=4)
    got = statistics.weighted_auc(scores, labels, index, resamples)
    for row, counts in enumerate(resamples):
        rows = np.concatenate([np.flatnonzero(index == c) for c in range(20) for _ in range(counts[c])])
        assert got[row] == pytest.approx(roc_auc_score(labels[rows], scores[rows]), abs=1e-12)


def test_bootstrap_draws_whole_cases_within_strata():
    strata = np.array([True] * 7 + [False] * 13)
    counts = statistics.case_bootstrap(strata, 500, seed=0)
    assert counts.shape == (500, 20)
    assert (counts[:, strata].sum(axis=1) == 7).all() and (counts[:, ~strata].sum(axis=1) == 13).all()
    assert (counts == 0).any() and (counts > 1).any()  # with replacement
    assert np.array_equal(counts, statistics.case_bootstrap(strata, 500, seed=0))
    assert not np.array_equal(counts, statistics.case_bootstrap(strata, 500, seed=1))


def test_bands_do_not_shrink_when_cases_have_more_patches():
    """Copies of a case's patches carry no new information: a case bootstrap gives the same band
    for 1 and for 25 identical patches per case (a patch bootstrap would shrink it ~5x)."""
    labels1, cases1 = cohort(40, 1, seed=5, positive_rate=1.0)
    rng = np.random.default_rng(6)
    scores1 = rng.normal(size=labels1.size) + labels1
    widths = []
    for copies in (1, 25):
        labels, cases, scores = (np.repeat(a, copies) for a in (labels1, cases1, scores1))
        _, index = statistics.case_index(cases)
        resamples = statistics.case_bootstrap(statistics.case_strata(labels, index, 40), 2000, seed=7)
        stats = statistics.curve_stats(scores[None, None], labels, index, resamples, np.zeros(2000, int))
        low, high = stats.interval()
        widths.append(high[0] - low[0])
    assert widths[1] == pytest.approx(widths[0], rel=1e-9)
    assert widths[0] > 0.1


# --- the curves and the significance call --------------------------------------------------


def test_informative_features_beat_noise_and_the_difference_is_flagged(synthetic):
    learners, stats, diffs = run_compare(synthetic, {"strong": 1.5, "weak": 0.6, "noise": 0.0})
    assert list(learners) == list(range(1, 21))
    strong, weak, noise = (stats[n].auc for n in ("strong", "weak", "noise"))
    late = learners >= 5
    assert (strong[late] > weak[late]).all() and (weak[late] > noise[late]).all()
    assert strong[-1] > 0.85
    assert abs(noise[-1] - 0.5) < 0.1
    low, high = stats["noise"].interval()
    assert (low <= 0.5).all() and (high >= 0.5).all()  # noise: the band covers chance everywhere
    by_pair = {(d.a, d.b): d for d in diffs}
    assert set(by_pair) == {("strong", "weak"), ("strong", "noise"), ("weak", "noise")}
    d = by_pair[("strong", "noise")]
    assert d.significant().all() and (d.delta > 0).all() and (d.ci_low > 0).all()


def test_significance_is_signed_and_equal_backbones_are_not_flagged(synthetic):
    # Enough seeds that the replicates carry the fit-to-fit variation: with 2 seeds the test is
    # conditional on two particular fits and can flag two equally strong backbones.
    _, stats, diffs = run_compare(synthetic, {"noise": 0.0, "strong": 1.5, "same_strength": 1.5}, seeds=10)
    by_pair = {(d.a, d.b): d for d in diffs}
    worse = by_pair[("noise", "strong")]
    assert worse.significant().all() and (worse.delta < 0).all() and (worse.ci_high < 0).all()
    equal = by_pair[("strong", "same_strength")]
    assert equal.significant().mean() <= 0.1
    assert (equal.ci_low < 0).mean() >= 0.9 and (equal.ci_high > 0).mean() >= 0.9


def test_staged_curve_matches_separate_fits(synthetic):
    """One staged fit gives the AUC that a fit with exactly k stumps gives."""
    train_y, train_c, test_y, test_c = synthetic
    xtr, xte = features(train_y, 0.8, 6, seed=30), features(test_y, 0.8, 6, seed=31)
    staged = curves.fit_staged(xtr, train_y, train_c, xte, max_learners=8, seed=3)
    weights = curves.training_weights(train_y, train_c, seed=3)
    kept = weights > 0
    for k in (1, 4, 8):
        model = curves.make_adaboost(k, 3).fit(xtr[kept], train_y[kept], sample_weight=weights[kept])
        assert roc_auc_score(test_y, staged[k - 1]) == pytest.approx(roc_auc_score(test_y, model.decision_function(xte)))


def test_seeds_resample_training_cases(synthetic):
    train_y, train_c, _, _ = synthetic
    w0, w1 = (curves.training_weights(train_y, train_c, seed=s) for s in (0, 1))
    assert not np.array_equal(w0, w1)
    assert np.array_equal(w0, curves.training_weights(train_y, train_c, seed=0))
    for w in (w0, w1):  # whole cases: one weight per case
        for case in np.unique(train_c):
            assert np.unique(w[train_c == case]).size == 1
        assert w.sum() == train_y.size  # as many cases drawn as there are


def test_early_stopped_adaboost_keeps_its_last_ensemble():
    x = np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    y = np.array([0, 0, 1, 1])
    model = curves.make_adaboost(10, 0).fit(x, y)  # one stump separates perfectly: stops at 1
    scores = curves.staged_scores(model, x, 10)
    assert scores.shape == (10, 4)
    assert (scores == scores[0]).all() and roc_auc_score(y, scores[-1]) == 1.0


# --- bad arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_learner_count_must_be_positive_integer(synthetic, bad):
    with pytest.raises(EvaluationError, match="max_learners"):
        run_compare(synthetic, {"a": 1.0}, max_learners=bad)


@pytest.mark.parametrize("field, value, match", [
    ("max_learners", 0, "max_learners"),
    ("seeds", 0, "seeds"),
    ("bootstrap", 0, "bootstrap"),
    ("finetune_epochs", 0, "finetune_epochs"),
    ("backbones", ("landmark", "imagenet"), "unknown backbone 'imagenet'.*landmark, cifar, random"),
    ("backbones", ("random", "random"), "given twice"),
    ("backbones", (), "no backbone"),
])
def test_bad_configuration_fails_before_any_work(tmp_path, field, value, match):
    config = EvaluationConfig(output=str(tmp_path / "out"), **{field: value})
    with pytest.raises(EvaluationError, match=match):
        evaluate(config, progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / "mine.weights.h5"
    with pytest.raises(FileNotFoundError, match="mine.weights.h5"):
        backbones.resolve(str(missing))


def test_cli_rejects_bad_arguments(capsys, tmp_path):
    from lm_zoo.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--max-learners", "0"])
    assert exc.value.code == 2
    assert "--max-learners must be an integer >= 1" in capsys.readouterr().err
    assert main(["evaluate", "--backbones", "landmark,vgg16", "--output", str(tmp_path / "o")]) == 2
    assert "unknown backbone 'vgg16'" in capsys.readouterr().err
    missing = tmp_path / "no_cohort"
    assert main(["evaluate", "--manual-dir", str(missing), "--backbones", "random", "--output", str(tmp_path / "o")]) == 2
    assert f"manual_dir {str(missing)!r} is not a folder" in capsys.readouterr().err


def test_cli_defaults_equal_the_library_defaults():
    """The command spells its defaults out (no heavy import for --help); they must not drift."""
    import argparse

    from lm_zoo.commands import evaluate as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([])
    lib = EvaluationConfig()
    assert tuple(args.backbones.split(",")) == lib.backbones
    assert (args.layer, args.max_learners, args.seeds, args.bootstrap, args.finetune_epochs, args.batch_size,
            args.seed, args.out) == (lib.layer, lib.max_learners, lib.seeds, lib.bootstrap, lib.finetune_epochs,
                                        lib.batch_size, lib.seed, lib.output)
    assert args.dataset is None and lib.dataset == "mra_aneurysm_patches/phantom"


def test_test_patches_copied_from_training_are_counted_per_class():
    from lm_zoo.evaluation.data import PatchSplit, repeated_in_train

    rng = np.random.default_rng(0)
    train = rng.normal(size=(6, 4, 4, 3)).astype(np.float32)
    near = train[2].copy()
    near[0, 0, 0] += 1e-3  # nearly equal is not a copy
    test = np.stack([train[0], train[1], rng.normal(size=(4, 4, 3)), near, train[4], rng.normal(size=(4, 4, 3))]).astype(np.float32)

    def split(x, labels):
        return PatchSplit(x, np.array(labels), np.array([f"c{i}" for i in range(len(x))]), np.full(len(x), ""))

    assert repeated_in_train(split(train, [0, 0, 0, 1, 1, 1]), split(test, [0, 0, 0, 0, 1, 1])) == (0.5, 0.5)
    assert repeated_in_train(split(train, [0] * 6), split(test[2:3], [1])) == (0.0, 0.0)


def test_plot_labels_every_band_and_draws_each_difference_of_the_first_backbone(synthetic):
    """auc_vs_weak_learners.png: a legend entry per curve and per band in both panels; the ΔAUC
    panel draws the first backbone against each other one (not the pairs without it)."""
    from lm_zoo.evaluation import plots

    learners, stats, diffs = run_compare(synthetic, {"landmark": 1.5, "cifar": 0.6, "random": 0.0}, max_learners=5,
                                         seeds=1, bootstrap=50)
    curves_for_plot = {n: (s.auc, *s.interval()) for n, s in stats.items()}
    fig = plots.curves_figure(learners, curves_for_plot, diffs, title="t")
    top, bottom = ([t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes)
    for name in ("landmark", "cifar", "random"):
        assert f"{name} features" in top and f"{name}: 95% bootstrap band" in top
    for other in ("cifar", "random"):
        assert f"ΔAUC landmark − {other}" in bottom and f"landmark − {other}: 95% paired bootstrap band" in bottom
    assert not any("cifar − random" in text for text in bottom)
    # each curve has its own line style, so the curves stay apart in grey print
    styles = [line.get_linestyle() for line in fig.axes[1].get_lines() if line.get_label().startswith("ΔAUC")]
    assert len(set(styles)) == 2
    low, high = fig.axes[1].get_ylim()
    assert low < 0 < high, "the zero line of the differences stays in view"
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_predict_batched_returns_every_output_of_a_model_with_several():
    """The fine-tuning's probe (batch-norm inputs + scores) runs through predict_batched: each
    output comes back whole, equal to that output alone, padding dropped."""
    keras = pytest.importorskip("keras")
    from lm_zoo.applications.inference import predict_batched

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    out = keras.layers.Dense(1, name="out")(keras.layers.ReLU()(hidden))
    both = keras.Model(inputs, [hidden, out])
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    got = predict_batched(both, x, batch_size=4)
    assert isinstance(got, list) and [g.shape for g in got] == [(7, 3), (7, 1)]
    np.testing.assert_array_equal(got[1], predict_batched(keras.Model(inputs, out), x, batch_size=4))
    assert [g.shape for g in predict_batched(both, x[:0], batch_size=4)] == [(0, 3), (0, 1)]
