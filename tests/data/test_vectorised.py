"""The vectorised k-core filter, time order and split agree with straightforward per-user implementations.

The references below are written here, independently of recnb: loops and ``np.unique`` passes as one
would write them first. They are compared on the real ML-1M and ML-100K and on small tables with ties.
"""

import numpy as np
import pandas as pd
import pytest

from recnb.data import build_sequences
from recnb.data.preprocess import dense_codes, kcore_filter, sort_chronologically
from recnb.data.readers import MovieLens, interactions_table, items_table, read_release
from recnb.data.split import leave_one_out


def reference_kcore(interactions, min_user, min_item):
    keep = np.ones(len(interactions), dtype=bool)
    users, items = interactions["user"].to_numpy(), interactions["item"].to_numpy()
    steps = [(0, len(set(users)), len(set(items)), len(users))]
    while True:
        user_counts = pd.Series(users[keep]).value_counts()
        item_counts = pd.Series(items[keep]).value_counts()
        ok = keep & pd.Series(users).map(user_counts).fillna(0).ge(min_user).to_numpy() \
            & pd.Series(items).map(item_counts).fillna(0).ge(min_item).to_numpy()
        if (ok == keep).all():
            break
        keep = ok
        steps.append((len(steps), len(set(users[keep])), len(set(items[keep])), int(keep.sum())))
    return keep, steps


def reference_sequences(interactions, keep):
    """Per user, in order of user id: the original item ids sorted by time, ties in file order."""
    timed = interactions["timestamp"].notna().all()
    users, items = interactions["user"].tolist(), interactions["item"].tolist()
    times = interactions["timestamp"].tolist() if timed else [0] * len(users)
    sequences = {}
    for row in np.flatnonzero(keep).tolist():
        sequences.setdefault(users[row], []).append((times[row], row, items[row]))
    return {user: [item for _, _, item in sorted(rows)] for user, rows in sorted(sequences.items())}


def reference_leave_one_out(sequences):
    train, valid, test, users = [], [], [], []
    for u, sequence in enumerate(sequences):
        if len(sequence) >= 3:
            train.append(list(sequence[:-2]))
            valid.append(sequence[-2])
            test.append(sequence[-1])
            users.append(u)
    return train, valid, test, users


def check_against_references(raw, min_user, min_item):
    inter = raw.interactions
    keep, steps = reference_kcore(inter, min_user, min_item)
    filtered, got_steps = kcore_filter(inter, min_user, min_item)
    assert got_steps.values.tolist() == [list(s) for s in steps]
    pd.testing.assert_frame_equal(filtered, inter.loc[keep].reset_index(drop=True))

    data = build_sequences(raw, min_user, min_item)
    expected = reference_sequences(inter, keep)
    assert data.user_ids.tolist() == list(expected)
    assert data.item_ids.tolist() == [0] + sorted(set(inter["item"].to_numpy()[keep].tolist()))
    assert [data.item_ids[s].tolist() for s in data.sequences] == list(expected.values())
    assert all(s.dtype == np.int64 for s in data.sequences)

    split = leave_one_out(data.sequences)
    train, valid, test, users = reference_leave_one_out([s.tolist() for s in data.sequences])
    assert [t.tolist() for t in split.train] == train
    assert split.valid.tolist() == valid and split.test.tolist() == test and split.users.tolist() == users
    assert split.dropped_users == len(data.sequences) - len(users)
    assert split.valid.dtype == split.test.dtype == np.int64 and all(t.dtype == np.int64 for t in split.train)


def test_ml1m_matches_the_references(ml1m_raw):
    check_against_references(ml1m_raw, 5, 5)


@pytest.mark.parametrize("min_user, min_item", [(5, 5), (20, 20), (1, 50)])
def test_ml100k_matches_the_references(ml100k_dir, min_user, min_item):
    check_against_references(read_release("ml-100k", ml100k_dir), min_user, min_item)


def test_small_table_with_ties_and_passes_matches_the_references():
    rng = np.random.default_rng(4)
    users = rng.integers(1, 40, 600)
    items = rng.integers(1, 90, 600) * 7  # sparse ids
    pairs = pd.DataFrame({"u": users, "i": items}).drop_duplicates()
    times = rng.integers(0, 30, len(pairs))  # many ties in time
    raw = MovieLens("tiny", interactions_table(pairs["u"], pairs["i"], timestamp=times),
                    items_table(np.unique(items), [f"F{i}" for i in np.unique(items)], [2000] * len(np.unique(items)),
                                [("Drama",)] * len(np.unique(items))), source=None)
    for thresholds in [(1, 1), (3, 3), (8, 6)]:
        check_against_references(raw, *thresholds)
    assert len(kcore_filter(raw.interactions, 8, 6)[1]) == 6  # five passes remove something: the loop is tested


def test_sort_chronologically_is_the_stable_pandas_sort(ml1m_raw):
    inter = read_release("ml-1m", ml1m_raw.source).interactions.iloc[:20_000]
    inter = inter.assign(timestamp=pd.array(np.arange(len(inter)) % 97, dtype="Int64"))
    expected = inter.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(sort_chronologically(inter), expected)


def test_dense_codes_for_small_and_for_large_ids():
    for ids in (np.array([7, 3, 7, 100, 3]), np.array([7, 3, 7, 10**15, 3]), np.array([-2, 5, -2])):
        codes, uniques = dense_codes(ids)
        assert uniques.tolist() == sorted(set(ids.tolist())) and uniques[codes].tolist() == ids.tolist()
