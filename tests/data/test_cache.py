"""The cache of filtered sequences: identical data on a hit, rebuilt when anything it depends on changes."""

import os

import numpy as np
import pandas as pd
import pytest

import recnb.data.sequences as sequences_module
from recnb.data import load_dataset
from recnb.data.cache import CACHE_FOLDER, cache_file
from recnb.data.synthetic import write_synthetic_release

RELEASE = "ml-25m"


@pytest.fixture
def data_dir(tmp_path):
    write_synthetic_release(tmp_path / RELEASE, RELEASE, 30_000, seed=1, progress=False)
    return tmp_path


@pytest.fixture
def reads(monkeypatch):
    """Counts the times load_dataset reads the release's files (0 on a cache hit)."""
    calls = []
    real = sequences_module.read_release

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(sequences_module, "read_release", counting)
    return calls


def assert_same(cached, fresh):
    assert cached.name == fresh.name
    assert len(cached.sequences) == len(fresh.sequences)
    assert all(a.dtype == np.int64 and np.array_equal(a, b) for a, b in zip(cached.sequences, fresh.sequences))
    np.testing.assert_array_equal(cached.user_ids, fresh.user_ids)
    np.testing.assert_array_equal(cached.item_ids, fresh.item_ids)
    pd.testing.assert_frame_equal(cached.items, fresh.items)
    pd.testing.assert_frame_equal(cached.filter_steps, fresh.filter_steps)
    assert cached.genre_names == fresh.genre_names
    assert cached.item_genre.equal(fresh.item_genre) and cached.item_year_bucket.equal(fresh.item_year_bucket)


def load(data_dir, **kwargs):
    return load_dataset(RELEASE, data_dir, download=False, progress=False, **kwargs)


def test_a_hit_gives_the_same_data_without_reading(data_dir, reads):
    fresh = load(data_dir, cache=True)
    assert len(reads) == 1 and fresh.raw is not None
    assert cache_file(data_dir / RELEASE, RELEASE, 5, 5).is_file()
    cached = load(data_dir, cache=True)
    assert len(reads) == 1 and cached.raw is None
    assert_same(cached, fresh)
    assert_same(cached, load(data_dir, cache=False))


def test_other_settings_are_cached_apart(data_dir, reads):
    load(data_dir, cache=True)
    strict = load(data_dir, cache=True, min_user_interactions=40, min_item_interactions=30)
    assert len(reads) == 2 and min(len(s) for s in strict.sequences) >= 40
    assert_same(load(data_dir, cache=True, min_user_interactions=40, min_item_interactions=30),
                load(data_dir, cache=False, min_user_interactions=40, min_item_interactions=30))
    assert len(reads) == 3  # the cache=False load; the cached one read nothing
    assert len(list((data_dir / RELEASE / CACHE_FOLDER).glob("*.npz"))) == 2


def test_a_changed_ratings_file_is_read_again(data_dir, reads):
    ratings = data_dir / RELEASE / "ratings.csv"
    load(data_dir, cache=True)
    stat = ratings.stat()
    os.utime(ratings, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: same bytes, newer time
    load(data_dir, cache=True)
    assert len(reads) == 2
    lines = ratings.read_text().splitlines(keepends=True)
    ratings.write_text("".join(lines[:-3000]))  # rewritten: fewer ratings
    changed = load(data_dir, cache=True)
    assert len(reads) == 3
    assert_same(changed, load(data_dir, cache=False))
    assert load(data_dir, cache=True).n_interactions == changed.n_interactions and len(reads) == 4


@pytest.mark.parametrize("damage", [b"", b"not a zip file at all", "truncate"])
def test_a_damaged_cache_is_rebuilt_with_a_warning(data_dir, reads, damage):
    fresh = load(data_dir, cache=True)
    path = cache_file(data_dir / RELEASE, RELEASE, 5, 5)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2] if damage == "truncate" else damage)
    with pytest.warns(UserWarning, match="is damaged"):
        rebuilt = load(data_dir, cache=True)
    assert len(reads) == 2
    assert_same(rebuilt, fresh)
    assert_same(load(data_dir, cache=True), fresh)  # rewritten whole: the next load is a hit again
    assert len(reads) == 2


def test_no_cache_is_written_when_off_or_for_a_small_release(data_dir):
    load(data_dir, cache=False)
    load(data_dir)  # default: 30,000 ratings are far below the 50 MB from which a release is cached
    assert not (data_dir / RELEASE / CACHE_FOLDER).exists()
    assert sorted(p.name for p in (data_dir / RELEASE).iterdir()) == ["README.txt", "movies.csv", "ratings.csv"]
