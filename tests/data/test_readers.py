"""The readers on real copies of ML-1M and ML-100K, and on small files of each layout."""

import warnings

import pandas as pd
import pytest

from recnb.data.readers import DataFormatError, read_release, year_from_title
from recnb.data.releases import RELEASES, get_release


def test_ml1m_published_counts_from_sequences_txt(ml1m_raw):
    inter = ml1m_raw.interactions
    assert len(inter) == 1_000_209
    assert inter["user"].nunique() == 6_040
    assert inter["item"].nunique() == 3_706
    assert len(ml1m_raw.items) == 3_883
    # sequences.txt has the order but neither ratings nor timestamps
    assert inter["timestamp"].isna().all() and inter["rating"].isna().all()
    assert not ml1m_raw.has_timestamps
    assert ml1m_raw.dropped == {}
    assert repr(ml1m_raw).endswith("ml-1m)")
    assert str(ml1m_raw.source.parent) not in repr(ml1m_raw)  # no absolute path of this machine


def test_ml1m_items_table(ml1m_raw):
    items = ml1m_raw.items.set_index("item")
    toy = items.loc[1]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["year"] == 1995
    assert toy["genres"] == ("Animation", "Children's", "Comedy")
    assert toy["primary_genre"] == "Animation"
    assert items["year"].notna().all()
    # latin-1 titles decode to real accented characters
    assert items["title"].str.contains("é").any()


def test_ml100k_published_counts(ml100k_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = read_release("ml-100k", ml100k_dir)
    inter = raw.interactions
    # The published release: 100,000 ratings by 943 users of 1,682 movies (u.info).
    assert (len(inter), inter["user"].nunique(), len(raw.items)) == (100_000, 943, 1_682)
    assert inter["timestamp"].notna().all() and inter["rating"].between(1, 5).all()
    assert raw.has_timestamps
    # the published u.data has no rating by a user missing from u.user: nothing dropped, no warning
    assert raw.dropped == {}
    assert not [w for w in caught if "dropped" in str(w.message)]
    items = raw.items.set_index("item")
    assert items.loc[1, "genres"] == ("Animation", "Children's", "Comedy")
    assert items.loc[1, "year"] == 1995


def write(folder, name, text, encoding="utf-8"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding=encoding)


def test_ratings_dat_preferred_over_sequences(tmp_path):
    folder = tmp_path / "ml-1m"
    write(folder, "movies.dat", "1::Amélie (2001)::Comedy|Romance\n2::Heat (1995)::Action\n", "latin-1")
    write(folder, "ratings.dat", "1::2::5::978300760\n1::1::3::978300700\n")
    write(folder, "sequences.txt", "1 1\n")
    raw = read_release("ml-1m", folder)
    assert raw.interactions["timestamp"].tolist() == [978300760, 978300700]
    assert raw.interactions["rating"].tolist() == [5.0, 3.0]
    assert raw.items["title"].tolist()[0] == "Amélie (2001)"


def test_csv_release_layout(tmp_path):
    folder = tmp_path / "ml-latest-small"
    write(folder, "movies.csv", 'movieId,title,genres\n1,"American President, The (1995)",Comedy|Drama|Romance\n'
          "2,Cosmos (1980),(no genres listed)\n3,Untitled,Drama\n")
    write(folder, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n")
    raw = read_release("ml-latest-small", folder)
    items = raw.items.set_index("item")
    assert items.loc[1, "title"] == "American President, The (1995)"
    assert items.loc[1, "genres"] == ("Comedy", "Drama", "Romance")
    assert items.loc[2, "genres"] == () and pd.isna(items.loc[2, "primary_genre"])
    assert pd.isna(items.loc[3, "year"])
    assert raw.interactions["rating"].tolist() == [4.0, 3.5]


def test_year_from_title_variants():
    years = year_from_title(pd.Series(["Heat (1995)", "Show (2007-)", "No year", "Spaced (1999) "]))
    assert years.tolist()[:2] == [1995, 2007] and pd.isna(years[2]) and years[3] == 1999


def test_malformed_line_names_file_and_line(tmp_path):
    folder = tmp_path / "ml-1m"
    write(folder, "movies.dat", "1::Heat (1995)::Action\n", "latin-1")
    write(folder, "ratings.dat", "1::1::5::978300760\n1::1::5\n")
    with pytest.raises(DataFormatError, match=r"ratings\.dat, line 2"):
        read_release("ml-1m", folder)
    write(folder, "ratings.dat", "1::1::5::978300760\nx::1::5::978300761\n")
    with pytest.raises(DataFormatError, match=r"line 2: 'x::1::5::978300761'"):
        read_release("ml-1m", folder)


def test_missing_files_are_named(tmp_path):
    folder = tmp_path / "ml-1m"
    write(folder, "movies.dat", "1::Heat (1995)::Action\n", "latin-1")
    with pytest.raises(FileNotFoundError, match="ratings.dat is missing"):
        read_release("ml-1m", folder)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_release("ml-1m", tmp_path / "nowhere")


def test_unknown_ids_dropped_counted_and_warned(tmp_path):
    folder = tmp_path / "ml-1m"
    write(folder, "movies.dat", "1::Heat (1995)::Action\n", "latin-1")
    write(folder, "users.dat", "1::F::1::10::48067\n")
    write(folder, "ratings.dat", "1::1::5::1\n2::1::4::2\n1::9::3::3\n")
    with pytest.warns(UserWarning) as caught:
        raw = read_release("ml-1m", folder)
    messages = [str(w.message) for w in caught]
    assert any("(line 2) whose user is not in the release's user file (ids 2)" in m for m in messages)
    assert any("(line 3) whose item is not in the release's item file (ids 9)" in m for m in messages)
    assert raw.dropped == {"unknown_user": 1, "unknown_item": 1}
    assert raw.interactions[["user", "item"]].values.tolist() == [[1, 1]]


def test_unknown_release_lists_known_names():
    with pytest.raises(ValueError, match="Known releases: ml-100k, ml-1m"):
        get_release("ml-2m")
    assert set(RELEASES) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small"}
    assert RELEASES["ml-10m"].url().endswith("/datasets/movielens/ml-10m.zip")
    assert RELEASES["ml-1m"].md5_url().endswith("ml-1m.zip.md5")
