"""The comparison plot: test ROC AUC vs number of weak learners, with 95 % bands, and the paired
differences of the first backbone to each other one (ΔAUC) in a lower panel.

Colours are the Okabe-Ito colour-blind-safe palette; each curve also has its own line style and
each band a hatch and edge lines in that style, so curves and bands stay apart where bands
overlap and in grey print. Every line and every band has a legend entry.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lm_zoo.figures import new_figure, save_png

# backbone -> (colour, line style, band hatch)
STYLES = {"landmark": ("#D55E00", "-", "//"), "cifar": ("#0072B2", "--", "\\\\"), "random": ("#555555", ":", "..")}
# further backbones and the differences, in order
EXTRA_STYLES = [("#009E73", "-.", "xx"), ("#CC79A7", (0, (5, 1, 1, 1)), "++"), ("#E69F00", (0, (1, 1)), "oo"),
                ("#56B4E9", (0, (3, 1, 1, 1, 1, 1)), "--")]
DIFFERENCE_STYLES = [("#000000", "-", "//"), ("#CC79A7", "--", "\\\\"), ("#009E73", "-.", "xx"), ("#E69F00", ":", "..")]


def plot_curves(path, learners, curves: dict, differences=None, *, title: str, alpha: float = 0.05) -> Path:
    """Write the PNG atomically (see :func:`curves_figure` for the arguments)."""
    fig = curves_figure(learners, curves, differences, title=title, alpha=alpha)
    return save_png(fig, Path(path), dpi=120)


def curves_figure(learners, curves: dict, differences=None, *, title: str, alpha: float = 0.05):
    """The figure of :func:`plot_curves`, not yet saved.

    Args:
        learners: (K,) learner counts.
        curves: backbone -> (auc, ci_low, ci_high), each (K,).
        differences: ``statistics.Difference`` or a sequence of them; those of the first
            backbone against the others (landmark − cifar, landmark − random) are drawn in a lower
            ΔAUC panel, the first with its significant learner counts shaded.
    """
    if differences is not None and not isinstance(differences, (list, tuple)):
        differences = [differences]
    first = next(iter(curves), None)
    differences = [d for d in differences or [] if d.a == first] or list(differences or [])[:1]
    rows = 2 if differences else 1
    fig, axes = new_figure(rows, 1, figsize=(8, 4.2 * rows), sharex=True, squeeze=False)
    level = int(round(100 * (1 - alpha)))
    ax = axes[0, 0]
    extra = iter(EXTRA_STYLES * 4)
    for name, (auc, low, high) in curves.items():
        style = STYLES.get(name) or next(extra)
        _line_with_band(ax, learners, auc, low, high, style, f"{name} features", f"{name}: {level}% bootstrap band")
    ax.axhline(0.5, color="black", linestyle=":", linewidth=0.8)
    ax.set_ylabel("test ROC AUC")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="best", fontsize=7, ncol=2, framealpha=0.9)
    ax.grid(alpha=0.3)
    if differences:
        _difference_panel(axes[1, 0], learners, differences, alpha, level)
    axes[-1, 0].set_xlabel("number of weak learners (decision stumps)")
    if len(learners) > 1 and np.max(learners) >= 20:
        from matplotlib.ticker import FormatStrFormatter

        axes[-1, 0].set_xscale("log")
        axes[-1, 0].xaxis.set_major_formatter(FormatStrFormatter("%g"))
        axes[-1, 0].set_xlim(0.8, np.max(learners) * 1.1)
    fig.tight_layout()
    return fig


def _line_with_band(ax, x, y, low, high, style, line_label: str, band_label: str) -> None:
    """A curve over its band: a light fill with a hatch and thin edge lines in the curve's colour
    and style, so two overlapping bands stay readable."""
    color, linestyle, hatch = style
    ax.fill_between(x, low, high, facecolor=color, alpha=0.15, edgecolor=color, hatch=hatch, linewidth=0,
                    label=band_label)
    for edge in (low, high):
        ax.plot(x, edge, color=color, linestyle=linestyle, linewidth=0.6, alpha=0.7)
    ax.plot(x, y, color=color, linestyle=linestyle, linewidth=1.8, label=line_label)


def _difference_panel(ax, learners, differences, alpha: float, level: int) -> None:
    from lm_zoo.evaluation.statistics import runs

    styles = DIFFERENCE_STYLES * 4
    for d, style in zip(differences, styles):
        _line_with_band(ax, learners, d.delta, d.ci_low, d.ci_high, style, f"ΔAUC {d.a} − {d.b}",
                        f"{d.a} − {d.b}: {level}% paired bootstrap band")
    ax.axhline(0.0, color="black", linestyle=":", linewidth=0.8)  # before the limits: zero stays in view
    # Significant learner counts as a strip along the bottom, one row per difference, below the
    # data so the bands are not tinted; spans of +-half a learner show a single count too.
    strip = 0.045
    low, high = ax.get_ylim()
    reserved = strip * len(differences) + 0.02
    ax.set_ylim(low - (high - low) * reserved / (1 - reserved), high)
    for i, (d, style) in enumerate(zip(differences, styles)):
        for j, (first, last) in enumerate(runs(d.significant(alpha), np.asarray(learners))):
            ax.axvspan(first - 0.5, last + 0.5, ymin=0.01 + strip * i, ymax=strip * (i + 1), color=style[0],
                       alpha=0.6, linewidth=0,
                       label=f"{d.a} − {d.b}: p < {alpha:g} (paired case bootstrap)" if j == 0 else None)
    ax.set_ylabel("ΔAUC")
    ax.legend(loc="best", fontsize=7, framealpha=0.9)
    ax.grid(alpha=0.3)
