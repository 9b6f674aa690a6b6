"""The prepared data set every notebook and model uses: one chronological item sequence per user.

>>> data = load_dataset("ml-1m")            # download (once), read, 5-core filter
>>> split = leave_one_out(data.sequences)   # last item test, second to last validation
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recnb.config import resolve_data_dir
from recnb.data.preprocess import (
    YEAR_BUCKET_LABELS,
    FilteredSequences,
    filtered_sequences,
    metadata_lookups,
    padded_items,
)
from recnb.data.readers import MovieLens, read_release
from recnb.data.releases import get_release
from recnb.errors import InvalidArgumentError

SYNTHETIC = "synthetic"


@dataclass
class SequenceData:
    """A filtered data set as sequences of contiguous item ids.

    Item ids run 1..N (0 is padding), in the order of the original MovieLens
    ids; users are indexed 0..U-1 in the order of their original ids.

    Attributes
    ----------
    sequences : list of int64 arrays
        ``sequences[u]`` is user ``u``'s item ids, oldest first.
    user_ids, item_ids : arrays
        Original MovieLens ids: ``user_ids[u]`` and ``item_ids[i]`` (``item_ids[0]`` is 0, padding).
    items : DataFrame
        Movie metadata indexed by item id 0..N (row 0 is the padding item).
    item_genre, item_year_bucket : LongTensor of shape (N + 1,)
        Primary-genre id and year-bucket id of every item id (0 for padding or unknown).
    genre_names, year_bucket_labels : list of str
        Names of those ids.
    filter_steps : DataFrame
        Users, items and interactions after each pass of the k-core filter (step 0: as read).
    raw : MovieLens or None
        The release as read; None when :func:`load_dataset` took the sequences from its cache.
    """

    name: str
    sequences: list[np.ndarray]
    user_ids: np.ndarray
    item_ids: np.ndarray
    items: pd.DataFrame
    item_genre: torch.Tensor
    item_year_bucket: torch.Tensor
    genre_names: list[str]
    filter_steps: pd.DataFrame
    raw: MovieLens | None = field(default=None, repr=False)
    year_bucket_labels: tuple[str, ...] = YEAR_BUCKET_LABELS

    @property
    def n_users(self) -> int:
        return len(self.sequences)

    @property
    def n_items(self) -> int:
        """Number of real items N; score tensors have N + 1 columns (column 0 is padding)."""
        return len(self.item_ids) - 1

    @property
    def n_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def encode_items(self, original_ids) -> np.ndarray:
        """Map original MovieLens ids to item ids (0 for ids the filtered data does not have)."""
        lookup = pd.Series(np.arange(len(self.item_ids)), index=self.item_ids)
        return lookup.reindex(np.asarray(original_ids)).fillna(0).to_numpy(dtype=np.int64)

    def titles(self, item_ids) -> list[str]:
        """Titles of a list of item ids."""
        return self.items["title"].to_numpy()[np.asarray(item_ids, dtype=np.int64)].tolist()

    def summary(self) -> pd.DataFrame:
        """Users, items and interactions before and after filtering, as a small table."""
        first, last = self.filter_steps.iloc[0], self.filter_steps.iloc[-1]
        return pd.DataFrame(
            {"before filtering": first[["users", "items", "interactions"]],
             "after filtering": last[["users", "items", "interactions"]]}
        ).astype("int64")

    def __repr__(self) -> str:
        return (f"SequenceData({self.name!r}: {self.n_users:,} users, {self.n_items:,} items, "
                f"{self.n_interactions:,} interactions)")


def build_sequences(raw: MovieLens, min_user_interactions: int = 5, min_item_interactions: int = 5,
                    name: str | None = None) -> SequenceData:
    """Filter, order and re-index a release read by :func:`recnb.data.readers.read_release`.

    All on arrays, with no loop over users: the k-core filter's dense codes give the user of each row and
    the item id (codes follow the original ids' order), one stable sort gives the time order.
    """
    core = filtered_sequences(raw.interactions, min_user_interactions, min_item_interactions)
    return sequence_data(name or raw.name, core, raw.items, raw)


def sequence_data(name: str, core: FilteredSequences, items: pd.DataFrame, raw: MovieLens | None = None,
                  padded: bool = False) -> SequenceData:
    """A :class:`SequenceData` from flat arrays; ``items`` is the release's table, or already padded."""
    items = items if padded else padded_items(items, core.item_ids)
    sequences = np.split(core.flat, core.offsets[1:-1]) if len(core.offsets) > 1 else []
    item_genre, item_year_bucket, genre_names = metadata_lookups(items)
    return SequenceData(name, sequences, core.user_ids, core.item_ids, items, item_genre,
                        item_year_bucket, genre_names, core.steps, raw)


def read_dataset(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True,
                 progress: bool = True) -> MovieLens:
    """Read a release from the cache, downloading and verifying it first if it is not there.

    ``name`` is a MovieLens release (``recnb.data.releases.RELEASES``) or ``"synthetic"``,
    the generated demo data set, which is written to ``<data_dir>/synthetic`` on first use.
    """
    data_dir = resolve_data_dir(data_dir)
    if name == SYNTHETIC:
        from recnb.data.synthetic import write_synthetic_movielens

        folder = data_dir / SYNTHETIC
        if not (folder / "ratings.dat").is_file():
            write_synthetic_movielens(folder)
        raw = read_release("ml-1m", folder)
        raw.name = SYNTHETIC
        return raw
    from recnb.data.download import fetch_release

    get_release(name)  # a clear error for unknown names before touching the disk
    folder = fetch_release(name, data_dir, download=download, progress=progress)
    return read_release(name, folder)


def load_dataset(name: str = "ml-1m", data_dir: str | os.PathLike | None = None, *,
                 min_user_interactions: int = 5, min_item_interactions: int = 5,
                 download: bool = True, progress: bool = True, cache: bool | None = None) -> SequenceData:
    """Read a release and turn it into filtered, time-ordered item sequences.

    Parameters
    ----------
    name : str
        ``"ml-1m"`` (the benchmark), another release such as ``"ml-100k"``, or ``"synthetic"``.
    data_dir : path, optional
        The cache folder; default ``RECNB_DATA_DIR`` or ``data/`` in the repository.
    min_user_interactions, min_item_interactions : int
        The k-core thresholds (5 and 5 is the benchmark's setting).
    cache : bool, optional
        Keep the filtered sequences in ``<data_dir>/<name>/.recnb-cache/`` (:mod:`recnb.data.cache`) and load
        them from there while the release's files and these settings are unchanged: seconds instead of a
        minute for ML-25M. ``None`` (default) caches releases whose ratings file is over 50 MB (ML-10M and
        larger), so the small ones' folders are never written to; ``True``/``False`` force it (``"synthetic"``
        is never cached). A cached
        load has ``raw`` None (the raw table is not read) and repeats no warning of the first reading.
    """
    if name == SYNTHETIC:
        raw = read_dataset(name, data_dir, download=download, progress=progress)
        return build_sequences(raw, min_user_interactions, min_item_interactions, name)
    from recnb.data import cache as sequence_cache
    from recnb.data.download import fetch_release

    release = get_release(name)
    folder = fetch_release(name, resolve_data_dir(data_dir), download=download, progress=progress)
    if min_user_interactions < 1 or min_item_interactions < 1:
        raise InvalidArgumentError("k-core thresholds must be at least 1 (1 keeps everything).")
    if cache is None:
        cache = sequence_cache.ratings_size(release, folder) > sequence_cache.LARGE_RATINGS_BYTES
    if cache:
        path = sequence_cache.cache_file(folder, name, min_user_interactions, min_item_interactions)
        key = sequence_cache.cache_key(release, folder, min_user_interactions, min_item_interactions)
        if (stored := sequence_cache.read_cache(path, key)) is not None:
            core, items = stored
            return sequence_data(name, core, items, padded=True)
    raw = read_release(name, folder)
    core = filtered_sequences(raw.interactions, min_user_interactions, min_item_interactions)
    data = sequence_data(name, core, raw.items, raw)
    if cache:
        sequence_cache.write_cache(path, key, core, data.items)
    return data


def dataset_folder(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Where a release's files live in the cache."""
    return resolve_data_dir(data_dir) / name


def item_counts(sequences: list[np.ndarray], n_items: int) -> torch.Tensor:
    """How often each item id 0..N occurs in ``sequences`` (padding, id 0, is never counted)."""
    flat = np.concatenate(sequences) if len(sequences) else np.zeros(0, dtype=np.int64)
    counts = np.bincount(flat, minlength=n_items + 1).astype(np.float32)
    counts[0] = 0.0
    return torch.from_numpy(counts)


def item_interaction_counts(data_or_sequences) -> np.ndarray:
    """Interactions of every item id 1..N (index 0 of the result is item 1), from the sequences.

    Integers, for tables and figures; a SequenceData gives every id up to ``n_items``, plain
    sequences up to the largest id they hold. (:func:`item_counts` is the float tensor models use.)
    """
    sequences = getattr(data_or_sequences, "sequences", data_or_sequences)
    n_items = getattr(data_or_sequences, "n_items", None)
    flat = np.concatenate(sequences)
    counts = np.bincount(flat, minlength=(n_items or int(flat.max())) + 1)
    return counts[1:]


def top_share(counts, top_fraction: float = 0.1) -> float:
    """Share of all interactions that goes to the most popular ``top_fraction`` of items (at least one item)."""
    ordered = np.sort(np.asarray(counts))[::-1]
    top = max(1, int(np.ceil(top_fraction * len(ordered))))
    return float(ordered[:top].sum() / ordered.sum())
