"""A cache of the filtered sequences, so that a large release is read and filtered once.

Reading ML-25M's 25 million ratings and filtering them takes most of a minute; loading the result takes
seconds. :func:`recnb.data.sequences.load_dataset` stores what read + filter + order produce (the flat item
array, the offsets, the user and item ids, the movie table and the filter's steps) in one ``.npz`` file in
``<release folder>/.recnb-cache/``, named for the release and the k-core thresholds.

The file records what it was built from: the format version, the release, the thresholds and the size and
modification time of every source file. Any difference, a damaged file or one this version cannot read
means it is rebuilt (with a warning when it was damaged): a stale cache is never used. It is written
atomically (:func:`recnb.files.atomic_file`), so an interrupted write leaves the old one or none.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from recnb.data.preprocess import FilteredSequences, padded_items
from recnb.data.readers import items_table
from recnb.data.releases import Release
from recnb.files import atomic_file

#: Bumped whenever what is stored, or how the sequences are built, changes: older files are then rebuilt.
FORMAT_VERSION = 1
CACHE_FOLDER = ".recnb-cache"
#: ``cache=None`` caches a release whose ratings file is larger than this (ML-10M and up, not ML-1M).
LARGE_RATINGS_BYTES = 50 * 2**20
_SEP = "\x1f"  # between titles (and genre lists) in the stored text: never part of a MovieLens title
_STEPS = ["step", "users", "items", "interactions"]


def source_files(release: Release, folder: Path) -> list[Path]:
    """The files of ``folder`` the reader of ``release`` may read (ratings, alternatives, movies, users)."""
    names = (release.ratings_file, *release.alternative_ratings_files, release.items_file, "u.user", "users.dat")
    return [folder / name for name in dict.fromkeys(names) if (folder / name).is_file()]


def ratings_size(release: Release, folder: Path) -> int:
    """Bytes of the interactions file the reader uses (0 when there is none)."""
    for name in (release.ratings_file, *release.alternative_ratings_files):
        if (folder / name).is_file():
            return (folder / name).stat().st_size
    return 0


def cache_file(folder: str | os.PathLike, name: str, min_user_interactions: int, min_item_interactions: int) -> Path:
    """Where the sequences of release ``name`` filtered with these thresholds are cached."""
    return Path(folder) / CACHE_FOLDER / f"{name}-core{min_user_interactions}-{min_item_interactions}.npz"


def cache_key(release: Release, folder: Path, min_user_interactions: int, min_item_interactions: int) -> str:
    """What a cached file must have been built from to be used: format, release, thresholds, source files."""
    files = {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in source_files(release, folder)}
    return json.dumps({"format": FORMAT_VERSION, "release": release.name, "min_user_interactions":
                       min_user_interactions, "min_item_interactions": min_item_interactions, "files": files},
                      sort_keys=True)


def _text(values) -> np.ndarray:
    return np.frombuffer(_SEP.join(values).encode("utf-8"), dtype=np.uint8)


def write_cache(path: Path, key: str, core: FilteredSequences, items: pd.DataFrame) -> bool:
    """Store ``core`` and the padded movie table (indexed by item id) at ``path``; False when it cannot be.

    A folder that cannot be written (a read-only copy of the data) only costs the speed-up: a warning, no error.
    """
    titles = items["title"]
    if titles.isna().any() or titles.str.contains(_SEP, regex=False).any():
        return False  # not a table read from a release; nothing to gain from caching it
    flat = core.flat.astype(np.int32) if core.item_ids.size < 2**31 else core.flat
    year = items["year"]
    try:
        with atomic_file(path) as temporary, open(temporary, "wb") as out:
            np.savez(out, key=np.array(key), flat=flat, offsets=core.offsets, user_ids=core.user_ids,
                     item_ids=core.item_ids, steps=core.steps[_STEPS].to_numpy(dtype=np.int64),
                     titles=_text(titles.tolist()), genres=_text("|".join(g) for g in items["genres"]),
                     year=year.fillna(0).to_numpy(dtype=np.int64), year_missing=year.isna().to_numpy())
    except OSError as error:
        warnings.warn(f"Could not write the cache {path} ({error}); the data will be read and filtered again "
                      "next time.", stacklevel=3)
        return False
    return True


def read_cache(path: Path, key: str) -> tuple[FilteredSequences, pd.DataFrame] | None:
    """The cached sequences and padded movie table, or None when absent, stale or damaged (damaged: a warning)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            flat = stored["flat"].astype(np.int64)
            offsets, user_ids, item_ids = stored["offsets"], stored["user_ids"], stored["item_ids"]
            steps = pd.DataFrame(stored["steps"], columns=_STEPS)
            titles = bytes(stored["titles"]).decode("utf-8").split(_SEP)
            genres = [tuple(g.split("|")) if g else () for g in bytes(stored["genres"]).decode("utf-8").split(_SEP)]
            year = pd.arrays.IntegerArray(stored["year"], stored["year_missing"])
        if not (len(offsets) == len(user_ids) + 1 and offsets[0] == 0 and offsets[-1] == len(flat)
                and np.all(np.diff(offsets) >= 0) and len(titles) == len(genres) == len(year) == len(item_ids)
                and (not len(flat) or (flat.min() >= 1 and flat.max() < len(item_ids)))):
            raise ValueError("its arrays do not fit together")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        warnings.warn(f"The cache {path} is damaged ({error}); reading the release again and rebuilding it.",
                      stacklevel=3)
        return None
    # the same constructor as when reading, then the padding row: the table is as a fresh build makes it
    unpadded = items_table(item_ids[1:], titles[1:], year[1:], list(genres[1:]))
    return FilteredSequences(flat, offsets, user_ids, item_ids, steps), padded_items(unpadded, item_ids)
