"""Test figures of a finished run: top-1 with a bootstrap CI, top-5 and per-class accuracy."""
from __future__ import annotations

import numpy as np

__all__ = ["classification_metrics"]


def classification_metrics(probs: np.ndarray, labels: np.ndarray, class_names, groups=None) -> dict:
    """Top-1 with a 95 % bootstrap CI (over ``groups``, e.g. cases, when given), top-5, per class."""
    # imported here: lm_zoo.evaluation loads scikit-learn, which rendering a card never needs
    from lm_zoo.evaluation.statistics import bootstrap_ci

    correct = probs.argmax(1) == labels
    top5 = (np.argsort(probs, axis=1)[:, -5:] == labels[:, None]).any(axis=1)
    ci_key = "test_top1_ci95" if groups is None else "test_top1_ci95_case_bootstrap"
    return {
        "test_top1": float(correct.mean()),
        ci_key: bootstrap_ci(correct, groups),
        "test_top5": float(top5.mean()),
        "per_class_accuracy": {
            c: float(correct[labels == i].mean()) for i, c in enumerate(class_names) if np.any(labels == i)
        },
    }
