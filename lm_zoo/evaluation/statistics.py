"""Case-level bootstrap statistics: ROC AUC curves, and the CI of a mean accuracy (:func:`bootstrap_ci`).

Patches of one case are correlated (same vessel tree, same scanner), so every resampling here
draws whole **cases** and keeps all their patches: a resample is a vector of case multiplicities,
and a patch's weight is the multiplicity of its case. Resampling is stratified by whether a case
holds any positive patch, so every resample contains both classes (with 1 aneurysm case in 2 that
is what the method's cohort looks like).

The AUC of many resamples is computed at once from one sort of the scores (see
:func:`weighted_auc`), which makes thousands of replicates x hundreds of learner counts cheap.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from lm_zoo.evaluation.errors import EvaluationError


def case_index(case_ids) -> tuple[np.ndarray, np.ndarray]:
    """``(unique_case_ids, index)``: each patch's position in the sorted unique case ids."""
    unique, index = np.unique(np.asarray(case_ids).astype(str), return_inverse=True)
    return unique, index.astype(np.int64)


def case_strata(labels, index, n_cases: int) -> np.ndarray:
    """True for the cases that hold at least one positive patch."""
    positive = np.zeros(n_cases, dtype=bool)
    positive[index[np.asarray(labels) == 1]] = True
    return positive


def bootstrap_ci(correct, groups=None, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap CI of the mean of ``correct`` (e.g. top-1 accuracy).

    With ``groups`` (e.g. each patch's case) whole groups are resampled, unstratified: a mean needs
    no guarantee that both classes appear, unlike the AUC resamples of :func:`case_bootstrap`.
    """
    correct = np.asarray(correct, float)
    rng = np.random.default_rng(seed)
    if groups is None:
        stats = rng.choice(correct, (n_boot, len(correct))).mean(axis=1)
    else:
        uniq, inv = np.unique(groups, return_inverse=True)
        sums = np.bincount(inv, weights=correct, minlength=len(uniq))
        counts = np.bincount(inv, minlength=len(uniq))
        picks = rng.integers(0, len(uniq), (n_boot, len(uniq)))
        stats = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def case_bootstrap(strata: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples, n_cases)`` int32 case multiplicities of a stratified case bootstrap.

    Within each stratum the resample draws as many cases, with replacement, as the stratum has.
    """
    if n_resamples < 1:
        raise EvaluationError(f"bootstrap resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_resamples, strata.size), dtype=np.int32)
    for stratum in (False, True):
        members = np.flatnonzero(strata == stratum)
        if members.size == 0:
            continue
        counts[:, members] = rng.multinomial(members.size, np.full(members.size, 1 / members.size), size=n_resamples)
    return counts


def weighted_auc(scores, labels, index, multiplicities) -> np.ndarray:
    """ROC AUC of ``scores`` under each row of case ``multiplicities``.

    Ties count one half, as in ``sklearn.metrics.roc_auc_score``; with all multiplicities 1 the
    result equals it. Rows without both classes give NaN.

    Args:
        scores: (n,) decision values; labels: (n,) 0/1; index: (n,) case index of each patch.
        multiplicities: (B, n_cases) weight of each case in each resample.
    Returns:
        (B,) float64.
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    multiplicities = np.atleast_2d(np.asarray(multiplicities, dtype=np.float64))
    n_cases = multiplicities.shape[1]
    _, group = np.unique(scores, return_inverse=True)
    n_groups = int(group.max()) + 1 if group.size else 0

    def per_group(mask):
        # (n_cases, n_groups) patch counts; M @ A gives each resample's weight per score group.
        counts = sparse.csr_matrix(
            (np.ones(int(mask.sum())), (index[mask], group[mask])), shape=(n_cases, n_groups)
        )
        return np.asarray((counts.T @ multiplicities.T).T)

    pos = per_group(labels == 1)
    neg = per_group(labels != 1)
    neg_below = np.cumsum(neg, axis=1) - neg
    numerator = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    denominator = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


@dataclass(frozen=True)
class CurveStats:
    """AUC per learner count for one backbone: point estimate and bootstrap replicates."""

    auc: np.ndarray  # (K,) mean over seeds of the AUC on the full test set
    per_seed: np.ndarray  # (S, K)
    replicates: np.ndarray  # (B, K)

    def interval(self, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        return percentile_interval(self.replicates, alpha)


def percentile_interval(replicates: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    low, high = np.nanpercentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    return low, high


def replicate_seeds(n_resamples: int, n_seeds: int) -> np.ndarray:
    """Which seed's fit each bootstrap replicate uses: balanced, so the bands carry the
    fit-to-fit (training-case) variation as well as the test-case variation."""
    return np.arange(n_resamples) % n_seeds


def curve_stats(staged_scores, labels, index, multiplicities, seed_of_replicate) -> CurveStats:
    """AUC curve with bootstrap replicates.

    Args:
        staged_scores: (S, K, n) test decision values for S seeds and K learner counts.
        labels, index: (n,) test labels and case index.
        multiplicities: (B, n_cases) test-case resamples (shared across backbones: paired).
        seed_of_replicate: (B,) the seed whose fit each replicate scores.
    """
    staged_scores = np.asarray(staged_scores)
    n_seeds, n_counts, _ = staged_scores.shape
    full = np.ones((1, multiplicities.shape[1]))
    per_seed = np.empty((n_seeds, n_counts))
    replicates = np.empty((multiplicities.shape[0], n_counts))
    for s in range(n_seeds):
        rows = np.flatnonzero(seed_of_replicate == s)
        stacked = np.vstack([full, multiplicities[rows]])
        for k in range(n_counts):
            aucs = weighted_auc(staged_scores[s, k], labels, index, stacked)
            per_seed[s, k] = aucs[0]
            replicates[rows, k] = aucs[1:]
    return CurveStats(auc=per_seed.mean(axis=0), per_seed=per_seed, replicates=replicates)


@dataclass(frozen=True)
class Difference:
    """Paired difference ``a - b`` of two backbones' AUC curves at each learner count."""

    a: str
    b: str
    delta: np.ndarray  # (K,)
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray  # (K,) two-sided bootstrap p-value

    def significant(self, alpha: float = 0.05) -> np.ndarray:
        return self.p_value < alpha


def paired_difference(a: str, stats_a: CurveStats, b: str, stats_b: CurveStats, alpha: float = 0.05) -> Difference:
    """Paired bootstrap test: both curves were scored on the same test-case resamples and seeds.

    The p-value is the two-sided bootstrap p: twice the smaller share of replicate differences on
    either side of zero, with the usual +1 correction so it is never exactly 0.
    """
    diff = stats_a.replicates - stats_b.replicates
    valid = ~np.isnan(diff)
    n = valid.sum(axis=0)
    below = ((diff <= 0) & valid).sum(axis=0)
    above = ((diff >= 0) & valid).sum(axis=0)
    p = np.minimum(1.0, 2 * (np.minimum(below, above) + 1) / (n + 1))
    low, high = percentile_interval(diff, alpha)
    return Difference(a=a, b=b, delta=stats_a.auc - stats_b.auc, ci_low=low, ci_high=high, p_value=p)


def runs(mask: np.ndarray, values: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of True in ``mask`` as ``(values[first], values[last])`` pairs."""
    out = []
    start = None
    for i, flag in enumerate(mask):
        if flag and start is None:
            start = i
        if not flag and start is not None:
            out.append((int(values[start]), int(values[i - 1])))
            start = None
    if start is not None:
        out.append((int(values[start]), int(values[len(mask) - 1])))
    return out
