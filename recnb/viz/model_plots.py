"""The figures of the SASRec notebooks (06 onwards): the block diagram, embeddings, masks, attention, parameters
(training curves are :func:`recnb.viz.training_plots.plot_training_history`).

Like :mod:`recnb.viz.data_plots` (whose style and colours they share), every function
takes plain data or a model, draws, and returns the Axes (or the Figure, for
several panels) without showing it: the notebook calls ``plt.show()``, a test
inspects what was drawn. Nothing here trains or changes a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.colors import ListedColormap
from matplotlib.patches import FancyBboxPatch, Patch

from recnb.models.sasrec import attention_mask, embedding_components
from recnb.viz import data_plots as plots
from recnb.viz.baseline_plots import shorten
from recnb.viz.data_plots import PALETTE, axes_or_new  # the series' colours and style


def _figure(*args, **kwargs):
    plots.ensure_style()
    return plt.subplots(*args, layout="constrained", **kwargs)


def _numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=float)


def _position_labels(length: int, labels: Sequence[str] | None, max_label: int) -> list[str]:
    if labels is None:
        return [str(i) for i in range(length)]
    if len(labels) != length:
        raise ValueError(f"{len(labels)} labels for {length} positions: give one label per position.")
    return [shorten(label, max_label) for label in labels]


# ----------------------------------------------------------------------------- embedding fusion
def plot_embedding_components(model, history, labels: Sequence[str] | None = None, dims: int = 16,
                              max_label: int = 25):
    """Embedding fusion as a picture: item + position + genre + year = the input, one heatmap per part.

    The parts are :func:`recnb.models.sasrec.embedding_components`.

    Rows are the positions of ``history`` (labelled with ``labels``, e.g. film
    titles, or the item ids), columns the first ``dims`` of the D dimensions.
    All panels share one colour scale, so equal rows (two films of one genre)
    look equal and the sum is visibly the cell-by-cell total.
    """
    parts = embedding_components(model, history)
    history = torch.as_tensor(history).reshape(-1).tolist()
    if labels is None:
        labels = [f"item {i}" for i in history]
    names = _position_labels(len(history), labels, max_label)
    first = model.config.max_len - len(history)
    names = [f"{name}  [pos {first + row}]" for row, name in enumerate(names)]
    shown = {name: _numpy(values[:, :dims]) for name, values in parts.items()}
    limit = max(float(np.abs(v).max()) for v in shown.values()) or 1.0
    width = 3.2 + len(shown) * (0.6 + 0.09 * min(dims, model.config.d_model)) + 1.0
    fig, axes = _figure(1, len(shown), figsize=(width, 0.32 * len(history) + 1.8), sharey=True)
    symbols = ["+"] * (len(shown) - 2) + ["="]
    for index, (ax, (name, values)) in enumerate(zip(axes, shown.items())):
        image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        ax.set_title(f"{name}\n{tuple(parts[name].shape)}", fontsize=10)
        ax.set_xticks([0, values.shape[1] - 1], ["0", str(values.shape[1] - 1)])
        ax.set_xlabel("dimension")
        ax.grid(False)
        if index < len(symbols):
            ax.annotate(symbols[index], (1.0, 0.5), xycoords="axes fraction", xytext=(6, 0),
                        textcoords="offset points", fontsize=18, fontweight="bold", va="center")
    axes[0].set_yticks(np.arange(len(names)), names)
    fig.colorbar(image, ax=axes, shrink=0.8, label="value")
    fig.suptitle(f"Embedding fusion for {len(history)} positions (first {min(dims, model.config.d_model)} "
                 f"of {model.config.d_model} dimensions shown)")
    return fig


# ----------------------------------------------------------------------------- masks
#: The three states a (query, key) pair can have in the combined mask.
MASK_COLORS = {"blocked": (0.93, 0.93, 0.93), "may attend": PALETTE[0],
               "only by the diagonal rule": PALETTE[1]}
_MASK_CMAP = ListedColormap(list(MASK_COLORS.values()))


def _draw_mask(ax, codes: np.ndarray, tick_labels: list[str], title: str) -> None:
    ax.imshow(codes, cmap=_MASK_CMAP, vmin=-0.5, vmax=len(MASK_COLORS) - 0.5, interpolation="nearest")
    ax.set_xticks(np.arange(len(tick_labels)), tick_labels, rotation=90)
    ax.set_yticks(np.arange(len(tick_labels)), tick_labels)
    ax.set_xticks(np.arange(-0.5, len(tick_labels), 1), minor=True)
    ax.set_yticks(np.arange(-0.5, len(tick_labels), 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.grid(which="major", visible=False)
    ax.tick_params(which="minor", length=0)
    ax.set_title(title, fontsize=10)


def plot_attention_masks(histories, users: Sequence[int] | None = None):
    """The causal mask, the key-padding mask and their combination, for a left-padded batch.

    One row of three heatmaps per user (all users of ``histories``, a (B, L)
    batch of item ids, unless ``users`` picks some). Row i is the query
    position, column j the key: blue where i may attend to j. The combined
    mask is :func:`recnb.models.sasrec.attention_mask`; the cells it allows only
    because every position may see itself (padding queries that would
    otherwise see nothing) are orange.
    """
    histories = torch.as_tensor(np.asarray(histories), dtype=torch.long)
    if histories.dim() == 1:
        histories = histories[None]
    users = list(range(len(histories))) if users is None else list(users)
    length = histories.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool).tril()                 # (L, L)
    combined = attention_mask(histories)[:, 0]                                   # (B, L, L)
    fig, axes = _figure(len(users), 3, figsize=(3.2 * 3 + 0.6, 3.2 * len(users) + 0.9), squeeze=False)
    for row, user in zip(axes, users):
        real_key = (histories[user] != 0)[None, :].expand(length, length)        # (L, L), same for every query
        by_rule = combined[user] & ~(causal & real_key)                           # the diagonal rule's cells
        ticks = ["pad" if i == 0 else str(i) for i in histories[user].tolist()]
        n_pad = int((histories[user] == 0).sum())
        panels = (
            (causal.long(), "causal: key j ≤ query i"),
            (real_key.long(), f"key padding: key is an item\n({n_pad} padding position{'s' * (n_pad != 1)})"),
            (combined[user].long() + by_rule.long(), "combined (attention_mask)"),
        )
        for ax, (codes, title) in zip(row, panels):
            _draw_mask(ax, codes.numpy(), ticks, title)
        row[0].set_ylabel(f"user {user}: query i")
    for ax in axes[-1]:
        ax.set_xlabel("key j")
    handles = [Patch(color=color, label=label) for label, color in MASK_COLORS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False)
    return fig


# ----------------------------------------------------------------------------- attention weights
def plot_attention_weights(weights, labels: Sequence[str] | None = None, ax=None, mask=None,
                           title: str | None = None, max_label: int = 25, annotate: bool | None = None,
                           max_ticks: int = 40):
    """One head's (L, L) attention weights as a heatmap: row = query (the position predicting), column = key.

    Cells the mask blocks are left grey and hatched, so the causal triangle
    shows; ``mask`` is a boolean (L, L) with True where attention is allowed,
    and by default every exact zero counts as blocked (a softmax gives exactly
    0 only to masked keys). ``labels`` (e.g. film titles) are shortened to
    ``max_label`` characters; beyond ``max_ticks`` positions only every n-th is
    labelled. ``annotate`` writes the weights in the cells (default: up to 12 positions).
    """
    values = _numpy(weights)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"weights has shape {values.shape}; expected one head's (L, L).")
    length = len(values)
    blocked = (values == 0) if mask is None else ~np.asarray(mask, dtype=bool)
    names = _position_labels(length, labels, max_label)
    annotate = length <= 12 if annotate is None else annotate
    size = min(0.38 * length + 3.0, 14)
    ax = axes_or_new(ax, (size + 1.8 + (1.2 if labels is not None else 0), size + (1.0 if labels is not None else 0)))
    step = max(1, int(np.ceil(length / max_ticks)))
    sns.heatmap(values, mask=blocked, ax=ax, cmap="rocket_r", vmin=0, vmax=max(float(values.max()), 1e-9),
                square=True, annot=annotate, fmt=".2f", annot_kws={"fontsize": 7},
                xticklabels=step, yticklabels=step, cbar_kws={"label": "attention weight", "shrink": 0.6})
    ax.set_xticks(np.arange(0, length, step) + 0.5, names[::step], rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticks(np.arange(0, length, step) + 0.5, names[::step], rotation=0)
    ax.set_facecolor((0.9, 0.9, 0.9))
    ax.add_patch(plt.Rectangle((0, 0), length, length, fill=False, hatch="//", edgecolor="white", linewidth=0,
                               zorder=0))
    ax.grid(False)
    ax.set(xlabel="key: position attended to", ylabel="query: position predicting the next item",
           title=title or f"Attention weights ({length} positions; grey: masked)")
    return ax


# ----------------------------------------------------------------------------- parameters
def plot_parameter_counts(counts_by_preset: Mapping[str, Mapping[str, int]]):
    """Parameters per part of the model, one panel per preset (each on its own scale).

    ``counts_by_preset`` maps a preset name to :func:`recnb.models.sasrec.count_parameters`'s
    dict; its ``"total"`` goes in the title and each bar says its share of it.
    Every panel lists the same parts, a part the preset does not have as "none".
    """
    parts = list(dict.fromkeys(name for counts in counts_by_preset.values() for name in counts if name != "total"))
    fig, axes = _figure(1, len(counts_by_preset), figsize=(6.2 * len(counts_by_preset), 0.42 * len(parts) + 1.6),
                        sharey=True, squeeze=False)
    for ax, (preset, counts) in zip(axes[0], counts_by_preset.items()):
        total = counts.get("total") or sum(v for k, v in counts.items() if k != "total")
        heights = [counts.get(name, 0) for name in parts]
        ax.barh(np.arange(len(parts)), heights, color=[PALETTE[0] if h else PALETTE[7] for h in heights])
        for y, (name, height) in enumerate(zip(parts, heights)):
            share = height / total
            text = f" {height:,} ({share:.0%})" if share >= 0.01 else f" {height:,} (<1%)"
            text = text if name in counts else " none"
            ax.text(height, y, text, va="center", fontsize=9)
        ax.set_xlim(0, 1.45 * max(heights))
        ax.set_yticks(np.arange(len(parts)), parts)
        ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k" if x else "0")
        ax.set(xlabel="parameters", title=f"{preset}: {total:,} parameters")
    axes[0, 0].invert_yaxis()  # the first part at the top (the panels share the y axis: invert once)
    return fig


# ----------------------------------------------------------------------------- the whole model
def _box(ax, x: float, y: float, width: float, height: float, text: str, color, fontsize: float = 10) -> None:
    """A rounded box centred at (x, y) with ``text`` in it."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.02,rounding_size=0.15", facecolor=color, edgecolor="0.25",
                                linewidth=1.2, zorder=2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], **style) -> None:
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops=dict(arrowstyle="-|>", color=style.pop("color", "0.2"), lw=1.4, shrinkA=0, shrinkB=0,
                                **style))


def _plus(ax, x: float, y: float, radius: float = 0.28) -> None:
    ax.add_patch(plt.Circle((x, y), radius, facecolor="white", edgecolor="0.2", linewidth=1.4, zorder=2))
    ax.text(x, y, "+", ha="center", va="center", fontsize=15, fontweight="bold", zorder=3)


def plot_sasrec_diagram(config, ax=None):
    """SASRec as a block diagram, drawn from a :class:`recnb.models.sasrec.SASRecConfig` (bottom to top, as data flows).

    It draws what :class:`recnb.models.sasrec.SASRec` computes: the summed input
    embeddings (genre and year only when the config uses them), dropout,
    ``n_layers`` pre-LayerNorm blocks (x + dropout(attention(LN(x))), then
    x + dropout(feed-forward(LN(x)))), the final LayerNorm, the hidden states h
    and the scores h · Eᵀ with the item embedding E (or a separate output layer
    when ``tied_head`` is off). Sizes in the boxes come from ``config``.
    """
    D, V, H = config.d_model, config.n_items + 1, config.n_heads
    hidden = config.ffn_multiplier * D
    ax = axes_or_new(ax, (9.5, 12.5))
    blue, orange, green, grey, red = (tuple(0.55 + 0.45 * c for c in PALETTE[i]) for i in (0, 1, 2, 7, 3))
    centre, width = 6.0, 5.6

    # inputs: one embedding table per feature, summed
    inputs = [("item id", f"E: {V:,} × {D}", blue), ("position\n(from the right)", f"{config.max_len} × {D}", blue)]
    if config.use_genre and config.n_genres:
        inputs.append(("primary genre", f"{config.n_genres} × {D}", blue))
    if config.use_year and config.n_year_buckets:
        inputs.append(("year bucket", f"{config.n_year_buckets} × {D}", blue))
    xs = np.linspace(2.6, 9.4, len(inputs)) if len(inputs) > 1 else np.array([centre])
    for x, (name, shape, color) in zip(xs, inputs):
        _box(ax, x, 0.9, 2.0, 1.1, f"{name}\nembedding\n{shape}", color, fontsize=8.5)
        _arrow(ax, (x, 1.45), (centre, 2.1))
    _plus(ax, centre, 2.4)
    _box(ax, centre, 3.35, 2.6, 0.55, "dropout", grey)
    _arrow(ax, (centre, 2.68), (centre, 3.07))

    # the block, repeated n_layers times
    bottom, top = 4.1, 13.7
    ax.add_patch(FancyBboxPatch((centre - width / 2 - 1.0, bottom), width + 2.0, top - bottom,
                                boxstyle="round,pad=0.05,rounding_size=0.3", facecolor=(0.97, 0.97, 0.97),
                                edgecolor="0.45", linewidth=1.2, linestyle="--", zorder=0))
    ax.text(centre + width / 2 + 1.25, (bottom + top) / 2,
            f"× {config.n_layers} block{'s' * (config.n_layers != 1)}\n(pre-LayerNorm\nTransformer block)",
            ha="left", va="center", fontsize=10.5, fontweight="bold")
    _arrow(ax, (centre, 3.63), (centre, 4.75))
    steps = [  # (y, height, text, colour); residual sums at 8.45 and 13.05
        (5.05, 0.55, "LayerNorm", green),
        (6.35, 1.3, f"multi-head causal self-attention\n{H} head{'s' * (H != 1)} × {D // H} = {D}\n"
                    "mask: causal + padding (+ diagonal)", orange),
        (7.55, 0.55, "dropout", grey),
        (9.35, 0.55, "LayerNorm", green),
        (10.65, 1.3, f"feed-forward, at each position\nLinear {D} → {hidden} · GELU ·\nLinear {hidden} → {D}",
         orange),
        (11.85, 0.55, "dropout", grey),
    ]
    for y, height, text, color in steps:
        _box(ax, centre, y, width, height, text, color, fontsize=9.5)
    edges = [(5.325, 5.7), (7.0, 7.275), (7.825, 8.17), (8.73, 9.075), (9.625, 10.0), (11.3, 11.575),
             (12.125, 12.77)]
    for start, end in edges:
        _arrow(ax, (centre, start), (centre, end))
    for y in (8.45, 13.05):
        _plus(ax, centre, y)
    # residual paths: around each sub-layer, from its input to the sum
    left = centre - width / 2 - 0.55
    for start, end in ((4.45, 8.45), (8.73 + 0.12, 13.05)):
        ax.plot([centre, left, left], [start, start, end], color=PALETTE[3], lw=1.6, zorder=1)
        _arrow(ax, (left, end), (centre - 0.28, end), color=PALETTE[3])
        ax.text(left - 0.1, (start + end) / 2, "residual", rotation=90, ha="right", va="center",
                fontsize=9, color=PALETTE[3])

    # after the blocks: final norm, hidden states, scores
    _arrow(ax, (centre, 13.33), (centre, 14.3))
    _box(ax, centre, 14.6, width, 0.55, "final LayerNorm", green)
    _arrow(ax, (centre, 14.875), (centre, 15.35))
    _box(ax, centre, 15.65, width, 0.6, f"h: one {D}-number vector per position  (B, L, {D})", grey)
    _arrow(ax, (centre, 15.95), (centre, 16.45))
    bias = " + b" if config.item_bias else ""   # b: a learned score of each item (item_bias)
    head = (f"scores = h · Eᵀ{bias}  (B, L, {V:,})\none score per item id (the item embedding again)"
            if config.tied_head else f"scores = separate Linear {D} → {V:,}  (B, L, {V:,})\none score per item id")
    _box(ax, centre, 16.9, width, 0.9, head, red)
    if config.tied_head:  # the same matrix E feeds the input and scores the output
        x0 = xs[0] - 1.0
        ax.plot([x0, 0.35, 0.35], [0.9, 0.9, 16.9], color=PALETTE[0], lw=1.6, ls="--", zorder=1)
        _arrow(ax, (0.35, 16.9), (centre - width / 2, 16.9), color=PALETTE[0], ls="--")
        ax.text(0.5, 10.0, "the same matrix E (tied weights)", rotation=90, ha="left", va="center", fontsize=9,
                color=PALETTE[0])
    ax.set(xlim=(0, 12.3), ylim=(0.2, 17.5), title=f"SASRec as built by recnb (d_model = {D})")
    ax.set_aspect("equal")
    ax.axis("off")
    return ax
