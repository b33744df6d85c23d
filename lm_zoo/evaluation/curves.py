"""AdaBoost with decision stumps: the whole AUC-vs-weak-learners curve from one fit.

One ``AdaBoostClassifier`` with ``n_estimators=N`` is fitted per backbone and seed;
``staged_decision_function`` on the test patches then yields the ensemble's scores after
1, 2, ..., N stumps, so the curve costs one fit, not N.

What a seed changes: AdaBoost with stumps is deterministic given its training data, so seed ``s``
fits on a **case-level bootstrap of the training cases** (stratified by aneurysm / no aneurysm,
drawn with ``numpy.random.default_rng(s)``), passed as ``sample_weight`` multiplicities. The spread
over seeds is how much the curve depends on which training cases one happened to have. A bootstrap
holds about 63 % distinct cases, so each fit is slightly weaker than one on all training cases.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import AdaBoostClassifier
from sklearn.tree import DecisionTreeClassifier

from lm_zoo.evaluation import statistics
from lm_zoo.evaluation.errors import EvaluationError


def check_learners(max_learners) -> int:
    if isinstance(max_learners, bool) or not isinstance(max_learners, (int, np.integer)) or max_learners < 1:
        raise EvaluationError(f"max_learners (number of weak learners) must be an integer >= 1, got {max_learners!r}")
    return int(max_learners)


def check_seeds(seeds) -> list[int]:
    """Seeds as a list; an int ``n`` means ``range(n)``."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise EvaluationError(f"seeds must be >= 1 (a count) or a list of integer seeds, got {seeds!r}")
        return list(range(int(seeds)))
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, (int, np.integer)) and s >= 0 for s in seeds):
        raise EvaluationError(f"seeds must be a count >= 1 or a non-empty list of integers >= 0, got {seeds!r}")
    return [int(s) for s in seeds]


def training_weights(labels, case_ids, seed: int) -> np.ndarray:
    """Patch weights of seed ``seed``: the multiplicity of each patch's case in a stratified
    case-level bootstrap of the training cases."""
    _, index = statistics.case_index(case_ids)
    n_cases = int(index.max()) + 1
    strata = statistics.case_strata(labels, index, n_cases)
    counts = statistics.case_bootstrap(strata, 1, seed)[0]
    return counts[index].astype(np.float64)


def make_adaboost(max_learners: int, seed: int) -> AdaBoostClassifier:
    return AdaBoostClassifier(
        estimator=DecisionTreeClassifier(max_depth=1),
        n_estimators=max_learners,
        random_state=seed,
    )


def staged_scores(model: AdaBoostClassifier, features, max_learners: int) -> np.ndarray:
    """(max_learners, n) float32 decision values after 1..max_learners stumps.

    AdaBoost stops early when a stump fits the weighted data perfectly (or is no better than
    chance); later learner counts then keep the last ensemble, which is what predicting with a
    larger ``n_estimators`` would give.
    """
    out = np.empty((max_learners, len(features)), dtype=np.float32)
    k = -1
    for k, decision in enumerate(model.staged_decision_function(features)):
        out[k] = decision
    if k < 0:
        raise EvaluationError("AdaBoost fitted no weak learner: the training labels hold a single class")
    out[k + 1 :] = out[k]
    return out


@dataclass(frozen=True)
class FitTask:
    """One AdaBoost fit: a backbone's features under one seed."""

    backbone: str
    seed: int


def fit_staged(train_features, train_labels, train_case_ids, test_features, *, max_learners: int, seed: int) -> np.ndarray:
    """Fit once on seed ``seed``'s training-case bootstrap; (max_learners, n_test) staged scores."""
    weights = training_weights(train_labels, train_case_ids, seed)
    # Cases left out of the resample are dropped rather than given weight 0: AdaBoost takes the
    # log of the weights, and the stumps then sort fewer rows.
    kept = np.flatnonzero(weights)
    model = make_adaboost(max_learners, seed).fit(
        np.asarray(train_features)[kept], np.asarray(train_labels)[kept], sample_weight=weights[kept]
    )
    return staged_scores(model, test_features, max_learners)


def fit_all(features: dict, train_labels, train_case_ids, *, max_learners: int, seeds: list[int], n_jobs: int = -1, progress=None) -> dict:
    """Staged test scores for every backbone and seed, fits run in parallel threads.

    Args:
        features: backbone -> (train_features, test_features).
        progress: optional callable wrapping an iterable (e.g. ``tqdm``) that sees one item per fit.
    Returns:
        backbone -> (S, max_learners, n_test) float32.
    """
    from joblib import Parallel, delayed

    tasks = [FitTask(name, seed) for name in features for seed in seeds]

    def run(task):
        train, test = features[task.backbone]
        return task, fit_staged(train, train_labels, train_case_ids, test, max_learners=max_learners, seed=task.seed)

    # Tree building releases the GIL, so threads use both cores without copying the features.
    results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator_unordered")(delayed(run)(t) for t in tasks)
    if progress is not None:
        results = progress(results, total=len(tasks))
    out = {name: [None] * len(seeds) for name in features}
    for task, scores in results:
        out[task.backbone][seeds.index(task.seed)] = scores
    return {name: np.stack(per_seed) for name, per_seed in out.items()}
