"""Each figure in recnb.viz.data_plots draws what its name says, checked on small data the tests build."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from recnb.data.preprocess import kcore_filter  # noqa: E402
from recnb.data.readers import read_release  # noqa: E402
from recnb.data.sequences import item_interaction_counts, top_share  # noqa: E402
from recnb.viz import data_plots as plots  # noqa: E402

pytestmark = pytest.mark.usefixtures("close_figures")  # the fixture is in tests/conftest.py


@pytest.fixture(scope="module")
def synthetic_raw(synthetic_dir):
    return read_release("ml-1m", synthetic_dir)


def bar_heights(ax) -> np.ndarray:
    return np.array([p.get_height() for p in ax.patches])


def test_interactions_per_user_is_a_log_histogram_of_every_user(synthetic):
    ax = plots.plot_interactions_per_user(synthetic)
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "interactions per user (log scale)"
    assert bar_heights(ax).sum() == synthetic.n_users
    median = np.median([len(s) for s in synthetic.sequences])
    assert ax.texts[0].get_text() == f"median {median:,.0f}"
    # the same picture from the lengths themselves
    lengths = [len(s) for s in synthetic.sequences]
    assert bar_heights(plots.plot_interactions_per_user(lengths)).sum() == len(lengths)


def test_item_interaction_counts_and_top_share():
    counts = item_interaction_counts([np.array([1, 2, 2]), np.array([2, 3])])
    np.testing.assert_array_equal(counts, [1, 3, 1])
    # 10 items, the top 10 % is one item with 10 of 19 interactions
    assert top_share([1] * 9 + [10], 0.1) == pytest.approx(10 / 19)


def test_item_popularity_draws_the_sorted_counts_and_annotates_the_head_share(synthetic):
    counts = item_interaction_counts(synthetic)
    assert len(counts) == synthetic.n_items and counts.sum() == synthetic.n_interactions
    ax = plots.plot_item_popularity(counts)
    assert ax.get_yscale() == "log"
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), np.maximum(np.sort(counts)[::-1], 1))
    ordered = np.sort(counts)[::-1]
    top = int(np.ceil(0.1 * len(counts)))
    share = ordered[:top].sum() / ordered.sum()
    assert f"({top:,}):\n{share:.1%} of all interactions" in ax.texts[0].get_text()
    assert share > 0.1  # the synthetic popularity is skewed, so the head takes more than its size


def test_genre_counts_compare_every_listed_genre_with_the_primary_one():
    items = pd.DataFrame({
        "item": [0, 1, 2, 3],
        "genres": [(), ("Action", "Drama"), ("Drama",), ("Comedy", "Drama")],
        "primary_genre": pd.array([pd.NA, "Action", "Drama", "Comedy"], dtype="string"),
    })
    ax = plots.plot_genre_counts(items)
    listed, primary = ax.containers
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Drama", "Action", "Comedy"]
    assert [bar.get_width() for bar in listed] == [3, 1, 1]
    assert [bar.get_width() for bar in primary] == [1, 1, 1]
    assert "3 movies" in ax.get_title()  # the padding row (item 0) is not a movie


def test_release_years_count_every_dated_movie_and_mark_the_buckets(synthetic):
    ax = plots.plot_release_years(synthetic)
    dated = synthetic.items["year"].iloc[1:].notna().sum()
    assert bar_heights(ax).sum() == dated
    assert ax.get_xlabel() == "release year"
    boundaries = [line.get_xdata()[0] for line in ax.get_lines()]
    assert 1979.5 in boundaries and 1989.5 in boundaries  # synthetic years run 1960 to 2023


def test_kcore_steps_draw_one_line_per_quantity_with_every_pass(synthetic_raw):
    _, steps = kcore_filter(synthetic_raw.interactions, 20, 20)
    assert len(steps) >= 3  # a strict filter on small data needs more than one pass
    ax = plots.plot_kcore_steps(steps)
    lines = ax.get_lines()
    assert len(lines) == 3
    for line, column in zip(lines, ["users", "items", "interactions"]):
        values = steps[column].to_numpy()
        np.testing.assert_allclose(line.get_ydata(), 100 * values / values[0])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    first, last = steps.iloc[0], steps.iloc[-1]
    assert legend[2] == f"interactions: {first['interactions']:,} → {last['interactions']:,}"
    assert ax.get_title() == f"k-core filter: {len(steps) - 1} passes"


def test_user_timeline_lists_the_last_titles_oldest_first(synthetic):
    user = 3
    sequence = synthetic.sequences[user]
    ax = plots.plot_user_timeline(synthetic, user, last=5)
    titles = synthetic.titles(sequence[-5:])
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 5 + 2  # one per movie, then the validation and test labels
    assert all(text.startswith(title) for text, title in zip(texts, titles))
    assert texts[5:] == ["← validation target", "← test target"]
    assert len(plots.plot_user_timeline(synthetic, user, last=5, mark_split=False).texts) == 5
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"#{p}" for p in range(len(sequence) - 4, len(sequence) + 1)]


def test_leave_one_out_rows_end_with_validation_then_test():
    lengths = [3, 6, 12]
    ax = plots.plot_leave_one_out(lengths, max_len=8)
    grid = np.asarray(ax.images[0].get_array())
    code = {name: i for i, name in enumerate(plots.SPLIT_COLORS)}
    assert grid.shape == (3, 8)
    assert (grid[:, -1] == code["test"]).all() and (grid[:, -2] == code["validation"]).all()
    assert ((grid != code["empty"]).sum(axis=1) == [3, 6, 8]).all()  # the 12-item row is cut to 8
    assert grid[2, 0] == code["not drawn / hidden"]  # ... and its first cell says so
    assert (grid[0, :5] == code["empty"]).all()  # right-aligned: short rows are padded on the left

    left = np.asarray(plots.plot_leave_one_out(lengths, max_len=8, align="left").images[0].get_array())
    np.testing.assert_array_equal(left[0], [1, 2, 3, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="align"):
        plots.plot_leave_one_out(lengths, align="middle")


def test_evaluation_inputs_show_the_validation_item_in_the_test_input_only():
    ax = plots.plot_evaluation_inputs(6)
    grid = np.asarray(ax.images[0].get_array())
    code = {name: i for i, name in enumerate(plots.SPLIT_COLORS)}
    training, validation, test = code["training"], code["validation"], code["test"]
    assert validation not in grid[0] and test not in grid[0]  # training never sees them
    assert grid[1, 4] == validation and test not in grid[1]
    np.testing.assert_array_equal(grid[2], [training] * 4 + [validation, test])
    assert [t.get_text() for t in ax.texts] == ["?", "?"]


def test_ratings_and_time_draw_every_rating(synthetic_raw):
    fig = plots.plot_ratings_and_time(synthetic_raw)
    ratings_ax, time_ax = fig.axes
    n = len(synthetic_raw.interactions)
    assert len(ratings_ax.patches) == synthetic_raw.interactions["rating"].nunique() == 5
    assert bar_heights(ratings_ax).sum() == n
    (line,) = time_ax.get_lines()
    assert line.get_ydata().sum() == n
    assert time_ax.get_ylabel() == "ratings per week"


def test_ratings_and_time_refuse_an_order_only_copy(synthetic_raw):
    no_ratings = synthetic_raw.interactions.assign(
        timestamp=pd.array([pd.NA] * len(synthetic_raw.interactions), dtype="Int64"),
        rating=pd.array([pd.NA] * len(synthetic_raw.interactions), dtype="Float64"),
    )
    order_only = dataclasses.replace(synthetic_raw, interactions=no_ratings)
    with pytest.raises(ValueError, match="no ratings or timestamps"):
        plots.plot_ratings_and_time(order_only)
