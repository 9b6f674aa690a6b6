"""Interaction logs shaped like ML-20M/25M/32M: sizes from the published figures, layout, skew, repeatability."""

import numpy as np
import pandas as pd
import pytest

from recnb.data.readers import read_release
from recnb.data.releases import RELEASE_FIGURES
from recnb.data.sequences import top_share
from recnb.data.synthetic import MIN_USER_RATINGS, figures_table, scaled_figures, write_synthetic_release
from recnb.errors import InvalidArgumentError


def test_full_size_figures_are_the_published_ones():
    for release, real in RELEASE_FIGURES.items():
        assert scaled_figures(release) == real
    assert RELEASE_FIGURES["ml-25m"].ratings == 25_000_095 and RELEASE_FIGURES["ml-25m"].users == 162_541
    half = scaled_figures("ml-32m", 16_000_102)
    assert half.users == 100_474 and 0.5 * 84_432 < half.rated_films < 84_432 and half.films > half.rated_films
    table = figures_table()
    assert table.loc["ml-20m", "ratings"] == 20_000_263 and table.loc["ml-32m", "rated_films"] == 84_432
    assert (figures_table(10**6)["ratings"] == 10**6).all()
    with pytest.raises(InvalidArgumentError, match="too few"):
        scaled_figures("ml-25m", 500)
    with pytest.raises(InvalidArgumentError, match="ml-20m"):
        scaled_figures("ml-1m", 10_000)


@pytest.fixture(scope="module")
def million(tmp_path_factory):
    folder = write_synthetic_release(tmp_path_factory.mktemp("logs") / "ml-25m", "ml-25m", 1_000_000,
                                     progress=False)
    return folder, read_release("ml-25m", folder)


def test_counts_layout_and_no_repeated_pair(million):
    folder, raw = million
    figures = scaled_figures("ml-25m", 1_000_000)
    inter = raw.interactions
    assert len(inter) == 1_000_000 and raw.dropped == {}  # no pair twice, no unknown film
    assert inter["user"].nunique() == figures.users == 6_502
    assert inter["item"].nunique() == figures.rated_films and len(raw.items) == figures.films
    assert not inter.duplicated(["user", "item"]).any()
    with open(folder / "ratings.csv", encoding="utf-8") as f:
        assert f.readline() == "userId,movieId,rating,timestamp\n"
        assert f.readline().count(",") == 3
    assert (folder / "movies.csv").read_text(encoding="utf-8").startswith("movieId,title,genres\n")
    titles = raw.items["title"]
    assert titles.str.contains(", The (", regex=False).any() and titles.str.contains("é").any()
    assert raw.items["year"].isna().any() and raw.items["primary_genre"].isna().any()
    assert set(np.unique(inter["rating"].to_numpy(dtype=float))) == set(np.arange(1, 11) / 2)
    # rows by user, then movie id, as GroupLens orders them
    key = inter["user"].to_numpy(dtype=np.int64) * 10**7 + inter["item"].to_numpy()
    assert (np.diff(key) > 0).all()


def test_users_are_long_tailed_and_times_increase(million):
    _, raw = million
    inter = raw.interactions
    per_user = inter.groupby("user").size()
    assert per_user.min() >= MIN_USER_RATINGS and per_user.max() > 10 * per_user.median()
    assert 60 < per_user.median() < 90 and 140 < per_user.mean() < 170  # ML-25M: about 71 and 154
    times = inter.sort_values(["user", "timestamp"])
    same_user = times["user"].to_numpy()[1:] == times["user"].to_numpy()[:-1]
    assert (np.diff(times["timestamp"].to_numpy(dtype=np.int64))[same_user] > 0).all()  # distinct per user
    first, last = (pd.Timestamp(d).timestamp() for d in ("1995-01-09", "2019-11-22"))
    assert first <= inter["timestamp"].min() and inter["timestamp"].max() < last


def test_film_popularity_is_skewed(million):
    _, raw = million
    counts = raw.interactions["item"].value_counts().to_numpy()
    assert top_share(counts, 0.1) > 0.6
    assert counts.max() < raw.interactions["user"].nunique()  # each user rates a film once at most


def test_same_seed_same_bytes_and_never_overwrites(tmp_path):
    a = write_synthetic_release(tmp_path / "a", "ml-20m", 40_000, seed=5, progress=False)
    b = write_synthetic_release(tmp_path / "b", "ml-20m", 40_000, seed=5, progress=False)
    c = write_synthetic_release(tmp_path / "c", "ml-20m", 40_000, seed=6, progress=False)
    for name in ("ratings.csv", "movies.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes() != (c / name).read_bytes()
    before = (a / "ratings.csv").read_bytes()
    with pytest.raises(FileExistsError):
        write_synthetic_release(a, "ml-20m", 40_000, progress=False)
    assert (a / "ratings.csv").read_bytes() == before
    assert len(read_release("ml-20m", a).interactions) == 40_000
