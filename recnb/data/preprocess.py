"""From raw interactions to the benchmark's sequences: k-core filter, time order, item ids, metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from recnb.errors import EmptyDatasetError, InvalidArgumentError

#: Year buckets for the year embedding; id 0 is padding or an unknown year.
YEAR_BUCKET_LABELS = ("<unknown>", "before 1980", "1980s", "1990s", "2000s", "2010s", "2020 and later")
#: Genre id 0 is padding or a movie without a genre.
NO_GENRE_LABEL = "<none>"


def kcore_filter(interactions: pd.DataFrame, min_user_interactions: int = 5,
                 min_item_interactions: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Repeatedly drop users and items with too few interactions until none is left to drop.

    Removing a rare item can push a user below the threshold and the other way
    round, so one pass is not enough: the loop stops when a pass removes nothing.

    Returns
    -------
    filtered : DataFrame
        The surviving rows, in their original order.
    steps : DataFrame
        One row per pass (``step`` 0 is the input) with the users, items and
        interactions left after it: the table notebook 01 draws.
    """
    if min_user_interactions < 1 or min_item_interactions < 1:
        raise InvalidArgumentError("k-core thresholds must be at least 1 (1 keeps everything).")
    users, items = interactions["user"].to_numpy(), interactions["item"].to_numpy()
    keep = np.ones(len(interactions), dtype=bool)
    steps = [(0, len(np.unique(users)), len(np.unique(items)), len(users))]
    while True:
        _, user_index, user_counts = np.unique(users[keep], return_inverse=True, return_counts=True)
        _, item_index, item_counts = np.unique(items[keep], return_inverse=True, return_counts=True)
        ok = (user_counts[user_index] >= min_user_interactions) & (item_counts[item_index] >= min_item_interactions)
        if ok.all():
            break
        keep[np.flatnonzero(keep)[~ok]] = False
        steps.append((len(steps), len(np.unique(users[keep])), len(np.unique(items[keep])), int(keep.sum())))
        if not keep.any():
            raise EmptyDatasetError(
                f"The {min_user_interactions}/{min_item_interactions}-core filter removed every "
                "interaction. Lower min_user_interactions or min_item_interactions, or use a larger release."
            )
    report = pd.DataFrame(steps, columns=["step", "users", "items", "interactions"])
    return interactions.loc[keep].reset_index(drop=True), report


def sort_chronologically(interactions: pd.DataFrame) -> pd.DataFrame:
    """Order each user's interactions by time; ties (and missing timestamps) keep file order.

    A stable sort on (user, timestamp) does exactly that. Without timestamps,
    as in the order-only ML-1M copy, the file order *is* the time order.
    """
    keys = ["user", "timestamp"] if interactions["timestamp"].notna().all() else ["user"]
    return interactions.sort_values(keys, kind="stable").reset_index(drop=True)


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
