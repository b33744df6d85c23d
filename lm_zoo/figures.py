"""The one way lm_zoo writes a figure: a matplotlib figure saved atomically as PNG, then closed.

Every PNG the package writes (montages, detection MIPs, evaluation curves) goes through
:func:`save_png`, so none is ever half-written and no figure stays open in a long run.
"""
from __future__ import annotations

from pathlib import Path

from lm_zoo._atomic import atomic_path

__all__ = ["new_figure", "save_png"]


def new_figure(*args, **kwargs):
    """``matplotlib.pyplot.subplots`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_png(fig, path, *, dpi: int = 100, **savefig_kwargs) -> Path:
    """Write ``fig`` to ``path`` as PNG (atomic: written aside, then moved) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", **savefig_kwargs)
    finally:
        plt.close(fig)
    return path
