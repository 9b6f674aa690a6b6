"""The figures of the final comparison (notebook 08 and ``python -m recnb compare``), and the series' one
HR@K curve (:func:`plot_hit_rate_curve`, notebooks 02, 04 and 08).

Like the other plot modules, each function takes plain tables (from
:mod:`recnb.evaluation.comparison`), draws, and returns the Axes without showing it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter

from recnb.evaluation.comparison import identical_columns
from recnb.viz.data_plots import PALETTE, axes_or_new

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


def _plot_lines(ax, x, table: pd.DataFrame, columns, **options) -> None:
    """One line per column; a column identical to an earlier one is dashed on top of it, labelled as equal."""
    same = identical_columns(table[list(columns)])
    for column, color in zip(columns, _line_colors(columns)):
        label = f"{column} (= {same[column]})" if column in same else column
        ax.plot(x, table[column].to_numpy(dtype=float), label=label, color=color,
                linestyle=(0, (4, 3)) if column in same else "-", zorder=3 if column in same else 2,
                linewidth=2.4 if column.startswith("SASRec") else 1.5, **options)


def plot_hit_rate_curve(curves: pd.DataFrame, k: int = 10, ax=None, log_x: bool | None = None):
    """HR@K against K, one line per column of ``curves`` (from :func:`recnb.evaluation.analysis.hit_rate_at_k`),
    dotted at ``k``: the series' one HR@K figure.

    Two scales for two questions (``log_x``; by default log when K runs past 100):

    - log K, over the whole range of ranks (notebooks 02 and 04): how each curve climbs to 1
      (it stops there) across the catalogue; the legend, below, gives each curve's HR@``k``;
    - linear K, over lists a person would read (notebook 08, ``max_k=50``): the models in the
      comparison's colours (SASRec highlighted), a curve equal to an earlier one dashed over it.
    """
    log_x = bool(curves.index.max() > 100) if log_x is None else log_x
    ax = axes_or_new(ax, (7, 3.8) if log_x else (10, 4.2))
    if log_x:
        for label in curves.columns:
            values = curves[label].to_numpy(dtype=float)
            reached = np.flatnonzero(values >= 1.0)
            end = int(reached[0]) + 1 if len(reached) else len(values)   # no flat line at 1 after that
            ax.plot(curves.index[:end], values[:end], label=f"{label}: HR@{k} = {curves[label].get(k, np.nan):.1%}")
    else:
        _plot_lines(ax, curves.index, curves, list(curves.columns))
    ax.axvline(k, color="black", linestyle=":", linewidth=1)
    if log_x:
        ax.set_xscale("log")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set(xlabel="K (log scale)", ylabel="HR@K: users with rank ≤ K", ylim=(0, 1.02),
               title=f"Hit rate at every cut-off (dotted: K = {k})")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    else:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set(xlabel="K: length of the list shown", ylabel="HR@K", xlim=(1, curves.index.max()), ylim=(0, None),
               title=f"Hit rate at every list length (dotted: K = {k})")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # outside: no curve hidden
    return ax


def _line_colors(names) -> list:
    others = iter([PALETTE[i] for i in (0, 1, 2, 4, 5, 6, 7, 8, 9)])
    return [HIGHLIGHT if str(n).startswith("SASRec") else next(others) for n in names]


def plot_metric_by_group(table: pd.DataFrame, metric: str = "HR@10", xlabel: str = "", ax=None,
                         title: str | None = None):
    """``metric`` per group of users (rows) for each model (columns), groups on x with their sizes.

    ``table`` comes from :func:`recnb.evaluation.comparison.metrics_by` (its ``users`` column gives the sizes).
    A model whose values equal an earlier model's is drawn dashed over it.
    """
    models = [c for c in table.columns if c != "users"]
    ax = axes_or_new(ax, (10, 4.2))   # wide enough for the legend outside and one group label per tick
    x = np.arange(len(table))
    _plot_lines(ax, x, table, models, marker="o")
    ax.set_xticks(x, [f"{g}\n({n:,} users)" for g, n in zip(table.index, table["users"])])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set(xlabel=xlabel, ylabel=metric, ylim=(0, None), title=title or "")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax


def spread_positions(values, min_gap: float) -> np.ndarray:
    """Label positions near ``values`` but at least ``min_gap`` apart, in the same order as the values.

    Labels are pushed apart symmetrically around the middle of each crowded group,
    the simple placement that keeps a handful of scatter labels from overprinting.
    """
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    placed = values[order].copy()
    for _ in range(len(values) * 4):
        moved = False
        for i in range(1, len(placed)):
            overlap = min_gap - (placed[i] - placed[i - 1])
            if overlap > 1e-12:
                placed[i - 1] -= overlap / 2
                placed[i] += overlap / 2
                moved = True
        if not moved:
            break
    result = np.empty_like(placed)
    result[order] = placed
    return result


def plot_recommendation_profile(profile: pd.DataFrame, ax=None, label_gap: float = 0.075):
    """Each model as a point: mean popularity of what it recommends (x) against catalogue coverage (y).

    Models with the same profile share one point and one label ("A = B"); labels sit to the right
    of their points, moved apart (with a leader line) where points crowd, so none overprints another.
    """
    ax = axes_or_new(ax, (7.5, 4.4))
    colors = dict(zip(profile.index, _line_colors(profile.index)))
    points = profile[["mean popularity", "coverage"]].astype(float)
    groups: dict[tuple, list[str]] = {}
    for name, row in points.iterrows():
        groups.setdefault((row["mean popularity"], row["coverage"]), []).append(name)
    ax.scatter(points["mean popularity"], points["coverage"], s=90, c=[colors[n] for n in points.index], zorder=3)
    top = max(points["coverage"].max() * 1.15, 0.1)
    label_y = spread_positions([y for _, y in groups], label_gap * top)
    right = points["mean popularity"].max() * 1.55
    for ((x, y), names), y_label in zip(groups.items(), label_y):
        ax.annotate(" = ".join(names), (x, y), xytext=(x + 0.04 * right, y_label), textcoords="data",
                    va="center", fontsize=10, color=colors[names[0]],
                    arrowprops=dict(arrowstyle="-", color="0.6", linewidth=0.8, shrinkA=0, shrinkB=5))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set(xlabel="mean popularity of a recommended film (training interactions)",
           ylabel="catalogue coverage (films in anyone's top 10)", ylim=(min(0, label_y.min() - 0.03), top),
           xlim=(0, right), title="What the models show: popular films, or the whole catalogue?")
    return ax


def plot_protocol_ranks(protocols: pd.DataFrame, metric: str = "HR@10", ax=None):
    """A slope chart: each model's place (1 = best) under each of two protocols (columns of ``protocols``).

    ``protocols`` comes from :func:`recnb.evaluation.comparison.protocol_comparison`. Places are
    ranks of the metric with ties sharing the best place, so a crossing line is a model
    that one protocol puts ahead of another and the other protocol behind it.
    """
    places = protocols.rank(ascending=False, method="min").astype(int)
    ax = axes_or_new(ax, (9, 4.6))
    colors = dict(zip(places.index, _line_colors(places.index)))
    same = identical_columns(protocols.T)
    for name, row in places.iterrows():
        ax.plot([0, 1], row.to_numpy(), marker="o", color=colors[name], zorder=3 if name in same else 2,
                linestyle=(0, (4, 3)) if name in same else "-", linewidth=2.4 if name.startswith("SASRec") else 1.5)
    for column, (x, side, align) in enumerate(((0, -0.05, "right"), (1, 0.05, "left"))):
        for place, names in places.groupby(places.columns[column]).groups.items():
            values = protocols.loc[names, protocols.columns[column]]
            text = f"{place}. " + ", ".join(f"{n} {v:.2%}" for n, v in values.items())
            ax.text(x + side, place, text, ha=align, va="center", fontsize=9.5, color=colors[names[0]])
        ax.text(x + side, 0.35, protocols.columns[column], ha=align, va="bottom", fontsize=11, fontweight="bold")
    ax.set(xlim=(-1.45, 2.45), ylim=(len(places) + 0.5, 0.1), xticks=[], yticks=[],
           title=f"Which model looks best? Places by {metric} under each protocol")
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax
