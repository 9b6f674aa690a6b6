"""Each figure in recnb.viz.baseline_plots draws what its name says, checked on small data built here."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from recnb.viz import baseline_plots as bp  # noqa: E402

pytestmark = pytest.mark.usefixtures("close_figures")  # the fixture is in tests/conftest.py


def test_shorten_keeps_short_titles_and_the_year_of_long_ones():
    assert bp.shorten("Alien (1979)", 30) == "Alien (1979)"
    short = bp.shorten("Star Wars: Episode IV - A New Hope (1977)", 30)
    assert short == "Star Wars: Episode IV… (1977)" and len(short) <= 30
    assert bp.shorten("no year in this rather long title", 10) == "no year i…"


def test_metric_discounts_draw_the_three_credit_curves():
    ax = bp.plot_metric_discounts(k=5, max_rank=12)
    hr, ndcg, mrr = ax.get_lines()[:3]
    np.testing.assert_array_equal(hr.get_xdata(), np.arange(1, 13))
    np.testing.assert_array_equal(hr.get_ydata(), [1] * 5 + [0] * 7)
    np.testing.assert_allclose(ndcg.get_ydata()[:5], 1 / np.log2(np.arange(2, 7)))
    assert (ndcg.get_ydata()[5:] == 0).all()
    np.testing.assert_allclose(mrr.get_ydata(), 1 / np.arange(1, 13))
    assert ax.get_lines()[3].get_xdata()[0] == 5.5  # the cut-off line
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "HR@5: 1 if rank ≤ 5"


def test_rank_distribution_counts_every_user_and_reports_the_hit_rate():
    ranks = np.array([1, 1, 2, 9, 10, 11, 40, 300, 900, 1000])
    ax = bp.plot_rank_distribution(ranks, k=10, n_candidates=1000, label="toy")
    assert sum(p.get_height() for p in ax.patches) == len(ranks)
    assert ax.get_xscale() == "log"
    assert "HR@10 = 50.0%" in ax.texts[0].get_text()
    green = [p for p in ax.patches if p.get_x() + p.get_width() <= 10.5 and p.get_height() > 0]
    assert sum(p.get_height() for p in green) == 5  # the top-10 users are the highlighted ones
    assert ax.get_title().startswith("toy: ") and "median 10" in ax.get_title()


def test_already_seen_draws_one_bar_per_title_with_its_share():
    titles = ["American Beauty (1999)", "Star Wars: Episode V - The Empire Strikes Back (1980)"]
    ax = bp.plot_already_seen(titles, [0.56, 0.49], max_title=30)
    assert [round(p.get_width(), 2) for p in ax.patches] == [0.56, 0.49]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "American Beauty (1999)" and labels[1].endswith("… (1980)") and len(labels[1]) <= 30
    assert [t.get_text() for t in ax.texts] == [" 56%", " 49%"]


def test_model_comparison_draws_one_labelled_bar_per_cell():
    table = pd.DataFrame({"HR@10": [0.04, 0.19], "NDCG@10": [0.02, 0.11], "MRR": [0.02, np.nan]},
                         index=["popularity", "markov"])
    ax = bp.plot_model_comparison(table, title="test")
    widths = [[bar.get_width() for bar in container] for container in ax.containers]
    np.testing.assert_allclose(widths[0], [0.04, 0.19])
    np.testing.assert_allclose(widths[1], [0.02, 0.11])
    np.testing.assert_allclose(widths[2], [0.02])  # the missing MRR of markov draws no bar
    assert [t.get_text() for t in ax.get_yticklabels()] == ["popularity", "markov"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["HR@10", "NDCG@10", "MRR"]
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["4.0%", "19.0%", "0.020", "0.110", "0.020"]  # HR@10 a percentage, NDCG and MRR fractions
    ax.figure.canvas.draw()
    assert not any("%" in t.get_text() for t in ax.get_xticklabels())  # a fraction axis, too
    assert ax.get_title() == "test"


def test_model_comparison_of_hit_rates_only_keeps_percentages():
    table = pd.DataFrame({"popularity": [0.04, 0.11], "genre": [0.03, 0.0]}, index=["group a", "group b"])
    ax = bp.plot_model_comparison(table)
    assert "11.0%" in [t.get_text() for t in ax.texts]
    ax.figure.canvas.draw()
    assert ax.get_xticklabels()[1].get_text().endswith("%")


def test_genre_votes_count_each_genre_and_highlight_the_favourite():
    data = SimpleNamespace(item_genre=torch.tensor([0, 1, 1, 2, 2, 0]), genre_names=["<none>", "Comedy", "Drama"])
    history = [1, 3, 2, 4, 5]  # Comedy twice (last at #3), Drama twice (last at #4), item 5 has no genre
    ax = bp.plot_genre_votes(data, history, favourite=2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Drama", "Comedy"]  # tie: the more recent first
    assert [p.get_width() for p in ax.patches] == [2, 2]
    colors = [p.get_facecolor() for p in ax.patches]
    assert colors[0] != colors[1]  # the favourite stands out
    assert [t.get_text() for t in ax.texts] == [" 2  (last seen at #4)", " 2  (last seen at #3)"]
    assert "favourite: Drama" in ax.get_title()


def test_transition_heatmap_shows_the_matrix_with_short_labels_and_blank_zeros():
    probabilities = np.array([[0.0, 0.5, 0.25], [0.1, 0.0, 0.0], [0.0, 0.3, 0.0]])
    labels = ["Alien (1979)", "Aliens (1986)", "Alien: Resurrection, a title far too long (1997)"]
    ax = bp.plot_transition_heatmap(probabilities, labels, max_label=24)
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(3, 3), probabilities)
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["", "50%", "25%", "10%", "", "", "", "30%", ""]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[:2] == labels[:2] and ticks[2].endswith("… (1997)") and len(ticks[2]) <= 24
    assert ax.get_ylabel() == "last item watched" and ax.get_xlabel() == "next item"
    with pytest.raises(ValueError, match="expected"):
        bp.plot_transition_heatmap(probabilities, labels[:2])


def test_alpha_sweep_draws_each_metric_the_choice_and_the_references():
    sweep = pd.DataFrame({"HR@10": [0.04, 0.15, 0.19], "NDCG@10": [0.02, 0.09, 0.11]},
                         index=pd.Index([0.0, 0.5, 1.0], name="alpha"))
    ax = bp.plot_alpha_sweep(sweep, chosen=1.0, references={"Markov": 0.19, "popularity": 0.04})
    hr, ndcg = ax.get_lines()[:2]
    np.testing.assert_array_equal(hr.get_xdata(), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(ndcg.get_ydata(), [0.02, 0.09, 0.11])
    assert len(ax.get_lines()) == 2 + 2 + 1  # two metrics, two references, the chosen alpha
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["Markov: HR@10 19.0%", "popularity: HR@10 4.0%", "chosen alpha = 1\nHR@10 19.0%"]
    # each reference is labelled at the end where the curves are far from it: Markov left, popularity right
    assert [t.xy[0] for t in ax.texts[:2]] == [0.02, 0.98]
    assert ax.get_ylim()[1] > 0.19
    assert ax.get_xscale() == "symlog"  # small alphas get room: linear up to the smallest positive alpha
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.5", "1"]
    ax.figure.canvas.draw()
    assert not any("%" in t.get_text() for t in ax.get_yticklabels())  # NDCG is a fraction, not a percentage


def test_alpha_sweep_spreads_a_grid_of_small_alphas():
    alphas = [0.0, 0.005, 0.01, 0.1, 1.0]
    sweep = pd.DataFrame({"HR@10": [0.04, 0.05, 0.06, 0.15, 0.19], "NDCG@10": [0.02, 0.03, 0.03, 0.09, 0.11]},
                         index=pd.Index(alphas, name="alpha"))
    ax = bp.plot_alpha_sweep(sweep)
    to_axes = ax.transAxes.inverted().transform
    x = [to_axes(ax.transData.transform((a, 0.1)))[0] for a in alphas]
    assert x[1] - x[0] > 0.1 and x[2] - x[1] > 0.1  # 0, 0.005 and 0.01 are not crowded together at the left
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2",
                                                            "0.5", "1"]


def test_state_space_draws_possible_and_observed_on_a_log_scale():
    ax = bp.plot_state_space({"first": 100, "second": 10_000}, {"first": 90, "second": 5})
    assert ax.get_xscale() == "log"
    assert [p.get_width() for p in ax.patches] == [100, 10_000, 90, 5]
    texts = [t.get_text() for t in ax.texts]
    assert texts == [" 100", " 90 (90.0%)", " 10,000", " 5 (0.0500%)"]


def test_state_support_gives_the_share_of_states_seen_at_most_x_times():
    ax = bp.plot_state_support({"chain": np.array([0, 1, 1, 2, 4])})  # 0: a row that is no state
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(line.get_ydata(), [0.5, 0.75, 0.75, 1.0])
    assert ax.get_legend().get_texts()[0].get_text() == "chain: 4 states, 50% seen once"
