"""Readers for each MovieLens file layout, all returning one standard pair of tables.

``interactions``: one row per rating, in file order, with columns

- ``user`` (int64), ``item`` (int64): the original MovieLens ids;
- ``timestamp`` (nullable Int64, seconds since 1970) and ``rating`` (nullable
  Float64): missing (``<NA>``) when the source does not have them, as in the
  order-only ``sequences.txt`` copy of ML-1M.

``items``: one row per movie, with columns ``item``, ``title``, ``year``
(nullable Int64), ``genres`` (tuple of str, in the order the file lists them)
and ``primary_genre`` (the first listed genre, ``<NA>`` when there is none).
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .config import display_path
from .errors import DataFormatError, MissingDataError
from .releases import Release, get_release

#: ML-100K's genre flags, in the column order of ``u.item`` (from ``u.genre``).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
NO_GENRE = {"", "unknown", "(no genres listed)"}
_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")


@dataclass
class MovieLens:
    """A release as read from disk: interactions and items in the standard layout."""

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    source: Path
    #: Rows dropped while reading, by reason (see :func:`drop_unknown_ids`).
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def has_timestamps(self) -> bool:
        return bool(self.interactions["timestamp"].notna().any())

    def __repr__(self) -> str:
        users = self.interactions["user"].nunique()
        return (
            f"MovieLens({self.name!r}: {len(self.interactions):,} interactions, "
            f"{users:,} users, {len(self.items):,} movies, from {display_path(self.source)})"
        )


# ----------------------------------------------------------------------------- helpers
def _first_bad_line(path: Path, encoding: str, sep: str, n_fields: int, int_fields: tuple[int, ...],
                    skip_header: bool) -> tuple[int, str] | None:
    """Find the first line with the wrong number of fields or a non-integer id (slow path)."""
    with open(path, encoding=encoding, newline="") as f:
        for number, line in enumerate(f, start=1):
            if skip_header and number == 1:
                continue
            text = line.rstrip("\r\n")
            if not text:
                continue
            fields = next(csv.reader([text])) if sep == "," else text.split(sep)
            if len(fields) != n_fields:
                return number, text
            for i in int_fields:
                try:
                    int(fields[i])
                except ValueError:
                    return number, text
    return None


def _read_table(path: Path, sep: str, names: list[str], int_fields: tuple[int, ...],
                encoding: str = "latin-1", header: bool = False) -> pd.DataFrame:
    """Read a delimited file fast with pandas; on failure, name the file and the bad line."""
    if not path.is_file():
        raise MissingDataError(f"{path} is missing. Re-extract the release or fetch it again.")
    try:
        if len(sep) > 1:
            # pandas' C parser takes one-character separators only; '::' never occurs
            # inside MovieLens fields, so swapping it for a tab keeps the fast parser.
            text = path.read_text(encoding=encoding).replace(sep, "\t")
            buffer, table_sep = io.StringIO(text), "\t"
        else:
            buffer, table_sep = path, sep
        frame = pd.read_csv(
            buffer, sep=table_sep, names=names, header=0 if header else None,
            encoding=None if len(sep) > 1 else encoding, quoting=csv.QUOTE_NONE if sep != "," else csv.QUOTE_MINIMAL,
            dtype=str, keep_default_na=False, na_filter=False, engine="c",
        )
        for i in int_fields:
            frame[names[i]] = frame[names[i]].astype("int64")
        return frame
    except (ValueError, pd.errors.ParserError) as error:
        bad = _first_bad_line(path, encoding, sep, len(names), int_fields, header)
        where = f"line {bad[0]}: {bad[1]!r}" if bad else str(error)
        raise DataFormatError(
            f"{path}, {where}. Expected {len(names)} fields separated by {sep!r} "
            f"({', '.join(names)}) with integer ids. The file may be damaged: fetch the release again."
        ) from None


def _interactions(user, item, timestamp=None, rating=None) -> pd.DataFrame:
    frame = pd.DataFrame({"user": pd.Series(user, dtype="int64"), "item": pd.Series(item, dtype="int64")})
    n = len(frame)
    frame["timestamp"] = pd.array(timestamp if timestamp is not None else [pd.NA] * n, dtype="Int64")
    frame["rating"] = pd.array(rating if rating is not None else [pd.NA] * n, dtype="Float64")
    return frame


def year_from_title(titles: pd.Series) -> pd.Series:
    """The release year in a MovieLens title such as ``"Heat (1995)"`` (``<NA>`` if absent)."""
    return titles.str.extract(_YEAR_IN_TITLE, expand=False).astype("Int64")


def _items(item, title, year, genres: list[tuple[str, ...]]) -> pd.DataFrame:
    frame = pd.DataFrame({"item": pd.Series(item, dtype="int64"), "title": pd.Series(title, dtype=str)})
    frame["year"] = pd.array(year, dtype="Int64")
    frame["genres"] = genres
    frame["primary_genre"] = pd.array([g[0] if g else pd.NA for g in genres], dtype="string")
    return frame


def _split_genres(column: pd.Series) -> list[tuple[str, ...]]:
    return [tuple(g for g in text.split("|") if g not in NO_GENRE) for text in column]


# ----------------------------------------------------------------------------- layouts
def read_ml100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ML-100K: tab-separated ``u.data`` and pipe-separated ``u.item`` with 19 genre flags."""
    ratings = _read_table(folder / "u.data", "\t", ["user", "item", "rating", "timestamp"], (0, 1, 2, 3))
    interactions = _interactions(ratings["user"], ratings["item"], ratings["timestamp"],
                                 ratings["rating"].astype(float))
    names = ["item", "title", "release_date", "video_date", "url", *ML100K_GENRES]
    raw = _read_table(folder / "u.item", "|", names, (0,) + tuple(range(5, 24)))
    flags = raw[list(ML100K_GENRES)].to_numpy()
    genres = [tuple(g for g, on in zip(ML100K_GENRES, row) if on and g not in NO_GENRE) for row in flags]
    # Titles carry the year too, but the release date is the field ML-100K documents.
    year = pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce").dt.year.astype("Int64")
    year = year.fillna(year_from_title(raw["title"]))
    return interactions, _items(raw["item"], raw["title"], year, genres)


def read_dat(folder: Path, release: Release) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ML-1M and ML-10M: ``::``-separated, latin-1 ``ratings.dat`` and ``movies.dat``.

    When ``ratings.dat`` is absent but ``sequences.txt`` is present (the
    order-only copy of ML-1M, one ``UserID MovieID`` pair a line, each user's
    lines in rating order), that is read instead: line order is the time order,
    and rating and timestamp are missing.
    """
    ratings_path = folder / release.ratings_file
    sequences_path = folder / "sequences.txt"
    if ratings_path.is_file():
        raw = _read_table(ratings_path, "::", ["user", "item", "rating", "timestamp"], (0, 1, 3))
        interactions = _interactions(raw["user"], raw["item"], raw["timestamp"], raw["rating"].astype(float))
    elif sequences_path.is_file() and "sequences.txt" in release.alternative_ratings_files:
        raw = _read_table(sequences_path, " ", ["user", "item"], (0, 1))
        interactions = _interactions(raw["user"], raw["item"])
    else:
        raise MissingDataError(
            f"{ratings_path} is missing. Fetch the release with recnb.load_movielens({release.name!r}) "
            f"or put the GroupLens files in {folder}."
        )
    movies = _read_table(folder / release.items_file, "::", ["item", "title", "genres"], (0,))
    return interactions, _items(movies["item"], movies["title"], year_from_title(movies["title"]),
                                _split_genres(movies["genres"]))


def read_csv_release(folder: Path, release: Release) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ML-20M, 25M, 32M and latest-small: utf-8 CSV with a header; the year sits in the title."""
    raw = _read_table(folder / release.ratings_file, ",", ["user", "item", "rating", "timestamp"],
                      (0, 1, 3), encoding="utf-8", header=True)
    interactions = _interactions(raw["user"], raw["item"], raw["timestamp"], raw["rating"].astype(float))
    movies = _read_table(folder / release.items_file, ",", ["item", "title", "genres"], (0,),
                         encoding="utf-8", header=True)
    title = movies["title"].str.strip()
    return interactions, _items(movies["item"], title, year_from_title(title), _split_genres(movies["genres"]))


def _known_users(folder: Path, release: Release) -> pd.Series | None:
    """User ids listed in the release's user file (ML-100K ``u.user``, ML-1M ``users.dat``), if any."""
    path = folder / ("u.user" if release.layout == "ml-100k" else "users.dat")
    if not path.is_file():
        return None
    sep = "|" if release.layout == "ml-100k" else "::"
    return _read_table(path, sep, ["user", "a", "b", "c", "d"], (0,))["user"]


def drop_unknown_ids(interactions: pd.DataFrame, items: pd.DataFrame, known_users: pd.Series | None,
                     ratings_file: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop ratings whose movie is not in the movie file or whose user is not in the user file.

    A published release has none; a copy that was appended to or mixed with
    another release has. They are dropped, counted, and reported in a warning
    that names the lines, so a modified file never passes unnoticed.
    """
    unknown_item = ~interactions["item"].isin(items["item"])
    unknown_user = ~interactions["user"].isin(known_users) if known_users is not None else unknown_item & False
    dropped = {}
    for reason, mask in (("unknown_user", unknown_user), ("unknown_item", unknown_item & ~unknown_user)):
        count = int(mask.sum())
        if count:
            dropped[reason] = count
            rows = mask.to_numpy().nonzero()[0]
            ids = interactions.loc[mask, "user" if reason == "unknown_user" else "item"].unique()
            shown = ", ".join(map(str, ids[:8])) + (", ..." if len(ids) > 8 else "")
            warnings.warn(
                f"{ratings_file}: dropped {count:,} ratings (data lines {rows[0] + 1:,} to {rows[-1] + 1:,}) "
                f"whose {reason.split('_')[1]} is not in the release's {reason.split('_')[1]} file "
                f"(ids {shown}). A published MovieLens file has none: this copy was modified; "
                "fetch the release again if that is not intended.",
                stacklevel=3,
            )
    if dropped:
        interactions = interactions.loc[~(unknown_user | unknown_item)].reset_index(drop=True)
    return interactions, dropped


def read_release(name: str, folder: str | Path) -> MovieLens:
    """Read release ``name`` from ``folder`` (the one holding its files) into the standard tables.

    Ratings by users missing from the user file, or of movies missing from the
    movie file, are dropped with a warning and counted in ``MovieLens.dropped``.
    """
    release = get_release(name)
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingDataError(f"{folder} does not exist; expected the files of {name} there.")
    if release.layout == "ml-100k":
        interactions, items = read_ml100k(folder)
    elif release.layout == "dat":
        interactions, items = read_dat(folder, release)
    else:
        interactions, items = read_csv_release(folder, release)
    ratings_file = folder / (release.ratings_file if (folder / release.ratings_file).is_file()
                             else release.alternative_ratings_files[0])
    interactions, dropped = drop_unknown_ids(interactions, items, _known_users(folder, release), ratings_file)
    return MovieLens(name, interactions, items, folder, dropped)
