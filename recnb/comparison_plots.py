"""The figures of the final comparison (notebook 08 and ``python -m recnb compare``).

Like the other plot modules, each function takes plain tables (from
:mod:`recnb.comparison`), draws, and returns the Axes without showing it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter

from .plots import PALETTE, axes_or_new

#: SASRec is drawn in its own colour in every comparison figure; the baselines share a grey-blue.
HIGHLIGHT, BASELINE_COLOR, REFERENCE_COLOR = PALETTE[3], PALETTE[0], (0.35, 0.35, 0.35)


def _bar_colors(names) -> list:
    return [HIGHLIGHT if str(n).startswith("SASRec") else BASELINE_COLOR for n in names]


def plot_comparison_chart(table: pd.DataFrame, metric: str = "HR@10",
                          references: Mapping[str, float] | None = None, ax=None, title: str | None = None):
    """One bar per model (rows of ``table``), its ``metric`` written on it; dashed lines for ``references``.

    This is the series' headline figure (``assets/baseline_comparison.png``).
    """
    values = table[metric].astype(float)
    ax = axes_or_new(ax, (8.5, 4.6))
    x = np.arange(len(values))
    bars = ax.bar(x, values.to_numpy(), color=_bar_colors(values.index), width=0.65)
    ax.bar_label(bars, labels=[f"{v:.1%}" for v in values], padding=3, fontsize=11, fontweight="bold")
    top = max([values.max(), *(references or {}).values()])
    for i, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, color=REFERENCE_COLOR, linestyle=(0, (4, 3 + 2 * i)), linewidth=1)
        ax.text(-0.45, value, f"{label}: {value:.1%}", va="bottom", ha="left", fontsize=9, color=REFERENCE_COLOR)
    ax.set_xticks(x, [str(n).replace(" + ", " +\n") for n in values.index])
    ax.set_ylim(0, top * 1.18)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set(ylabel=f"{metric}: next film in the top {metric.split('@')[-1]}", xlabel="",
           title=title or f"{metric} on MovieLens-1M test (full ranking over all films)")
    ax.grid(axis="x", visible=False)
    return ax


def plot_hit_rate_at_k(curves: pd.DataFrame, mark_k: int = 10, ax=None):
    """HR@K against K, one line per model (columns of ``curves``, from :func:`recnb.comparison.hit_rate_at_k`)."""
    ax = axes_or_new(ax, (8, 4.2))
    for column, color in zip(curves.columns, _line_colors(curves.columns)):
        ax.plot(curves.index, curves[column], label=column, color=color,
                linewidth=2.4 if column.startswith("SASRec") else 1.5)
    ax.axvline(mark_k, color="black", linestyle=":", linewidth=1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set(xlabel="K: length of the list shown", ylabel="HR@K", xlim=(1, curves.index.max()), ylim=(0, None),
           title=f"Hit rate at every list length (dotted: K = {mark_k})")
    ax.legend(loc="upper left", frameon=False)
    return ax


def _line_colors(names) -> list:
    others = iter([PALETTE[i] for i in (0, 1, 2, 4, 5, 6, 7, 8, 9)])
    return [HIGHLIGHT if str(n).startswith("SASRec") else next(others) for n in names]


def plot_metric_by_group(table: pd.DataFrame, metric: str = "HR@10", xlabel: str = "", ax=None,
                         title: str | None = None):
    """``metric`` per group of users (rows) for each model (columns), groups on x with their sizes.

    ``table`` comes from :func:`recnb.comparison.metrics_by` (its ``users`` column gives the sizes).
    """
    models = [c for c in table.columns if c != "users"]
    ax = axes_or_new(ax, (8, 4.2))
    x = np.arange(len(table))
    for column, color in zip(models, _line_colors(models)):
        ax.plot(x, table[column].to_numpy(dtype=float), marker="o", label=column, color=color,
                linewidth=2.4 if column.startswith("SASRec") else 1.5)
    ax.set_xticks(x, [f"{g}\n({n:,} users)" for g, n in zip(table.index, table["users"])])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set(xlabel=xlabel, ylabel=metric, ylim=(0, None), title=title or "")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax


def plot_recommendation_profile(profile: pd.DataFrame, ax=None):
    """Each model as a point: mean popularity of what it recommends (x) against catalogue coverage (y)."""
    ax = axes_or_new(ax, (7.5, 4.4))
    colors = _line_colors(profile.index)
    ax.scatter(profile["mean popularity"], profile["coverage"], s=90, c=colors, zorder=3)
    for (name, row), color in zip(profile.iterrows(), colors):
        ax.annotate(name, (row["mean popularity"], row["coverage"]), textcoords="offset points",
                    xytext=(7, 4), fontsize=10, color=color)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set(xlabel="mean popularity of a recommended film (training interactions)",
           ylabel="catalogue coverage (films in anyone's top 10)", ylim=(0, None),
           title="What the models show: popular films, or the whole catalogue?")
    ax.set_xlim(0, profile["mean popularity"].max() * 1.25)
    return ax
