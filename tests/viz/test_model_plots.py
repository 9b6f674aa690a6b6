"""Each figure in recnb.viz.model_plots draws what its name says, checked on tiny models built here."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from recnb.models.sasrec import (  # noqa: E402
    attention_mask,
    count_parameters,
)
from recnb.viz import model_plots  # noqa: E402
from recnb.viz.baseline_plots import shorten  # noqa: E402
from tests.helpers import TINY_N_ITEMS, tiny_sasrec  # noqa: E402

pytestmark = pytest.mark.usefixtures("close_figures")  # the fixture is in tests/conftest.py


def heatmap_axes(fig) -> list:
    return [ax for ax in fig.axes if ax.images]


# ----------------------------------------------------------------------------- embedding fusion
def test_plot_embedding_components_draws_one_heatmap_per_part_with_the_labels():
    model = tiny_sasrec()
    titles = ["A film with a title far longer than twenty-five characters (1999)", "Short (1995)", "Third (1990)"]
    fig = model_plots.plot_embedding_components(model, [3, 4, 5], labels=titles, dims=8)
    axes = heatmap_axes(fig)
    assert [ax.get_title().split("\n")[0] for ax in axes] == ["item", "position", "genre", "year", "sum"]
    assert all(ax.images[0].get_array().shape == (3, 8) for ax in axes)
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert len(labels) == 3 and labels[1] == "Short (1995)  [pos 10]"
    assert labels[0] == f"{shorten(titles[0], 25)}  [pos 9]" and len(shorten(titles[0], 25)) <= 25
    # the sum panel shows the cell-by-cell total of the other four
    arrays = [np.asarray(ax.images[0].get_array()) for ax in axes]
    np.testing.assert_allclose(sum(arrays[:4]), arrays[4], atol=1e-6)


# ----------------------------------------------------------------------------- masks
def test_plot_attention_masks_draws_causal_padding_and_combined_for_every_user():
    histories = torch.tensor([[0, 0, 3, 4], [0, 5, 6, 7]])
    fig = model_plots.plot_attention_masks(histories)
    axes = heatmap_axes(fig)
    assert len(axes) == 6  # 2 users x (causal, key padding, combined)
    codes = [np.asarray(ax.images[0].get_array()) for ax in axes]
    np.testing.assert_array_equal(codes[0], np.tril(np.ones((4, 4))))              # causal
    np.testing.assert_array_equal(codes[1], np.tile([0, 0, 1, 1], (4, 1)))         # user 0's key padding
    combined = attention_mask(histories)[0, 0].numpy()
    np.testing.assert_array_equal(codes[2] > 0, combined)                           # what attention_mask returns
    # the two padding queries of user 0 see themselves only, through the diagonal rule (code 2)
    assert codes[2][0, 0] == codes[2][1, 1] == 2 and (codes[2] == 2).sum() == 2
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["pad", "pad", "3", "4"]
    assert len(fig.legends) == 1


def test_plot_attention_masks_accepts_one_history():
    fig = model_plots.plot_attention_masks(torch.tensor([0, 1, 2]))
    assert len(heatmap_axes(fig)) == 3


# ----------------------------------------------------------------------------- attention weights
def attention_weights(model, histories):
    with torch.no_grad():
        _, weights = model(histories, return_attention=True)
    return weights[0][0, 0]  # first layer, first user, first head: (L, L)


def test_plot_attention_weights_shows_the_weights_and_greys_out_masked_cells():
    model = tiny_sasrec()
    histories = torch.tensor([[0, 0, 3, 4, 5, 6]])
    weights = attention_weights(model, histories)
    titles = ["<pad>", "<pad>", "Star Wars: Episode IV - A New Hope (1977)", "Toy Story (1995)", "Fargo (1996)",
              "Heat (1995)"]
    ax = model_plots.plot_attention_weights(weights, labels=titles)
    drawn = ax.collections[0].get_array()
    assert drawn.shape == (36,) or drawn.shape == (6, 6)
    drawn = np.ma.asarray(drawn).reshape(6, 6)
    blocked = ~attention_mask(histories)[0, 0].numpy()
    np.testing.assert_array_equal(np.ma.getmaskarray(drawn), blocked)              # masked cells not coloured
    assert (weights.numpy()[blocked] == 0).all()                                    # and they are exactly zero
    np.testing.assert_allclose(drawn.compressed(), weights.numpy()[~blocked], atol=1e-6)
    assert np.triu(blocked, 1)[np.triu_indices(6, 1)].all()                         # the causal triangle shows
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert len(ticks) == 6 and ticks[3] == "Toy Story (1995)"
    assert ticks[2] == shorten(titles[2], 25) and len(ticks[2]) <= 25 and "…" in ticks[2]   # shortened
    assert [t.get_text() for t in ax.get_yticklabels()] == ticks
    assert len(ax.texts) == (~blocked).sum() == 12                                  # allowed cells annotated


def test_plot_attention_weights_without_labels_thins_ticks_for_long_sequences_and_checks_its_input():
    weights = torch.tril(torch.ones(60, 60))
    weights = weights / weights.sum(-1, keepdim=True)
    ax = model_plots.plot_attention_weights(weights, max_ticks=20)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == [str(i) for i in range(0, 60, 3)]
    assert len(ax.texts) == 0                                                       # too many cells to annotate
    with pytest.raises(ValueError, match="one head"):
        model_plots.plot_attention_weights(torch.ones(2, 3, 3))
    with pytest.raises(ValueError, match="one label per position"):
        model_plots.plot_attention_weights(weights[:3, :3], labels=["a", "b"])


def test_plot_attention_weights_takes_an_explicit_mask_and_an_axes():
    weights = np.full((3, 3), 1 / 3)
    fig, ax = plt.subplots()
    mask = np.tril(np.ones((3, 3), dtype=bool))
    assert model_plots.plot_attention_weights(weights, ax=ax, mask=mask, title="mine") is ax
    assert ax.get_title() == "mine"
    assert np.ma.getmaskarray(np.ma.asarray(ax.collections[0].get_array()).reshape(3, 3)).sum() == 3


# ----------------------------------------------------------------------------- parameters
def test_plot_parameter_counts_draws_every_part_of_every_preset():
    counts = {"quick": count_parameters(tiny_sasrec("quick")),
              "untied": count_parameters(tiny_sasrec("quick", tied_head=False))}
    fig = model_plots.plot_parameter_counts(counts)
    assert len(fig.axes) == 2
    parts = [name for name in counts["untied"] if name != "total"]
    for ax, (preset, preset_counts) in zip(fig.axes, counts.items()):
        assert len(ax.patches) == len(parts)                                         # one bar per part
        heights = dict(zip(parts, (bar.get_width() for bar in ax.patches)))  # bars in the order of the parts
        assert heights["item embedding"] == preset_counts["item embedding"]
        assert ax.get_title() == f"{preset}: {preset_counts['total']:,} parameters"
        assert heights["output head (separate)"] == preset_counts.get("output head (separate)", 0)
    # the tied model has no separate head: a bar of zero, labelled "none"
    assert "output head (separate)" not in counts["quick"]
    assert " none" in [t.get_text() for t in fig.axes[0].texts]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][0] == "item embedding"  # first part on top
    assert fig.axes[0].get_ylim()[0] > fig.axes[0].get_ylim()[1]


def diagram_texts(config) -> list[str]:
    return [text.get_text() for text in model_plots.plot_sasrec_diagram(config).texts]


def test_plot_sasrec_diagram_draws_the_configs_blocks_sizes_and_tied_scores():
    config = tiny_sasrec("compact", max_len=200).config
    texts = diagram_texts(config)
    joined = "\n".join(texts)
    assert f"× {config.n_layers} blocks" in joined
    assert sum(text == "LayerNorm" for text in texts) == 2 and "final LayerNorm" in texts   # pre-LN: two per block
    assert f"{config.n_heads} heads × {config.d_model // config.n_heads} = {config.d_model}" in joined
    assert f"Linear {config.d_model} → {config.ffn_multiplier * config.d_model}" in joined
    assert f"E: {TINY_N_ITEMS + 1:,} × {config.d_model}" in joined
    assert "genre" in joined and "year bucket" in joined
    assert f"h · Eᵀ  (B, L, {TINY_N_ITEMS + 1:,})" in joined and "tied weights" in joined
    assert sum(text == "residual" for text in texts) == 2


def test_plot_sasrec_diagram_leaves_out_unused_features_and_shows_a_separate_head():
    config = tiny_sasrec("quick", use_genre=False, use_year=False, tied_head=False, n_layers=1).config
    joined = "\n".join(diagram_texts(config))
    assert "genre" not in joined and "year" not in joined
    assert "× 1 block\n" in joined
    assert "separate Linear" in joined and "tied weights" not in joined
