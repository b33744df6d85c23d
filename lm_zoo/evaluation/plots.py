"""The comparison plot: test ROC AUC vs number of weak learners, with 95 % bands."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lm_zoo.figures import new_figure, save_png

COLORS = {"landmark": "tab:red", "cifar": "tab:blue", "random": "tab:gray"}


def plot_curves(path, learners, curves: dict, difference=None, *, title: str, alpha: float = 0.05) -> Path:
    """Write the PNG atomically.

    Args:
        learners: (K,) learner counts.
        curves: backbone -> (auc, ci_low, ci_high), each (K,).
        difference: optional ``statistics.Difference`` drawn in a lower panel with its
            significant learner counts shaded.
    """
    rows = 2 if difference is not None else 1
    fig, axes = new_figure(rows, 1, figsize=(8, 4.2 * rows), sharex=True, squeeze=False)
    ax = axes[0, 0]
    level = int(round(100 * (1 - alpha)))
    for i, (name, (auc, low, high)) in enumerate(curves.items()):
        color = COLORS.get(name, f"C{i + 3}")
        ax.plot(learners, auc, color=color, label=f"{name} features")
        ax.fill_between(learners, low, high, color=color, alpha=0.2, linewidth=0)
    ax.axhline(0.5, color="black", linestyle=":", linewidth=0.8)
    ax.set_ylabel("test ROC AUC")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", title=f"shaded: {level}% bootstrap band", fontsize=8, title_fontsize=8)
    ax.grid(alpha=0.3)
    if difference is not None:
        ax = axes[1, 0]
        ax.plot(learners, difference.delta, color="black", label=f"ΔAUC {difference.a} − {difference.b}")
        ax.fill_between(learners, difference.ci_low, difference.ci_high, color="black", alpha=0.15, linewidth=0)
        ax.axhline(0.0, color="black", linestyle=":", linewidth=0.8)
        from lm_zoo.evaluation.statistics import runs

        # Spans of +-half a learner, so a single significant count is visible too.
        for i, (first, last) in enumerate(runs(difference.significant(alpha), np.asarray(learners))):
            ax.axvspan(first - 0.5, last + 0.5, color="gold", alpha=0.35, linewidth=0,
                       label=f"p < {alpha:g} (paired case bootstrap)" if i == 0 else None)
        ax.set_ylabel("ΔAUC")
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("number of weak learners (decision stumps)")
    if len(learners) > 1 and np.max(learners) >= 20:
        from matplotlib.ticker import FormatStrFormatter

        axes[-1, 0].set_xscale("log")
        axes[-1, 0].xaxis.set_major_formatter(FormatStrFormatter("%g"))
        axes[-1, 0].set_xlim(0.8, np.max(learners) * 1.1)
    fig.tight_layout()
    return save_png(fig, Path(path), dpi=120)
