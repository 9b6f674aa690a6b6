"""The large CSV releases (ML-20M, ML-25M, ML-32M) in their exact published layout, read and loaded."""

import pandas as pd
import pytest

from recnb.data import load_dataset
from recnb.data.readers import read_release

# Header lines exactly as GroupLens publishes them; rows in the release's order (by user, then movie id).
RATINGS = ("userId,movieId,rating,timestamp\n"
           "1,1,4.0,964982703\n1,3,4.0,964981247\n1,6,4.0,964982224\n1,47,5.0,964983815\n1,50,5.0,964982931\n"
           "1,70,3.0,964982400\n2,1,0.5,1445714835\n2,3,3.5,1445714885\n2,6,2.0,1445715029\n2,47,4.5,1445714815\n"
           "2,50,4.0,1445714864\n3,1,1.0,1306463578\n3,3,4.5,1306464000\n3,47,5.0,1306463600\n"
           "3,50,3.0,1306463551\n3,70,2.5,1306464021\n")
MOVIES = ("movieId,title,genres\n"
          "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
          "3,\"American President, The (1995)\",Comedy|Drama|Romance\n"
          "6,Amélie (Fabuleux destin d'Amélie Poulain) (2001),Comedy|Romance\n"
          "47,Seven (a.k.a. Se7en) (1995),Mystery|Thriller\n"
          "50,Ben-hur,(no genres listed)\n"
          "70,\"Good, the Bad and the Ugly, The (Buono, il brutto, il cattivo, Il) (1966)\",Action|Western\n"
          "99,Unrated Film (2019),Drama\n")


def write_release(folder):
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_bytes(RATINGS.encode("utf-8"))
    (folder / "movies.csv").write_bytes(MOVIES.encode("utf-8"))
    return folder


@pytest.mark.parametrize("release", ["ml-20m", "ml-25m", "ml-32m"])
def test_read_release_in_the_published_csv_layout(tmp_path, release):
    raw = read_release(release, write_release(tmp_path / release))
    inter = raw.interactions
    assert (len(inter), inter["user"].nunique(), inter["item"].nunique(), len(raw.items)) == (16, 3, 6, 7)
    assert inter["rating"].tolist()[:8] == [4.0, 4.0, 4.0, 5.0, 5.0, 3.0, 0.5, 3.5]
    assert inter["timestamp"].iloc[0] == 964982703 and raw.has_timestamps and raw.dropped == {}
    assert str(inter["timestamp"].dtype) == "Int64" and str(inter["rating"].dtype) == "Float64"
    items = raw.items.set_index("item")
    assert items.loc[3, "title"] == "American President, The (1995)"
    assert items.loc[3, "genres"] == ("Comedy", "Drama", "Romance") and items.loc[3, "year"] == 1995
    assert items.loc[6, "title"].startswith("Amélie (Fabuleux destin d'Amélie")
    assert items.loc[6, "year"] == 2001
    assert items.loc[50, "genres"] == () and pd.isna(items.loc[50, "primary_genre"]) and pd.isna(items.loc[50, "year"])
    assert items.loc[70, "title"].startswith("Good, the Bad and the Ugly, The (Buono, il")
    assert items.loc[70, "year"] == 1966 and items.loc[70, "primary_genre"] == "Action"


@pytest.mark.parametrize("release", ["ml-20m", "ml-25m", "ml-32m"])
def test_load_dataset_uses_a_folder_that_already_holds_the_files(tmp_path, release):
    # the downloader takes a release folder holding its ratings and movie files as present: no network, no zip
    write_release(tmp_path / release)
    data = load_dataset(release, tmp_path, min_user_interactions=1, min_item_interactions=1, download=False)
    assert (data.n_users, data.n_items, data.n_interactions) == (3, 6, 16)
    assert data.user_ids.tolist() == [1, 2, 3] and data.item_ids.tolist() == [0, 1, 3, 6, 47, 50, 70]
    # time order within each user: user 3 rated 50, 1, 47, 3, 70 in that order
    assert data.item_ids[data.sequences[2]].tolist() == [50, 1, 47, 3, 70]
    assert data.titles([2]) == ["American President, The (1995)"]
    assert data.raw is not None and not (tmp_path / release / ".recnb-cache").exists()  # small: not cached
