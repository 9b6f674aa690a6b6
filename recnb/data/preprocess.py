"""From raw interactions to the benchmark's sequences: k-core filter, time order, item ids, metadata."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from recnb.errors import EmptyDatasetError, InvalidArgumentError

#: Year buckets for the year embedding; id 0 is padding or an unknown year.
YEAR_BUCKET_LABELS = ("<unknown>", "before 1980", "1980s", "1990s", "2000s", "2010s", "2020 and later")
#: Genre id 0 is padding or a movie without a genre.
NO_GENRE_LABEL = "<none>"


def dense_codes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)``: each id's position among the sorted distinct ids, so ``uniques[codes] == ids``.

    Ids of MovieLens are small non-negative numbers: a lookup table over 0..max makes this one pass over the
    rows, with no sort; other ids take ``np.unique``.
    """
    ids = np.asarray(ids)
    if len(ids) and ids.dtype.kind in "iu" and ids.min() >= 0 and ids.max() < 4 * len(ids) + (1 << 20):
        present = np.zeros(int(ids.max()) + 1, dtype=bool)
        present[ids] = True
        uniques = np.flatnonzero(present).astype(ids.dtype)
        rank = np.cumsum(present, dtype=np.int64) - 1
        return rank[ids], uniques
    uniques, codes = np.unique(ids, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), uniques


class KCore(NamedTuple):
    """What :func:`kcore_rows` keeps: row positions, their dense user and item codes, and each pass's counts."""

    rows: np.ndarray        # positions of the surviving rows, ascending (file order)
    user_codes: np.ndarray  # of each surviving row: index into ``users``
    item_codes: np.ndarray  # of each surviving row: index into ``items``
    users: np.ndarray       # surviving original user ids, sorted
    items: np.ndarray       # surviving original item ids, sorted
    steps: pd.DataFrame


def kcore_rows(users: np.ndarray, items: np.ndarray, min_user_interactions: int = 5,
               min_item_interactions: int = 5) -> KCore:
    """The k-core filter on id arrays: one ``np.bincount`` per side and pass, no loop over users or items.

    See :func:`kcore_filter`; this is its engine, which :func:`recnb.data.sequences.build_sequences` also
    uses to keep the codes it needs for ordering and re-indexing.
    """
    if min_user_interactions < 1 or min_item_interactions < 1:
        raise InvalidArgumentError("k-core thresholds must be at least 1 (1 keeps everything).")
    user_codes, user_ids = dense_codes(users)
    item_codes, item_ids = dense_codes(items)
    rows = np.arange(len(user_codes))
    user_counts = np.bincount(user_codes, minlength=len(user_ids))
    item_counts = np.bincount(item_codes, minlength=len(item_ids))
    steps = [(0, len(user_ids), len(item_ids), len(rows))]
    while True:
        ok = (user_counts[user_codes] >= min_user_interactions) & (item_counts[item_codes] >= min_item_interactions)
        if ok.all():
            break
        rows, user_codes, item_codes = rows[ok], user_codes[ok], item_codes[ok]
        user_counts = np.bincount(user_codes, minlength=len(user_ids))
        item_counts = np.bincount(item_codes, minlength=len(item_ids))
        steps.append((len(steps), int(np.count_nonzero(user_counts)), int(np.count_nonzero(item_counts)),
                      len(rows)))
        if not len(rows):
            raise EmptyDatasetError(
                f"The {min_user_interactions}/{min_item_interactions}-core filter removed every "
                "interaction. Lower min_user_interactions or min_item_interactions, or use a larger release."
            )
    report = pd.DataFrame(steps, columns=["step", "users", "items", "interactions"])
    # re-number the survivors 0..U-1 and 0..I-1, still in the order of their original ids
    user_alive, item_alive = user_counts > 0, item_counts > 0
    user_codes = (np.cumsum(user_alive) - 1)[user_codes]
    item_codes = (np.cumsum(item_alive) - 1)[item_codes]
    return KCore(rows, user_codes, item_codes, user_ids[user_alive], item_ids[item_alive], report)


def kcore_filter(interactions: pd.DataFrame, min_user_interactions: int = 5,
                 min_item_interactions: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Repeatedly drop users and items with too few interactions until none is left to drop.

    Removing a rare item can push a user below the threshold and the other way
    round, so one pass is not enough: the loop stops when a pass removes nothing.
    Each pass counts users and items with ``np.bincount`` over all rows at once.

    Returns
    -------
    filtered : DataFrame
        The surviving rows, in their original order.
    steps : DataFrame
        One row per pass (``step`` 0 is the input) with the users, items and
        interactions left after it: the table notebook 01 draws.
    """
    core = kcore_rows(interactions["user"].to_numpy(), interactions["item"].to_numpy(),
                      min_user_interactions, min_item_interactions)
    if len(core.rows) == len(interactions):
        return interactions.reset_index(drop=True), core.steps
    return interactions.take(core.rows).reset_index(drop=True), core.steps


def chronological_order(user_codes: np.ndarray, timestamps: np.ndarray | None) -> np.ndarray:
    """Row positions ordered by user, then time; ties (and no timestamps at all) keep file order.

    One stable sort of a single int64 key (user code in the high bits, time in the low ones) where the
    values fit, else a ``np.lexsort`` (stable too).
    """
    user_codes = np.asarray(user_codes, dtype=np.int64)
    if timestamps is None or not len(timestamps):
        return np.argsort(user_codes, kind="stable")
    timestamps = np.asarray(timestamps, dtype=np.int64)
    low = int(timestamps.min())
    if int(timestamps.max()) - low < 1 << 32 and int(user_codes.max(initial=0)) < 1 << 31:
        key = (user_codes << 32) | (timestamps - low)
        return np.argsort(key, kind="stable")
    return np.lexsort((timestamps, user_codes))


def sort_chronologically(interactions: pd.DataFrame) -> pd.DataFrame:
    """Order each user's interactions by time; ties (and missing timestamps) keep file order.

    A stable sort on (user, timestamp) does exactly that. Without timestamps,
    as in the order-only ML-1M copy, the file order *is* the time order.
    """
    timed = interactions["timestamp"].notna().all()
    user_codes, _ = dense_codes(interactions["user"].to_numpy())
    timestamps = interactions["timestamp"].to_numpy(dtype=np.int64) if timed else None
    return interactions.take(chronological_order(user_codes, timestamps)).reset_index(drop=True)


class FilteredSequences(NamedTuple):
    """Read + filter + order as plain arrays: what :mod:`recnb.data.cache` stores."""

    flat: np.ndarray      # int64 item ids 1..N of every user's sequence, one after the other
    offsets: np.ndarray   # int64, U + 1 entries: user u's items are flat[offsets[u]:offsets[u + 1]]
    user_ids: np.ndarray  # original ids of users 0..U-1
    item_ids: np.ndarray  # original ids of items 0..N (item_ids[0] = 0, padding)
    steps: pd.DataFrame


def filtered_sequences(interactions: pd.DataFrame, min_user_interactions: int = 5,
                       min_item_interactions: int = 5) -> FilteredSequences:
    """The k-core filter, time order and contiguous ids of an interactions table, as flat arrays."""
    core = kcore_rows(interactions["user"].to_numpy(), interactions["item"].to_numpy(),
                      min_user_interactions, min_item_interactions)
    return ordered_sequences(core, interactions["timestamp"])


def ordered_sequences(core: KCore, timestamp: pd.Series) -> FilteredSequences:
    """The rows :func:`kcore_rows` kept, as each user's items in time order (``timestamp``: the table's column)."""
    timed = len(core.rows) > 0 and bool(timestamp.notna().all())
    times = timestamp.to_numpy(dtype=np.int64)[core.rows] if timed else None
    order = chronological_order(core.user_codes, times)
    flat = core.item_codes[order].astype(np.int64) + 1
    offsets = np.zeros(len(core.users) + 1, dtype=np.int64)
    np.cumsum(np.bincount(core.user_codes, minlength=len(core.users)), out=offsets[1:])
    item_ids = np.concatenate([np.zeros(1, dtype=np.int64), core.items.astype(np.int64)])
    return FilteredSequences(flat, offsets, core.users.astype(np.int64), item_ids, core.steps)


def padded_items(items: pd.DataFrame, item_ids: np.ndarray) -> pd.DataFrame:
    """The movie table indexed by item id 0..N: row 0 the padding item, then the films of ``item_ids[1:]``."""
    items = items.set_index("item").reindex(item_ids[1:]).reset_index()
    padding = pd.DataFrame({"item": [0], "title": ["<pad>"], "year": [pd.NA], "genres": [()],
                            "primary_genre": [pd.NA]})
    items = pd.concat([padding.astype(items.dtypes.to_dict()), items], ignore_index=True)
    items["genres"] = [g if isinstance(g, tuple) else () for g in items["genres"]]
    items.index.name = "item_id"
    return items


def year_buckets(years: pd.Series) -> np.ndarray:
    """Bucket release years: 1 before 1980, 2-5 one per decade 1980s-2010s, 6 for 2020 and later, 0 unknown.

    Labels are in :data:`YEAR_BUCKET_LABELS`.
    """
    values = pd.array(years, dtype="Int64")
    known = ~values.isna()
    bucket = np.zeros(len(values), dtype=np.int64)
    year = values[known].to_numpy(dtype=np.int64)
    bucket[np.asarray(known)] = np.clip((year - 1960) // 10, 1, 6)
    return bucket


def metadata_lookups(items: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Lookup tensors indexed by item id: primary-genre id and year-bucket id (0 = padding/unknown).

    ``items`` is indexed by item id 0..N with row 0 the padding item. With these
    tensors, ``item_genre[batch_of_item_ids]`` maps any batch to its features in
    one indexing operation, with no Python loop.
    """
    genre_names = [NO_GENRE_LABEL] + sorted(items["primary_genre"].dropna().unique())
    genre_id = {name: i for i, name in enumerate(genre_names)}
    genre = items["primary_genre"].map(genre_id).fillna(0).to_numpy(dtype=np.int64)
    year = year_buckets(items["year"])
    genre[0] = year[0] = 0  # the padding row
    return torch.from_numpy(genre), torch.from_numpy(year), genre_names
