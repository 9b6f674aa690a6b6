"""The figures of the baseline notebooks (02 to 05): metrics, ranks, genres, chains and the final comparison.

Like :mod:`recnb.viz.data_plots` (whose style and colours they share), every function
takes plain data (ranks, tables, probabilities), draws, and returns the Axes
without showing it: the notebook calls ``plt.show()``, a test inspects what was
drawn. The numbers behind the pictures come from :mod:`recnb.evaluation.analysis`
and :mod:`recnb.models.baselines`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import NullLocator, PercentFormatter

from recnb.evaluation.analysis import rank_histogram
from recnb.evaluation.metrics import hit_rate
from recnb.models.baselines import state_support_shares
from recnb.viz.data_plots import PALETTE, axes_or_new  # the series' colours and style, shared with recnb.viz.data_plots


def shorten(text: str, width: int = 30) -> str:
    """``text`` cut to ``width`` characters, "…" marking the cut, keeping a final "(year)" (for movie titles).

    >>> shorten("Star Wars: Episode IV - A New Hope (1977)", 30)
    'Star Wars: Episode IV… (1977)'
    """
    text = str(text)
    if len(text) <= width:
        return text
    match = re.search(r" \(\d{4}\)$", text)
    tail = match.group(0) if match and width > len(match.group(0)) + 4 else ""
    head = text[:len(text) - len(tail)][:width - len(tail) - 1].rstrip(" -:,")
    return head + "…" + tail


# ----------------------------------------------------------------------------- metrics (notebook 02)
def plot_metric_discounts(k: int = 10, max_rank: int = 30, ax=None):
    """What one user contributes to HR@K, NDCG@K and MRR, as a function of the held-out item's rank.

    HR@K is a step (1 inside the top K, 0 outside), NDCG@K decays as
    1 / log2(rank + 1) and stops at K, MRR is 1 / rank with no cut-off.
    """
    ranks = np.arange(1, max_rank + 1)
    inside = ranks <= k
    curves = {
        f"HR@{k}: 1 if rank ≤ {k}": inside.astype(float),
        f"NDCG@{k}: 1 / log2(rank + 1) if rank ≤ {k}": np.where(inside, 1.0 / np.log2(ranks + 1.0), 0.0),
        "MRR: 1 / rank": 1.0 / ranks,
    }
    ax = axes_or_new(ax, (7, 3.8))
    for (label, values), marker in zip(curves.items(), ("s", "o", "^")):
        ax.plot(ranks, values, marker=marker, markersize=4, label=label)
    ax.axvline(k + 0.5, color="black", linestyle=":", linewidth=1)
    ax.annotate(f"cut-off K = {k}", (k + 0.5, 0.97), xycoords=("data", "axes fraction"), xytext=(4, 0),
                textcoords="offset points", va="top")
    ax.set(xlabel="rank of the held-out item (1 = first)", ylabel="credit for this user",
           title="How each metric credits one user", ylim=(-0.03, 1.05))
    ax.legend(loc="upper right", bbox_to_anchor=(1, 0.85))
    return ax


def plot_rank_distribution(ranks, k: int = 10, n_candidates: int | None = None, ax=None, label: str | None = None):
    """Histogram of the held-out item's rank over users (log scale), with the top-K region shaded.

    HR@K is the share of users left of the dotted line. ``n_candidates`` (the
    most a rank can be, e.g. the number of items) sets the right end of the axis.
    The bins are :func:`recnb.evaluation.analysis.rank_histogram`.
    """
    ranks = np.asarray(ranks)
    bins = rank_histogram(ranks, k, n_candidates)
    largest = int(bins["last rank"].iloc[-1])
    edges = np.append(bins["first rank"].to_numpy(), largest + 1) - 0.5  # bars from half a rank below to above
    ax = axes_or_new(ax, (7, 3.5))
    _, _, patches = ax.hist(bins["first rank"].to_numpy(), bins=edges, weights=bins["users"].to_numpy(),
                            color=PALETTE[0])
    for patch, in_top_k in zip(patches, bins["top K"]):
        if in_top_k:
            patch.set_facecolor(PALETTE[2])
    ax.set_xscale("log")
    ax.set_xlim(0.5, largest + 0.5)
    ax.axvline(k + 0.5, color="black", linestyle=":", linewidth=1)
    ax.annotate(f"HR@{k} = {hit_rate(ranks, k):.1%}\n(green: rank ≤ {k})", (k + 0.5, 0.95),
                xycoords=("data", "axes fraction"), xytext=(5, 0), textcoords="offset points", va="top")
    ax.set(xlabel="rank of the held-out item (log scale)", ylabel="users",
           title=f"{label + ': ' if label else ''}rank of the held-out item, {len(ranks):,} users "
                 f"(median {np.median(ranks):,.0f})")
    return ax


def plot_already_seen(titles: Sequence[str], shares, ax=None, max_title: int = 36):
    """Horizontal bars: the share of users who have already seen each item (e.g. the most popular ones).

    Unless seen items are masked, these are recommended to users who already
    watched them, taking top-K places the held-out item could have had.
    """
    shares = np.asarray(shares, dtype=float)
    labels = [shorten(t, max_title) for t in titles]
    ax = axes_or_new(ax, (7, 0.32 * len(labels) + 1.2))
    ax.barh(np.arange(len(labels)), shares, color=PALETTE[0])
    for y, share in enumerate(shares):
        ax.text(share, y, f" {share:.0%}", va="center")
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel="users who have already seen it", ylabel="",
           title=f"Already seen: the {len(labels)} most popular movies")
    return ax


def plot_model_comparison(table: pd.DataFrame, ax=None, percent: bool = True, title: str | None = None):
    """Grouped horizontal bars: one group per row of ``table`` (a model, a group of users), one bar per column.

    Each bar is labelled with its value: as a percentage with ``percent``, except
    in columns named for NDCG or MRR, which are averages of a credit, not shares
    of users, and are always labelled as fractions (the x axis then too).
    ``NaN`` cells draw no bar.
    """
    columns = list(table.columns)
    long = table.rename_axis("row").reset_index().melt(id_vars="row", value_vars=columns, var_name="series")
    ax = axes_or_new(ax, (8, max(3.0, 0.3 * len(table) * len(columns) + 1.6)))
    sns.barplot(long, y="row", x="value", hue="series", order=list(table.index), hue_order=columns, ax=ax,
                palette=PALETTE[:len(columns)], orient="h")
    fraction = [any(name in str(column) for name in ("NDCG", "MRR")) for column in columns]
    for container, is_fraction in zip(ax.containers, fraction):
        ax.bar_label(container, fmt="%.3f" if is_fraction or not percent else (lambda v: f"{v:.1%}"),
                     padding=2, fontsize=9)
    top = np.nanmax(table.to_numpy(dtype=float))
    ax.set_xlim(0, top * 1.22)
    if percent and not any(fraction):
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set(xlabel="", ylabel="", title=title or "")
    ax.legend(title=None, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax


# ----------------------------------------------------------------------------- genres (notebook 03)
def plot_genre_votes(data, history, favourite: int | None = None, ax=None):
    """One history's primary genres: items per genre, and the position each was last seen.

    ``data`` supplies ``item_genre`` and ``genre_names``. ``favourite`` (a genre
    id, e.g. from :meth:`recnb.models.baselines.FavouriteGenre.favourite_genre`) is drawn
    in orange; items without a genre (id 0) do not vote and are not drawn.
    """
    history = np.asarray(history, dtype=np.int64)
    genres = np.asarray(data.item_genre)[history]
    positions = np.arange(1, len(history) + 1)
    votes = (pd.DataFrame({"genre": genres, "position": positions}).query("genre > 0")
             .groupby("genre")["position"].agg(["count", "max"])
             .sort_values(["count", "max"], ascending=False))
    names = [data.genre_names[g] for g in votes.index]
    colors = [PALETTE[1] if g == favourite else PALETTE[0] for g in votes.index]
    ax = axes_or_new(ax, (7, 0.32 * len(votes) + 1.3))
    ax.barh(np.arange(len(votes)), votes["count"], color=colors)
    for y, (count, last) in enumerate(zip(votes["count"], votes["max"])):
        ax.text(count, y, f" {count}  (last seen at #{last})", va="center")
    ax.set_yticks(np.arange(len(votes)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, votes["count"].max() * 1.5)
    chosen = f"; favourite: {data.genre_names[favourite]} (orange)" if favourite else ""
    ax.set(xlabel="items in the history", ylabel="primary genre",
           title=f"{len(history)} items, #1 oldest to #{len(history)} most recent{chosen}")
    return ax


# ----------------------------------------------------------------------------- chains (notebooks 04 and 05)
def plot_transition_heatmap(probabilities, labels: Sequence[str], ax=None, max_label: int = 36,
                            annotate: bool = True):
    """P(next | last) for a few items as a heatmap: row = the last item watched, column = the next one.

    ``probabilities`` is the (k, k) sub-matrix (rows need not sum to 1: the
    rest of each row's probability goes to items not drawn). Long titles are
    shortened to ``max_label`` characters.
    """
    values = np.asarray(probabilities, dtype=float)
    if values.shape != (len(labels), len(labels)):
        raise ValueError(f"probabilities has shape {values.shape}; expected ({len(labels)}, {len(labels)}).")
    names = [shorten(label, max_label) for label in labels]
    size = 0.42 * len(names) + 3.5
    ax = axes_or_new(ax, (size + 2, size))
    sns.heatmap(values, ax=ax, cmap="rocket_r", vmin=0, vmax=max(values.max(), 1e-9), square=True,
                annot=annotate, fmt=".0%", annot_kws={"fontsize": 7}, linewidths=0.5, linecolor="white",
                xticklabels=names, yticklabels=names, cbar_kws={"label": "P(next | last)", "shrink": 0.6,
                                                                 "format": PercentFormatter(1.0)})
    if annotate:
        for text in ax.texts:
            if text.get_text() in ("0%", "-0%"):
                text.set_text("")  # leave empty cells empty: the pattern is easier to see
    ax.set_xticklabels(ax.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    ax.set(xlabel="next item", ylabel="last item watched")
    return ax


def plot_alpha_sweep(sweep: pd.DataFrame, metrics: Sequence[str] = ("HR@10", "NDCG@10"),
                     chosen: float | None = None, references: Mapping[str, float] | None = None,
                     ax=None, title: str | None = None):
    """Metrics of the hybrid against alpha (a table from :func:`recnb.models.zoo.alpha_sweep`).

    ``chosen`` draws a vertical line at the alpha picked; ``references`` (name ->
    value of the first metric) draws dashed horizontal lines, e.g. the Markov
    chain and popularity on the same split. The x axis is symmetric-log: linear
    up to the smallest positive alpha, logarithmic above, so the small alphas,
    where the metrics change fastest, are not crowded into the left edge. The
    y axis is a plain fraction (NDCG is no share of users).
    """
    ax = axes_or_new(ax, (7, 3.8))
    alphas = sweep.index.to_numpy(dtype=float)
    for metric, marker in zip(metrics, ("o", "s", "^", "D")):
        ax.plot(alphas, sweep[metric].to_numpy(), marker=marker, markersize=4, label=metric)
    smallest = float(alphas[alphas > 0].min()) if (alphas > 0).any() else 0.01
    ax.set_xscale("symlog", linthresh=smallest, linscale=0.5)
    ticks = [0.0] + [t for t in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0) if t >= smallest]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ends = sweep[list(metrics)].to_numpy()[[0, -1]]  # the curves at the smallest and at the largest alpha
    for (name, value), color in zip((references or {}).items(), ("grey", "silver", "black")):
        ax.axhline(value, color=color, linestyle="--", linewidth=1)
        # label the line at the end where the curves are furthest from it, on the side away from them
        left = np.abs(ends[0] - value).min() >= np.abs(ends[1] - value).min()
        above = ends[0 if left else 1].mean() <= value
        ax.annotate(f"{name}: {metrics[0]} {value:.1%}", (0.02 if left else 0.98, value),
                    xycoords=("axes fraction", "data"), xytext=(0, 3 if above else -3), textcoords="offset points",
                    ha="left" if left else "right", va="bottom" if above else "top", color="dimgrey")
    if chosen is not None:
        ax.axvline(chosen, color=PALETTE[1], linestyle=":", linewidth=1.5)
        best = float(sweep.loc[chosen, metrics[0]])
        ax.annotate(f"chosen alpha = {chosen:g}\n{metrics[0]} {best:.1%}", (chosen, 0.62),
                    xycoords=("data", "axes fraction"), xytext=(-6, 0), textcoords="offset points",
                    ha="right", color=PALETTE[1])
    highest = max([float(sweep[list(metrics)].to_numpy().max())] + list((references or {}).values()))
    ax.set_ylim(0, highest * 1.12)
    ax.set(xlabel="alpha (symmetric-log scale; 0 = popularity only, 1 = Markov chain only)",
           ylabel="metric (a fraction)", title=title or "Hybrid: alpha × Markov + (1 − alpha) × popularity",
           xlim=(-smallest / 5, 1.1))
    ax.legend(loc="center left")
    return ax


def plot_state_space(possible: Mapping[str, float], observed: Mapping[str, float], ax=None):
    """Pairs of bars on a log scale: how many states (or cells) a model could have, and how many the data fills.

    Keys are the same in both mappings, e.g. ``"Markov: last item"``; each pair
    is annotated with the observed share.
    """
    labels = list(possible)
    ax = axes_or_new(ax, (8, 0.9 * len(labels) + 1.3))
    y = np.arange(len(labels))
    ax.barh(y - 0.2, [possible[n] for n in labels], height=0.4, color=PALETTE[7], label="possible")
    ax.barh(y + 0.2, [observed[n] for n in labels], height=0.4, color=PALETTE[0], label="seen in training")
    for row, name in enumerate(labels):
        ax.text(possible[name], row - 0.2, f" {possible[name]:,.0f}", va="center", fontsize=9)
        share = observed[name] / possible[name]
        ax.text(observed[name], row + 0.2, f" {observed[name]:,.0f} ({share:.1%})" if share >= 0.001
                else f" {observed[name]:,.0f} ({share:.4%})", va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(1, max(possible.values()) * 2000)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set(xlabel="count (log scale)", ylabel="", title="How much of each state space the data fills")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax


def plot_state_support(totals_by_label: Mapping[str, np.ndarray], ax=None):
    """How often each state was seen in training: the share of states seen at most x times (log x).

    ``totals_by_label`` maps a label to a model's training count per row, as
    :func:`recnb.models.baselines.state_support_shares` takes it. A state seen
    once gives a next-item estimate from a single example; the legend gives each
    model's share of such states.
    """
    ax = axes_or_new(ax, (7, 3.8))
    for label, totals in totals_by_label.items():
        support = state_support_shares(totals)
        states, seen_once = support["states"].sum(), support["share at most"].iloc[0]
        ax.plot(support.index.to_numpy(), support["share at most"].to_numpy(),
                label=f"{label}: {states:,} states, {seen_once:.0%} seen once")
    ax.set_xscale("log")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel="times the state was seen in training (log scale)", ylabel="states seen at most that often",
           ylim=(0, 1.02), title="Evidence behind each state")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    return ax


__all__ = [
    "plot_already_seen", "plot_alpha_sweep", "plot_genre_votes", "plot_metric_discounts",
    "plot_model_comparison", "plot_rank_distribution", "plot_state_space", "plot_state_support",
    "plot_transition_heatmap", "shorten",
]
