"""The figures the notebooks draw, one function each, named for what it draws.

Every function takes the data (a :class:`~recnb.data.SequenceData`, its parts,
or plain arrays), draws with seaborn/matplotlib, and returns the Axes (or the
Figure, for several panels) without showing it: the notebook calls
``plt.show()``, a test inspects what was drawn.

The colours of the leave-one-out split are the same in every figure of the
series: training blue, validation orange, test green (:data:`SPLIT_COLORS`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from recnb.data.sequences import item_interaction_counts, top_share

if TYPE_CHECKING:
    from recnb.data.readers import MovieLens
    from recnb.data.sequences import SequenceData

PALETTE = sns.color_palette("tab10")
#: One colour per role an item can have in a leave-one-out split.
SPLIT_COLORS = {
    "empty": (1.0, 1.0, 1.0),
    "training": PALETTE[0],
    "validation": PALETTE[1],
    "test": PALETTE[2],
    "not drawn / hidden": (0.85, 0.85, 0.85),
}
_CELL = {name: code for code, name in enumerate(SPLIT_COLORS)}  # empty 0, training 1, ...
_SPLIT_CMAP = ListedColormap(list(SPLIT_COLORS.values()))
_styled = False


def set_style() -> None:
    """The series' look: seaborn's white grid theme. Plot functions apply it once on first use."""
    global _styled
    sns.set_theme(style="whitegrid", context="notebook")
    _styled = True


def ensure_style() -> None:
    """Apply :func:`set_style` unless it already ran (the notebook may have set its own)."""
    if not _styled:
        set_style()


def axes_or_new(ax, figsize):
    """``ax`` if given, else a new constrained-layout Axes, with the series' style applied."""
    ensure_style()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _lengths(data_or_lengths) -> np.ndarray:
    """Sequence lengths from a SequenceData, a list of sequences, or the lengths themselves."""
    sequences = getattr(data_or_lengths, "sequences", data_or_lengths)
    if len(sequences) and np.ndim(sequences[0]) == 1:
        return np.array([len(s) for s in sequences], dtype=np.int64)
    return np.asarray(sequences, dtype=np.int64)


# ----------------------------------------------------------------------------- the data set
def plot_interactions_per_user(data_or_lengths, ax=None):
    """Histogram of how many interactions each user has, on a log scale, with the median marked."""
    lengths = _lengths(data_or_lengths)
    ax = axes_or_new(ax, (7, 3.5))
    sns.histplot(x=lengths, log_scale=True, bins=40, ax=ax, color=PALETTE[0])
    median = float(np.median(lengths))
    ax.axvline(median, color="black", linestyle="--", linewidth=1)
    ax.annotate(f"median {median:,.0f}", (median, 0.95), xycoords=("data", "axes fraction"),
                xytext=(4, 0), textcoords="offset points", va="top")
    ax.set(xlabel="interactions per user (log scale)", ylabel="users",
           title=f"{len(lengths):,} users, {lengths.min():,} to {lengths.max():,} interactions each")
    return ax


def plot_item_popularity(counts, ax=None, top_fraction: float = 0.1):
    """The long tail: items sorted by interactions (log y), with the share the top items take.

    ``counts`` is one count per item, or a SequenceData (counted with
    :func:`recnb.data.sequences.item_interaction_counts`).
    """
    if hasattr(counts, "sequences"):
        counts = item_interaction_counts(counts)
    ordered = np.sort(np.asarray(counts))[::-1]
    ranks = np.arange(1, len(ordered) + 1)
    top = max(1, int(np.ceil(top_fraction * len(ordered))))
    share = top_share(ordered, top_fraction)
    ax = axes_or_new(ax, (7, 3.5))
    heights = np.maximum(ordered, 1)  # an item with no interaction would vanish on the log scale
    ax.fill_between(ranks[:top + 1], heights[:top + 1], color=PALETTE[1], alpha=0.5, linewidth=0)
    ax.fill_between(ranks[top:], heights[top:], color=PALETTE[0], alpha=0.3, linewidth=0)
    ax.plot(ranks, heights, color=PALETTE[0])
    ax.annotate(f"top {top_fraction:.0%} of items ({top:,}):\n{share:.1%} of all interactions",
                (top, 0.95), xycoords=("data", "axes fraction"), xytext=(6, 0),
                textcoords="offset points", va="top")
    ax.set_yscale("log")
    ax.set_xlim(0.5, len(ordered) + 0.5)
    ax.set(xlabel="item rank (most popular first)", ylabel="interactions (log scale)",
           title=f"Item popularity: {len(ordered):,} items, {int(ordered.sum()):,} interactions")
    return ax


def _items_table(data_or_items) -> pd.DataFrame:
    items = data_or_items if isinstance(data_or_items, pd.DataFrame) else data_or_items.items
    return items[items["item"] != 0] if "item" in items else items  # drop the padding row


def plot_genre_counts(data_or_items, ax=None):
    """Movies per genre, counting every listed genre and, beside it, only the primary (first listed) one.

    The primary genre is the one the models' genre lookup uses; where the two
    bars differ, the first-listed rule hides a genre.
    """
    items = _items_table(data_or_items)
    listed = Counter(genre for genres in items["genres"] for genre in genres)
    primary = items["primary_genre"].dropna().astype(str).value_counts()
    order = [genre for genre, _ in listed.most_common()]
    table = pd.DataFrame({"genre": order * 2,
                          "counted": ["any listed genre"] * len(order) + ["primary genre only"] * len(order),
                          "movies": [listed[g] for g in order] + [int(primary.get(g, 0)) for g in order]})
    ax = axes_or_new(ax, (7, 0.28 * len(order) + 1.2))
    sns.barplot(table, y="genre", x="movies", hue="counted", order=order, ax=ax,
                palette=[PALETTE[0], PALETTE[1]])
    ax.set(xlabel="movies", ylabel="", title=f"Genres of {len(items):,} movies")
    ax.legend(title=None, loc="lower right")
    return ax


def plot_release_years(data_or_items, ax=None):
    """Movies per release year, with the decade boundaries of the year buckets the models use."""
    items = _items_table(data_or_items)
    years = items["year"].dropna().to_numpy(dtype=np.int64)
    ax = axes_or_new(ax, (7, 3.5))
    sns.histplot(x=years, discrete=True, ax=ax, color=PALETTE[0], linewidth=0)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)  # room for the bucket labels
    edges = [years.min() - 0.5, 1979.5, 1989.5, 1999.5, 2009.5, 2019.5, years.max() + 0.5]
    labels = ("before 1980", "1980s", "1990s", "2000s", "2010s", "2020 and later")
    for low, high, label in zip(edges, edges[1:], labels):
        low, high = max(low, edges[0]), min(high, edges[-1])
        if high - low >= 5:  # label the buckets wide enough to hold a label
            ax.text((low + high) / 2, 0.97, label, transform=ax.get_xaxis_transform(), ha="center", va="top")
    for boundary in edges[1:-1]:
        if edges[0] < boundary < edges[-1]:
            ax.axvline(boundary, color="black", linestyle=":", linewidth=1)
    ax.set(xlabel="release year", ylabel="movies",
           title=f"{len(years):,} movies from {years.min()} to {years.max()} "
                 "(dotted: year-bucket boundaries)")
    return ax


def plot_ratings_and_time(raw: MovieLens, freq: str = "W"):
    """Two panels for a release with ratings and timestamps: the rating distribution, ratings over time.

    Raises ValueError for a copy without them, such as the order-only ML-1M.
    """
    interactions = raw.interactions
    if not raw.has_timestamps or not interactions["rating"].notna().any():
        raise ValueError(f"{raw.name} has no ratings or timestamps to draw (an order-only copy); "
                         "use a release read from its ratings file, e.g. ml-100k.")
    if not _styled:
        set_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), width_ratios=[1, 2], layout="constrained")
    ratings = interactions["rating"].dropna().to_numpy(dtype=float)
    values, counts = np.unique(ratings, return_counts=True)
    labels = [f"{v:g}" for v in values]
    sns.barplot(x=labels, y=counts, ax=left, color=PALETTE[0])
    left.set(xlabel="rating", ylabel="ratings", title=f"{len(ratings):,} ratings, mean {ratings.mean():.2f}")

    when = pd.to_datetime(interactions["timestamp"].dropna().to_numpy(dtype=np.int64), unit="s")
    per_period = pd.Series(1, index=when).resample(freq).size()
    period = {"D": "day", "W": "week", "MS": "month", "ME": "month"}.get(freq, freq)
    right.plot(per_period.index, per_period.to_numpy(), color=PALETTE[0])
    right.set(xlabel="date", ylabel=f"ratings per {period}",
              title=f"{when.min():%d %b %Y} to {when.max():%d %b %Y}")
    fig.suptitle(raw.name)
    return fig


# ----------------------------------------------------------------------------- filtering
def plot_kcore_steps(steps: pd.DataFrame, ax=None, title: str | None = None):
    """What each pass of the k-core filter leaves, as a percentage of the data as read (pass 0)."""
    ax = axes_or_new(ax, (6, 3.5))
    for column, marker in (("users", "o"), ("items", "s"), ("interactions", "^")):
        values = steps[column].to_numpy()
        ax.plot(steps["step"], 100 * values / values[0], marker=marker,
                label=f"{column}: {values[0]:,} → {values[-1]:,}")
    ax.set_xticks(steps["step"])
    ax.set(xlabel="pass of the filter (0 = as read)", ylabel="% of the data as read",
           title=title or f"k-core filter: {len(steps) - 1} pass{'es' if len(steps) != 2 else ''}")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower left")
    return ax


# ----------------------------------------------------------------------------- sequences and splits
def plot_user_timeline(data: SequenceData, user_index: int, ax=None, last: int = 15, mark_split: bool = True):
    """One user's most recent ``last`` movies in the order watched (oldest at the top), coloured by genre.

    With ``mark_split``, the last two movies are labelled as the validation and test targets
    that leave-one-out holds out (in the split colours).
    """
    sequence = data.sequences[user_index]
    shown = sequence[-last:]
    first = len(sequence) - len(shown) + 1  # 1-based position of the first item drawn
    genres = data.items["primary_genre"].to_numpy()[shown]
    genres = ["<none>" if pd.isna(g) else str(g) for g in genres]
    # tab10 without its first three colours: blue/orange/green mean training/validation/test
    genre_palette = PALETTE[3:]
    colors = {g: genre_palette[i % len(genre_palette)] for i, g in enumerate(dict.fromkeys(genres))}
    ax = axes_or_new(ax, (7, 0.32 * len(shown) + 1.0))
    positions = np.arange(first, first + len(shown))
    ax.scatter(np.zeros(len(shown)), positions, c=[colors[g] for g in genres], s=60, zorder=3)
    ax.plot(np.zeros(len(shown)), positions, color="grey", linewidth=1, zorder=2)
    for y, title, genre in zip(positions, data.titles(shown), genres):
        ax.text(0.04, y, f"{title}  ({genre})", va="center")
    if mark_split and len(shown) >= 2:
        for y, role in zip(positions[-2:], ("validation", "test")):
            ax.annotate(f"← {role} target", (1, y), xycoords=("axes fraction", "data"), ha="right",
                        va="center", color=SPLIT_COLORS[role], fontweight="bold")
    ax.set_xlim(-0.05, 1)
    ax.set_ylim(positions[-1] + 0.7, positions[0] - 0.7)
    ax.set_yticks(positions, [f"#{p}" for p in positions])
    ax.set_xticks([])
    ax.grid(False)
    sns.despine(ax=ax, left=True, bottom=True)
    earlier = f"; {first - 1} earlier not shown" if first > 1 else ""
    ax.set_title(f"User {data.user_ids[user_index]}: {len(sequence)} movies, oldest first{earlier}", loc="left")
    return ax


def _split_grid(lengths: np.ndarray, width: int, align: str) -> np.ndarray:
    """Cell codes (see SPLIT_COLORS) of each user's last ``width`` positions."""
    grid = np.zeros((len(lengths), width), dtype=np.int64)
    for row, length in enumerate(lengths):
        shown = min(length, width)
        cells = [_CELL["training"]] * max(shown - 2, 0) + [_CELL["validation"], _CELL["test"]][-shown:]
        if length > width:
            cells[0] = _CELL["not drawn / hidden"]  # stands for the earlier items
        start = width - shown if align == "right" else 0
        grid[row, start:start + shown] = cells
    return grid


def _draw_cells(ax, grid: np.ndarray) -> None:
    ax.imshow(grid, cmap=_SPLIT_CMAP, vmin=-0.5, vmax=len(SPLIT_COLORS) - 0.5, aspect="auto",
              interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, grid.shape[1], 1), minor=True)
    ax.set_yticks(np.arange(-0.5, grid.shape[0], 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.grid(which="major", visible=False)
    ax.tick_params(which="minor", length=0)


def plot_leave_one_out(sequences_or_lengths, n_users: int = 8, align: str = "right", max_len: int = 40,
                       ax=None, users=None):
    """Each user's split drawn as a row of cells: training, then validation, then test, in time order.

    ``align="right"`` lines the most recent items up in the last column, as
    :func:`recnb.data.split.pad_histories` does (left padding); ``"left"`` starts
    every user at column 0. Only the last ``max_len`` positions are drawn; a
    grey first cell stands for the earlier items of longer sequences.
    """
    if align not in ("left", "right"):
        raise ValueError(f"align must be 'left' or 'right', not {align!r}.")
    lengths = _lengths(sequences_or_lengths)
    users = np.arange(min(n_users, len(lengths))) if users is None else np.asarray(users)
    lengths = lengths[users]
    width = int(min(lengths.max(), max_len))
    ax = axes_or_new(ax, (10, 0.4 * len(users) + 1.6))
    _draw_cells(ax, _split_grid(lengths, width, align))
    ax.set_yticks(np.arange(len(users)), [f"user {u} ({n} items)" for u, n in zip(users, lengths)])
    ticks = np.arange(width)[::5] if align == "left" else np.arange(width - 1, -1, -5)[::-1]
    ax.set_xticks(ticks, [str(t + 1) if align == "left" else str(t - width + 1) for t in ticks])
    cut = (lengths > width).any()
    if align == "right":
        ax.set_xlabel("position counted from the most recent item (0 = last)")
    else:
        ax.set_xlabel("position in the sequence (1 = oldest" + ("; rows that start grey are cut to their "
                      f"last {width - 1} items)" if cut else ")"))
    handles = [Patch(color=SPLIT_COLORS[n], label=n) for n in ("training", "validation", "test")]
    if cut:
        handles.append(Patch(color=SPLIT_COLORS["not drawn / hidden"], label="earlier items, not drawn"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -0.25 if len(users) < 6 else -0.15),
              ncol=len(handles), frameon=False)
    ax.set_title(f"Leave-one-out, {align}-aligned", loc="left")
    return ax


def plot_evaluation_inputs(length: int = 10, ax=None):
    """One sequence of ``length`` items in its three uses: what training sees, the validation and the test query.

    Cells marked "?" are the target to rank; grey cells are hidden from that use.
    The validation item is part of the *test input*, never of the training data.
    """
    if length < 3:
        raise ValueError("leave-one-out needs at least 3 items.")
    train, hidden = _CELL["training"], _CELL["not drawn / hidden"]
    rows = np.array([
        [train] * (length - 2) + [hidden, hidden],
        [train] * (length - 2) + [_CELL["validation"], hidden],
        [train] * (length - 2) + [_CELL["validation"], _CELL["test"]],
    ])
    ax = axes_or_new(ax, (8, 2.2))
    _draw_cells(ax, rows)
    for row, col in ((1, length - 2), (2, length - 1)):
        ax.text(col, row, "?", ha="center", va="center", color="white", fontweight="bold", fontsize=13)
    ax.set_yticks([0, 1, 2], ["model fit on (split.train)", 'validation: input → "?"', 'test: input → "?"'])
    ax.set_xticks(np.arange(length), [str(i + 1) for i in range(length)])
    ax.set_xlabel("position in the user's sequence (oldest first)")
    handles = [Patch(color=SPLIT_COLORS[n], label=n) for n in ("training", "validation", "test")]
    handles.append(Patch(color=SPLIT_COLORS["not drawn / hidden"], label="hidden"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return ax
