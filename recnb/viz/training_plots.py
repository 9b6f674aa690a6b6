"""Figures of notebook 07: training curves, precision timings, gradient agreement, schedule and padding."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from recnb.errors import InvalidArgumentError
from recnb.models.training import learning_rate_curve
from recnb.viz.data_plots import axes_or_new, set_style


def plot_training_history(history, column: str | None = None, ax=None, title: str | None = None):
    """Training curves over epochs: the series' one training-curve figure.

    - ``history`` one run (``train_sasrec``'s history, a checkpoint's ``"history"``) and no ``column``:
      a Figure of three panels, the training loss, validation NDCG@10 and HR@10 (dotted: the best
      epoch, the one kept) and the learning rate (when recorded);
    - ``column`` (``"loss"``, ``"valid_NDCG@10"``, ...) and ``history`` a mapping of run name -> history
      (or one history): one Axes (``ax`` or a new one), one line per run, each labelled with its last
      value, for runs side by side. A history without an ``epoch`` column is numbered 1, 2, ...
    """
    if column is not None:
        return _plot_runs({"run": history} if isinstance(history, pd.DataFrame) else history, column, ax, title)
    if not isinstance(history, pd.DataFrame):
        raise InvalidArgumentError("Several runs go on one panel: give column= (e.g. 'loss').")
    set_style()
    panels = [("loss", "training loss (cross-entropy)")]
    panels.append((["valid_NDCG@10", "valid_HR@10"], "validation metric"))
    if "lr" in history:
        panels.append(("lr", "learning rate"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4))
    for ax, (columns, label) in zip(np.atleast_1d(axes), panels):
        for column in [columns] if isinstance(columns, str) else columns:
            ax.plot(history["epoch"], history[column], marker="o", markersize=2.5,
                    label=column.replace("valid_", "valid "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if not isinstance(columns, str):
            best = history["valid_NDCG@10"].idxmax()
            ax.axvline(history.loc[best, "epoch"], color="grey", linestyle=":", linewidth=1)
            ax.legend(frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _plot_runs(histories, column: str, ax, title: str | None):
    """One panel of :func:`plot_training_history`: ``column`` of each run, one line per run."""
    ax = axes_or_new(ax, (6.5, 3.8))
    for (label, history), marker in zip(histories.items(), "osD^v<>"):
        if column not in history:
            raise InvalidArgumentError(f"{label!r} has no column {column!r}; it has {list(history.columns)}.")
        epochs = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)
        values = history[column].to_numpy()
        ax.plot(epochs, values, marker=marker, label=f"{label} (last: {values[-1]:.3g})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ylabel = "training loss (cross-entropy per position)" if column == "loss" else column.replace("_", " ")
    ax.set(xlabel="epoch", ylabel=ylabel, title=title or ("Training loss" if column == "loss" else ylabel))
    ax.legend()
    return ax


def plot_number_lines(limits: pd.DataFrame, marks: dict[str, float] | None = None,
                      zoom: tuple[int, int] = (-10, 6)):
    """Each float format's positive numbers on a log axis: subnormal range, normal range, largest value.

    ``limits`` has one row per format (the index names it) and the columns
    ``smallest subnormal``, ``smallest normal`` and ``largest``; ``marks``
    draws a dashed vertical line at each named value (gradient magnitudes, say).
    The top panel shows every format's whole range, the bottom one the decades
    ``zoom`` (powers of ten), where fp16's small numbers end.
    """
    set_style()
    fig, axes = plt.subplots(2, 1, figsize=(10, 1.5 * len(limits) + 2.2),
                             gridspec_kw={"height_ratios": [1, 1]})
    colours = sns.color_palette("deep")
    for ax, (first, last), step in ((axes[0], (-53, 44), 10), (axes[1], zoom, 2)):
        for row, (name, limit) in enumerate(limits.iterrows()):
            y = len(limits) - 1 - row
            low, normal, high = (float(np.log10(limit[c])) for c in
                                 ("smallest subnormal", "smallest normal", "largest"))
            ax.barh(y, normal - low, left=low, height=0.5, color=colours[0], alpha=0.35,
                    label="subnormal range" if row == 0 else None)
            ax.barh(y, high - normal, left=normal, height=0.5, color=colours[0],
                    label="normal range" if row == 0 else None)
            labels = ((low, -0.012, "right", "center", 0.0), (normal, 0.0, "center", "bottom", 0.3),
                      (high, 0.012, "left", "center", 0.0))
            for value, shift, ha, va, up in labels:
                if first <= value <= last:  # label only the limits inside this panel
                    ax.text(value + shift * (last - first), y + up, f"{10 ** value:.2g}", ha=ha, va=va,
                            fontsize=8)
        for (label, value), colour in zip((marks or {}).items(), colours[1:]):
            ax.axvline(np.log10(value), color=colour, linestyle="--", linewidth=1.2, label=f"gradient {label}")
        ax.set_yticks(range(len(limits)), list(limits.index)[::-1])
        ax.set_ylim(-0.6, len(limits) - 0.1)
        ax.set_xlim(first, last)
        ticks = np.arange(-(-first // step) * step, last + 1, step)
        ax.set_xticks(ticks, [f"1e{t}" for t in ticks])
        ax.grid(axis="y", visible=False)
    axes[0].set_title("every format's positive numbers (log scale; zero lies beyond the left end)")
    axes[1].set_title(f"zoom: 1e{zoom[0]} to 1e{zoom[1]}")
    axes[1].set_xlabel("magnitude")
    axes[1].legend(frameon=False, fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    fig.tight_layout()
    return fig


def plot_precision_comparison(table: pd.DataFrame):
    """Bars of seconds per epoch and peak memory for each preset and precision (``recnb.teaching.benchmark``)."""
    set_style()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, column, label in ((axes[0], "seconds_per_epoch", "seconds per epoch"),
                              (axes[1], "peak_memory_mib", "peak memory (MiB)")):
        sns.barplot(data=table, x="preset", y=column, hue="precision", ax=ax)
        ax.set_ylabel(label)
        ax.set_xlabel("")
        for container in ax.containers:
            ax.bar_label(container, fmt="%.0f", fontsize=8)
    axes[1].get_legend().remove()
    sns.move_legend(axes[0], "lower center", bbox_to_anchor=(1.1, 1.0), ncol=2, title=None, frameon=False)
    fig.tight_layout()
    return fig


def plot_gradient_agreement(large: np.ndarray, accumulated: np.ndarray, ax=None):
    """Each gradient entry of one large batch against the same entry after accumulation."""
    set_style()
    ax = ax or plt.subplots(figsize=(4.2, 4))[1]
    ax.scatter(large, accumulated, s=3, alpha=0.4)
    low, high = float(min(large.min(), accumulated.min())), float(max(large.max(), accumulated.max()))
    ax.plot([low, high], [low, high], color="grey", linewidth=1, linestyle="--")
    ax.set_xlabel("gradient, one batch of K x B users")
    ax.set_ylabel("gradient, K micro-batches accumulated")
    return ax


def plot_learning_rate_schedule(epochs: int, steps_per_epoch: int, warmup_epochs: float, base_lr: float, ax=None):
    """The constant and the warm-up + cosine schedules over a run, as :func:`recnb.models.training.learning_rate_curve`
    gives them."""
    set_style()
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    for schedule in ("constant", "cosine"):
        lr = learning_rate_curve(epochs, steps_per_epoch, warmup_epochs, base_lr, schedule)
        ax.plot(np.arange(len(lr)) / steps_per_epoch, lr, label=schedule)  # x: the epoch of each step
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.legend(frameon=False)
    return ax


def plot_recipe_comparison(logs, reference_ndcg: float | None = None):
    """Validation NDCG@10 and training loss per epoch for several training runs (``recnb.teaching.training_logs``),
    the best epoch of each marked; ``reference_ndcg`` draws a dashed line (for example a published figure)."""
    set_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    palette = sns.color_palette("colorblind", len(logs))
    for log, colour in zip(logs, palette):
        history, best = log.history, log.best
        left.plot(history["epoch"], history["valid_NDCG@10"], color=colour, label=log.name)
        left.plot(best["epoch"], best["valid_NDCG@10"], "o", color=colour, markersize=6)
        right.plot(history["epoch"], history["loss"], color=colour, label=log.name)
    if reference_ndcg is not None:
        left.axhline(reference_ndcg, color="grey", linestyle="--", linewidth=1)
    left.set(xlabel="epoch", ylabel="validation NDCG@10", title="validation (dot: best epoch, the one kept)")
    right.set(xlabel="epoch", ylabel="training loss (with dropout)", title="training loss")
    low = min(log.history["valid_NDCG@10"].max() for log in logs)
    left.set_ylim(low - 0.03, max(log.history["valid_NDCG@10"].max() for log in logs) + 0.005)
    right.set_ylim(top=min(log.history["loss"].iloc[min(2, len(log.history) - 1)] for log in logs))
    left.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_quality_over_time(curves: pd.DataFrame, metric: str = "valid_HR@10", target: float | None = None,
                           budget_minutes: float | None = None, ax=None):
    """Validation quality against wall-clock minutes, one line per run (``training_logs.quality_over_time``),
    with the ``target`` as a dashed line and the time budget as a dotted one."""
    ax = axes_or_new(ax, figsize=(7, 3.8))
    sns.lineplot(data=curves, x="minutes", y=metric, hue="run", marker="o", markersize=3, ax=ax)
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1)
        ax.text(ax.get_xlim()[1], target, f" {target:g}", va="center", color="grey")
    if budget_minutes is not None:
        ax.axvline(budget_minutes, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("wall-clock minutes since the run started")
    ax.set_ylabel(metric.replace("valid_", "validation "))
    ax.legend(title=None, fontsize=8)
    return ax


def plot_against_seed_band(band: pd.DataFrame, logs, metric: str = "valid_NDCG@10", ax=None):
    """Runs' ``metric`` per epoch over the grey band of a recipe's seeds (``training_logs.seed_band``): a run
    inside the band is not told apart from the recipe by this many seeds."""
    ax = axes_or_new(ax, figsize=(7, 3.8))
    runs = int(band["runs"].iloc[0]) if len(band) else 0
    ax.fill_between(band.index, band["low"], band["high"], color="grey", alpha=0.35, linewidth=0,
                    label=f"the recipe's {runs} seeds, lowest to highest")
    for log, colour in zip(logs, sns.color_palette("colorblind", len(logs))):
        ax.plot(log.history["epoch"], log.history[metric], color=colour, label=log.name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("valid_", "validation "))
    ax.legend(fontsize="small")
    return ax
