"""k-core filtering, time order, item ids and metadata lookups, on ML-1M and on small hand-built tables."""

import numpy as np
import pandas as pd
import pytest
import torch

from recnb.data import build_sequences
from recnb.data.preprocess import (
    EmptyDatasetError,
    kcore_filter,
    sort_chronologically,
    year_buckets,
)
from recnb.data.readers import MovieLens, interactions_table, items_table


def test_ml1m_benchmark_counts_after_5core(ml1m):
    assert (ml1m.n_users, ml1m.n_items, ml1m.n_interactions) == (6_040, 3_416, 999_611)
    assert min(len(s) for s in ml1m.sequences) >= 5
    summary = ml1m.summary()
    assert summary.loc["interactions", "before filtering"] == 1_000_209
    assert summary.loc["items", "before filtering"] == 3_706


def test_ml1m_ids_are_contiguous_and_padding_is_zero(ml1m):
    flat = np.concatenate(ml1m.sequences)
    assert flat.min() == 1 and flat.max() == ml1m.n_items
    assert len(np.unique(flat)) == ml1m.n_items
    assert ml1m.item_ids[0] == 0 and np.all(np.diff(ml1m.item_ids) > 0)
    assert ml1m.items.loc[0, "title"] == "<pad>"
    # item id i is the movie with original id item_ids[i]
    toy = int(ml1m.encode_items([1])[0])
    assert ml1m.titles([toy]) == ["Toy Story (1995)"]
    assert ml1m.encode_items([999_999]).tolist() == [0]


def test_ml1m_order_is_file_order_without_timestamps(ml1m, ml1m_raw):
    first_user = ml1m_raw.interactions.query("user == 1")["item"].to_numpy()
    assert ml1m.item_ids[ml1m.sequences[0]].tolist() == first_user.tolist()


def test_kcore_iterates_until_stable():
    # user 3 has 2 items; removing it leaves item 30 with one user, which then falls too,
    # which drops user 2 below two items: three passes for a 2-core.
    inter = interactions_table([1, 1, 1, 2, 2, 3, 3, 4, 4, 4], [10, 20, 40, 20, 30, 30, 50, 10, 20, 40])
    filtered, steps = kcore_filter(inter, 2, 2)
    assert sorted(filtered["user"].unique()) == [1, 4]
    assert (filtered.groupby("user").size() >= 2).all() and (filtered.groupby("item").size() >= 2).all()
    assert steps["step"].tolist() == list(range(len(steps))) and len(steps) >= 3
    assert steps.iloc[-1]["interactions"] == len(filtered)


def test_kcore_that_leaves_nothing_is_a_clear_error():
    inter = interactions_table([1, 2, 3], [10, 20, 30])
    with pytest.raises(EmptyDatasetError, match="removed every interaction"):
        kcore_filter(inter, 5, 5)
    with pytest.raises(ValueError, match="at least 1"):
        kcore_filter(inter, 0, 5)


def test_chronological_sort_is_stable_for_ties():
    inter = interactions_table([2, 1, 1, 1, 2], [5, 3, 1, 2, 4], timestamp=[7, 9, 5, 5, 7])
    ordered = sort_chronologically(inter)
    # user 1: the two items rated at t=5 keep file order (1 before 2), then item 3
    assert ordered.query("user == 1")["item"].tolist() == [1, 2, 3]
    assert ordered.query("user == 2")["item"].tolist() == [5, 4]


def test_year_buckets_bins():
    years = pd.Series([1920, 1979, 1980, 1989, 1990, 2005, 2019, 2020, 2031, None], dtype="Int64")
    assert year_buckets(years).tolist() == [1, 1, 2, 2, 3, 4, 5, 6, 6, 0]


def test_metadata_lookup_tensors_index_by_item_id(ml1m):
    assert ml1m.item_genre.shape == (ml1m.n_items + 1,) and ml1m.item_genre.dtype == torch.int64
    assert ml1m.item_genre[0] == 0 and ml1m.item_year_bucket[0] == 0
    batch = torch.tensor([[0, 1, 2], [3, 0, 0]])
    genres = ml1m.item_genre[batch]  # a whole batch by indexing, no loop
    assert genres.shape == batch.shape
    for item in (1, 2, 3):
        assert ml1m.genre_names[ml1m.item_genre[item]] == ml1m.items.loc[item, "primary_genre"]
    assert set(ml1m.item_year_bucket[1:].tolist()) <= {1, 2, 3, 4}  # ML-1M films are all before 2001


def test_unknown_genre_and_year_map_to_zero():
    raw = MovieLens(
        "tiny",
        interactions_table([1, 1, 2, 2], [10, 20, 10, 20]),
        items_table([10, 20], ["A (1999)", "B"], [1999, None], [("Drama",), ()]),
        source=None,
    )
    data = build_sequences(raw, 1, 1)
    assert data.item_genre.tolist() == [0, data.genre_names.index("Drama"), 0]
    assert data.item_year_bucket.tolist() == [0, 3, 0]
