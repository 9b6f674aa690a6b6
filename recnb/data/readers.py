"""Readers for each MovieLens file layout, all returning one standard pair of tables.

``interactions``: one row per rating, in file order, with columns

- ``user``, ``item``: the original MovieLens ids, int32 (every published id fits;
  half the memory of int64 at 25M rows), int64 if an id does not fit;
- ``timestamp`` (nullable Int64, seconds since 1970) and ``rating`` (nullable
  Float64): missing (``<NA>``) when the source does not have them, as in the
  order-only ``sequences.txt`` copy of ML-1M.

``items``: one row per movie, with columns ``item``, ``title``, ``year``
(nullable Int64), ``genres`` (tuple of str, in the order the file lists them)
and ``primary_genre`` (the first listed genre, ``<NA>`` when there is none).

What a file must look like, and what happens when it does not
-------------------------------------------------------------
A published release passes every check below unchanged; they exist for copies
that were edited, re-saved or damaged. A :class:`~recnb.errors.DataFormatError`
names the file, the 1-based line and what to do.

- **Lines.** Every line holds exactly the release's fields (``movies.dat``:
  ``MovieID::Title::Genres``); ids and timestamps are whole numbers written in
  digits (``12``; ``12.0`` is read as 12), ratings are numbers (``4`` or
  ``3.5``), titles are not empty. Anything else, such as a short line, a
  non-numeric rating or a stray separator, is an error at that line. Blank
  lines are skipped.
- **Encoding.** GroupLens publishes ML-100K, ML-1M and ML-10M in latin-1, the
  CSV releases in UTF-8. A file is read as UTF-8 when its bytes are valid UTF-8,
  otherwise as latin-1; one not in the published encoding is read with a
  warning (a ``movies.dat`` re-saved as UTF-8 reads correctly, not as
  ``CitÃ©``). Errors instead: text that is neither (a control character such
  as latin-1's 0x80-0x9F, typical of Windows-1252 or binary data), a file that
  mixes the two, and a latin-1 release's file whose UTF-8 text reads as
  mojibake (``CitÃ©``, double-encoded).
- **Duplicate movie ids** in the movie file are an error naming both lines.
- **Unknown ids**: ratings by a user missing from the user file, or of a movie
  missing from the movie file, are dropped, counted in
  ``MovieLens.dropped["unknown_user"]`` / ``["unknown_item"]`` and warned about.
- **Repeated ratings**: when a user rated the same film more than once, the
  first rating in time order is kept (the earliest timestamp; on ties, and in
  the order-only ``sequences.txt``, the first in the file) and the others are
  dropped, counted in ``MovieLens.dropped["duplicate_rating"]`` and reported in
  one warning. The published ML-100K and ML-1M have none.

Interaction files are parsed with pandas' C parser; the checks above cost a
few byte scans, and only a file that fails them is re-read line by line to
find the line to report.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from recnb.config import display_path
from recnb.data.releases import Release, get_release
from recnb.errors import DataFormatError, MissingDataError

#: ML-100K's genre flags, in the column order of ``u.item`` (from ``u.genre``).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
NO_GENRE = {"", "unknown", "(no genres listed)"}
_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")

# Column kinds: "id" a whole number (ids, timestamps, flags), "number" a finite float (ratings),
# "text" a non-empty string (titles), "any" any string.
_RATINGS = {"user": "id", "item": "id", "rating": "number", "timestamp": "id"}
_USERS_DAT = {"user": "id", "gender": "any", "age": "any", "occupation": "any", "zip_code": "any"}
_U_USER = {"user": "id", "age": "any", "gender": "any", "occupation": "any", "zip_code": "any"}
_DECIMAL = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")
_INT64_MAX = 2**63 - 1
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# C0 controls other than tab and line breaks, DEL, and C1 controls (latin-1's 0x80-0x9F):
# never in a title; in a file read as latin-1 they are bytes of another encoding (Windows-1252) or binary data.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# A UTF-8 byte sequence as it reads when decoded as latin-1 ("é" -> "Ã©").
_UTF8_AS_LATIN1 = re.compile("[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


@dataclass
class MovieLens:
    """A release as read from disk: interactions and items in the standard layout."""

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    source: Path
    #: Rows dropped while reading, by reason: ``unknown_user``, ``unknown_item`` (see
    #: :func:`drop_unknown_ids`) and ``duplicate_rating`` (see :func:`drop_repeated_ratings`).
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


# ----------------------------------------------------------------------------- parsing
class ParsedTable(NamedTuple):
    """A file's rows as read, and the line each came from (for errors and warnings that name it)."""

    frame: pd.DataFrame
    lines: np.ndarray  # the 1-based line number of each row in its file


class _BadField(ValueError):
    pass


def _shown(line: str) -> str:
    return repr(line if len(line) <= 100 else line[:100] + "...")


def _fail(path: Path, number: int, line: str, problem: str, sep: str, columns: dict[str, str]) -> DataFormatError:
    return DataFormatError(
        f"{path}, line {number}: {_shown(line)}: {problem}. Each line must hold {len(columns)} fields separated "
        f"by {sep!r} ({', '.join(columns)}). Fix or remove that line, or fetch the release again."
    )


def _whole_number(name: str, text: str) -> int:
    if text.isascii() and text.isdigit():
        if len(text.lstrip("0")) > 19:
            raise _BadField(f"{name} {text!r} is too large")
        value = int(text)
    elif _DECIMAL.fullmatch(text) and float(text).is_integer():  # 12.0, as pandas reads it
        value = int(float(text))
    else:
        raise _BadField(f"{name} {text!r} is not a whole number")
    if value > _INT64_MAX:
        raise _BadField(f"{name} {text!r} is too large")
    return value


def _number(name: str, text: str) -> float:
    if not _DECIMAL.fullmatch(text) or not np.isfinite(value := float(text)):
        raise _BadField(f"{name} {text!r} is not a number")
    return value


def _records(text: str, sep: str, header: bool):
    """(line number, line, fields) of each non-blank data line; CSV fields as the csv module splits them."""
    lines = io.StringIO(text, newline="")
    if sep == ",":
        reader, previous_end = csv.reader(lines), 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # e.g. a quoted field that never ends
                yield previous_end + 1, f"<{error}>", []
                return
            number, previous_end = previous_end + 1, reader.line_num
            if (header and number == 1) or not "".join(fields).strip(" \t"):
                continue
            yield number, ",".join(fields), fields
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if (header and number == 1) or not line.strip(" \t"):
            continue
        yield number, line, line.split(sep)


def parse_lines(text: str, path: Path, sep: str, columns: dict[str, str], header: bool) -> ParsedTable:
    """The reference parser: every rule checked line by line; the first broken one is the error."""
    names, kinds = list(columns), list(columns.values())
    values: list[list[object]] = [[] for _ in names]
    numbers: list[int] = []
    for number, line, fields in _records(text, sep, header):
        if len(fields) != len(names):
            raise _fail(path, number, line, f"{len(fields)} field{'s' * (len(fields) != 1)} where "
                        f"{len(names)} are expected", sep, columns)
        try:
            for column, name, kind, field in zip(values, names, kinds, fields):
                value: object = field
                if kind == "id":
                    value = _whole_number(name, field)
                elif kind == "number":
                    value = _number(name, field)
                elif kind == "text" and not field.strip():
                    raise _BadField(f"the {name} is empty")
                column.append(value)
        except _BadField as problem:
            raise _fail(path, number, line, str(problem), sep, columns) from None
        numbers.append(number)
    dtypes: dict[str, type | str] = {"id": "int64", "number": "float64", "text": object, "any": object}
    frame = pd.DataFrame({n: np.array(v, dtype=dtypes[k]) for n, k, v in zip(names, kinds, values)})
    return ParsedTable(frame, np.array(numbers, dtype=np.int64))


def _line_of(text: str, offset: int) -> tuple[int, str]:
    """The 1-based line number and the line at character ``offset``."""
    starts = [m.end() for m in _LINE_BREAK.finditer(text, 0, offset)]
    start = starts[-1] if starts else 0
    end = _LINE_BREAK.search(text, offset)
    return len(starts) + 1, text[start:end.start() if end else len(text)]


def _decode(data: bytes, path: Path, published: str) -> str:
    """The text of a file with text fields: UTF-8 when its bytes are valid UTF-8, else latin-1 (see the module doc)."""
    if data.isascii():
        return data.decode("ascii")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        text = data.decode("latin-1")  # one character per byte: offsets are byte offsets
        if mixed := _UTF8_AS_LATIN1.search(text):
            number, line = _line_of(text, mixed.start())
            other, _ = _line_of(text, error.start)
            raise DataFormatError(
                f"{path}, line {number}: {_shown(line)} holds UTF-8 text ({mixed.group()!r} would read "
                f"{mixed.group().encode('latin-1').decode('utf-8')!r}), but line {other} is not valid UTF-8: "
                "the file mixes encodings. Re-save it all in latin-1 or all in UTF-8, or fetch the release again."
            ) from None
        if control := _CONTROL.search(text):
            number, line = _line_of(text, control.start())
            raise DataFormatError(
                f"{path}, line {number}: {_shown(line)} holds byte 0x{ord(control.group()):02X}, which is neither "
                "UTF-8 nor latin-1 text (the file may be in Windows-1252, or not text). "
                "Re-save it as latin-1 or UTF-8, or fetch the release again."
            ) from None
        if published != "latin-1":
            number, line = _line_of(text, error.start)
            warnings.warn(f"{path} is not UTF-8, as GroupLens publishes it (line {number}: {_shown(line)}); "
                          "read it as latin-1.", stacklevel=5)
        return text
    if control := _CONTROL.search(text):
        number, line = _line_of(text, control.start())
        raise DataFormatError(
            f"{path}, line {number}: {_shown(line)} holds the control character U+{ord(control.group()):04X}, "
            "which is never part of MovieLens text. Fix or remove that line, or fetch the release again."
        )
    if published == "latin-1":
        if twice := _UTF8_AS_LATIN1.search(text):
            number, line = _line_of(text, twice.start())
            raise DataFormatError(
                f"{path}, line {number}: {_shown(line)} looks encoded twice ({twice.group()!r} is "
                f"{twice.group().encode('latin-1').decode('utf-8')!r} in UTF-8 read as latin-1 and saved again). "
                "Fetch the release again, or repair the file with text.encode('latin-1').decode('utf-8')."
            )
        warnings.warn(f"{path} is UTF-8 text, but GroupLens publishes it in latin-1 (re-saved by an editor?); "
                      "read it as UTF-8.", stacklevel=5)
    return text


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise MissingDataError(f"{path} is missing. Re-extract the release or fetch it again.")
    return path.read_bytes()


def _no_rows(path: Path) -> DataFormatError:
    return DataFormatError(f"{path} holds no data lines: it is empty or truncated. Fetch the release again.")


def _read_text(path: Path, sep: str, columns: dict[str, str], encoding: str, header: bool = False) -> ParsedTable:
    """A small file with text fields (movies, users), parsed and checked line by line."""
    table = parse_lines(_decode(_read_bytes(path), path, encoding), path, sep, columns, header)
    if table.frame.empty:
        raise _no_rows(path)
    return table


def _read_numbers_fast(data: bytes, sep: str, columns: dict[str, str], header: bool) -> ParsedTable | None:
    """Parse an all-numeric file with pandas' C parser, or return None when the reference parser must decide.

    The C parser is laxer than the rules (it pads short lines, reads ``1e3`` as a
    whole number, skips blank lines), so the result is used only when cheap byte
    counts prove that it is what the line-by-line reading would give: only
    digits, separators and line breaks (and ``.`` when there is a rating), the
    same number of separators on every line, and one row per line.
    """
    start = data.find(b"\n") + 1 if header else 0  # offsets, not a slice: no copy of a large file
    if header and start == 0:
        return None
    byte_sep = sep.encode()
    if len(sep) > 1:
        # The C parser takes one-character separators only; a tab never occurs in these files.
        if b"\t" in data:
            return None
        data, byte_sep = data.replace(byte_sep, b"\t"), b"\t"
    allowed = b"0123456789\r\n" + byte_sep + b"." * ("number" in columns.values())
    if len(data.translate(None, allowed)) != len(data[:start].translate(None, allowed)):
        return None  # a letter, a sign, a space, a stray ':' or a non-ASCII byte after the header
    n_breaks = data.count(b"\n", start)
    if (carriage_returns := data.count(b"\r", start)) and carriage_returns != data.count(b"\r\n", start):
        return None  # lone carriage returns: leave the line numbering to the reference parser
    n_lines = n_breaks + (len(data) > start and not data.endswith(b"\n"))
    first_end = data.find(b"\n", start)
    if data.count(byte_sep, start, first_end if first_end >= 0 else len(data)) != len(columns) - 1:
        return None  # pandas would silently drop or pad line 1's fields
    try:
        frame = pd.read_csv(
            io.BytesIO(data), sep=byte_sep.decode(), names=list(columns), header=None, skiprows=1 if header else None,
            index_col=False, dtype={n: "int64" if k == "id" else "float64" for n, k in columns.items()},
            na_filter=False, quoting=csv.QUOTE_NONE, engine="c",
        )
    except (ValueError, OverflowError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if len(frame) != n_lines or data.count(byte_sep, start) != (len(columns) - 1) * n_lines:
        return None  # a blank line skipped, or a short line padded
    numbers = [n for n, k in columns.items() if k == "number"]
    if not all(np.isfinite(frame[n].to_numpy()).all() for n in numbers):
        return None
    return ParsedTable(frame, np.arange(1, n_lines + 1, dtype=np.int64) + (1 if header else 0))


def read_number_file(path: Path, sep: str, columns: dict[str, str], header: bool = False) -> ParsedTable:
    """An interaction file (ids, ratings, timestamps): the C parser, or the line-by-line reading when in doubt."""
    data = _read_bytes(path)
    table = _read_numbers_fast(data, sep, columns, header)
    if table is None:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")  # a non-ASCII byte is an error in a numeric field anyway
        table = parse_lines(text, path, sep, columns, header)
    if table.frame.empty:
        raise _no_rows(path)
    return table


def _check_unique_items(table: ParsedTable, path: Path) -> None:
    """Each movie id once: two lines for one id would make its title and genres a guess."""
    ids = table.frame["item"]
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        first = ids.iloc[int(repeated.argmax())]
        lines = [f"{n:,}" for n in table.lines[(ids == first).to_numpy()]]
        more = int(ids[repeated].nunique()) - 1
        raise DataFormatError(
            f"{path}: movie id {first} is listed on lines {', '.join(lines[:-1])} and {lines[-1]}"
            + (f" ({more:,} more ids are listed more than once)" if more else "")
            + ". Each movie must have one line: remove the extra lines, or fetch the release again."
        )


# ----------------------------------------------------------------------------- tables
def _id_column(values) -> np.ndarray:
    """Ids as int32 when every one fits (all MovieLens ids do: half the memory of int64), else int64."""
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        values = values.astype(np.int64)
    if not len(values) or (values.min() >= -2**31 and values.max() < 2**31):
        return values.astype(np.int32, copy=False)
    return values.astype(np.int64, copy=False)


def _masked(values, dtype: str, numpy_dtype) -> pd.api.extensions.ExtensionArray:
    """A nullable column; a NumPy array without missing values is wrapped as it is, with no copy."""
    if isinstance(values, pd.Series):
        values = values.array if isinstance(values.dtype, pd.api.extensions.ExtensionDtype) else values.to_numpy()
    if isinstance(values, np.ndarray) and values.dtype == numpy_dtype and not (
            numpy_dtype == np.float64 and np.isnan(values).any()):
        array_type = pd.arrays.IntegerArray if dtype == "Int64" else pd.arrays.FloatingArray
        return array_type(values, np.zeros(len(values), dtype=bool))
    return pd.array(values, dtype=dtype)


def interactions_table(user, item, timestamp=None, rating=None) -> pd.DataFrame:
    """The standard interactions table (see the module docstring) from columns; missing ones are ``<NA>``."""
    user, item = _id_column(user), _id_column(item)
    dtype = np.int32 if user.dtype == item.dtype == np.int32 else np.int64
    frame = pd.DataFrame({"user": user.astype(dtype, copy=False), "item": item.astype(dtype, copy=False)},
                         copy=False)
    missing = np.ones(len(frame), dtype=bool)  # all-missing columns built as masked arrays: no per-row <NA>
    frame["timestamp"] = (_masked(timestamp, "Int64", np.int64) if timestamp is not None
                          else pd.arrays.IntegerArray(np.zeros(len(frame), dtype=np.int64), missing))
    frame["rating"] = (_masked(rating, "Float64", np.float64) if rating is not None
                       else pd.arrays.FloatingArray(np.zeros(len(frame)), missing))
    return frame


def year_from_title(titles: pd.Series) -> pd.Series:
    """The release year in a MovieLens title such as ``"Heat (1995)"`` (``<NA>`` if absent)."""
    return titles.str.extract(_YEAR_IN_TITLE, expand=False).astype("Int64")


def items_table(item, title, year, genres: list[tuple[str, ...]]) -> pd.DataFrame:
    """The standard items table (see the module docstring) from columns; the primary genre is the first listed."""
    frame = pd.DataFrame({"item": pd.Series(item, dtype="int64"), "title": pd.Series(title, dtype=str)})
    frame["year"] = pd.array(year, dtype="Int64")
    frame["genres"] = genres
    frame["primary_genre"] = pd.array([g[0] if g else pd.NA for g in genres], dtype="string")
    return frame


def _split_genres(column: pd.Series) -> list[tuple[str, ...]]:
    return [tuple(g for g in text.split("|") if g not in NO_GENRE) for text in column]


class LayoutTables(NamedTuple):
    """What a layout reader returns: the two standard tables and where the interactions came from."""

    interactions: pd.DataFrame  # with a ``line`` column: each row's line in ``ratings_file``
    items: pd.DataFrame
    ratings_file: Path


def _with_lines(interactions: pd.DataFrame, table: ParsedTable) -> pd.DataFrame:
    interactions["line"] = table.lines
    return interactions


# ----------------------------------------------------------------------------- layouts
def read_ml100k(folder: Path) -> LayoutTables:
    """ML-100K: tab-separated ``u.data`` and pipe-separated, latin-1 ``u.item`` with 19 genre flags."""
    ratings = read_number_file(folder / "u.data", "\t", _RATINGS)
    raw = ratings.frame
    interactions = _with_lines(interactions_table(raw["user"], raw["item"], raw["timestamp"], raw["rating"]), ratings)
    columns = {"item": "id", "title": "text", "release_date": "any", "video_date": "any", "url": "any",
               **{genre: "id" for genre in ML100K_GENRES}}
    movies = _read_text(folder / "u.item", "|", columns, "latin-1")
    _check_unique_items(movies, folder / "u.item")
    raw = movies.frame
    flags = raw[list(ML100K_GENRES)].to_numpy()
    genres = [tuple(g for g, on in zip(ML100K_GENRES, row) if on and g not in NO_GENRE) for row in flags]
    # Titles carry the year too, but the release date is the field ML-100K documents.
    year = pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce").dt.year.astype("Int64")
    year = year.fillna(year_from_title(raw["title"]))
    return LayoutTables(interactions, items_table(raw["item"], raw["title"], year, genres), folder / "u.data")


def read_dat(folder: Path, release: Release) -> LayoutTables:
    """ML-1M and ML-10M: ``::``-separated, latin-1 ``ratings.dat`` and ``movies.dat``.

    When ``ratings.dat`` is absent but ``sequences.txt`` is present (the
    order-only copy of ML-1M, one ``UserID MovieID`` pair a line, each user's
    lines in rating order), that is read instead: line order is the time order,
    and rating and timestamp are missing.
    """
    ratings_path = folder / release.ratings_file
    sequences_path = folder / "sequences.txt"
    if ratings_path.is_file():
        ratings = read_number_file(ratings_path, "::", _RATINGS)
        raw = ratings.frame
        interactions = interactions_table(raw["user"], raw["item"], raw["timestamp"], raw["rating"])
    elif sequences_path.is_file() and "sequences.txt" in release.alternative_ratings_files:
        ratings_path = sequences_path
        ratings = read_number_file(sequences_path, " ", {"user": "id", "item": "id"})
        interactions = interactions_table(ratings.frame["user"], ratings.frame["item"])
    else:
        raise MissingDataError(
            f"{ratings_path} is missing. Fetch the release with recnb.load_movielens({release.name!r}) "
            f"or put the GroupLens files in {folder}."
        )
    movies_path = folder / release.items_file
    movies = _read_text(movies_path, "::", {"item": "id", "title": "text", "genres": "any"}, "latin-1")
    _check_unique_items(movies, movies_path)
    raw = movies.frame
    items = items_table(raw["item"], raw["title"], year_from_title(raw["title"]), _split_genres(raw["genres"]))
    return LayoutTables(_with_lines(interactions, ratings), items, ratings_path)


def read_csv_release(folder: Path, release: Release) -> LayoutTables:
    """ML-20M, 25M, 32M and latest-small: utf-8 CSV with a header; the year sits in the title."""
    ratings_path, movies_path = folder / release.ratings_file, folder / release.items_file
    ratings = read_number_file(ratings_path, ",", _RATINGS, header=True)
    raw = ratings.frame
    interactions = interactions_table(raw["user"], raw["item"], raw["timestamp"], raw["rating"])
    movies = _read_text(movies_path, ",", {"item": "id", "title": "text", "genres": "any"}, "utf-8", header=True)
    _check_unique_items(movies, movies_path)
    title = movies.frame["title"].str.strip()
    items = items_table(movies.frame["item"], title, year_from_title(title), _split_genres(movies.frame["genres"]))
    return LayoutTables(_with_lines(interactions, ratings), items, ratings_path)


def _known_users(folder: Path, release: Release) -> pd.Series | None:
    """User ids listed in the release's user file (ML-100K ``u.user``, ML-1M ``users.dat``), if any."""
    path = folder / ("u.user" if release.layout == "ml-100k" else "users.dat")
    if not path.is_file():
        return None
    sep, columns = ("|", _U_USER) if release.layout == "ml-100k" else ("::", _USERS_DAT)
    return _read_text(path, sep, columns, "latin-1").frame["user"]


def _lines(interactions: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """File line numbers of the given row positions (row + 1 when the table carries no ``line`` column)."""
    return interactions["line"].to_numpy()[rows] if "line" in interactions else rows + 1


def _span(lines: np.ndarray) -> str:
    return f"line {lines[0]:,}" if len(lines) == 1 else f"lines {lines[0]:,} to {lines[-1]:,}"


def _is_in(values: pd.Series, known: pd.Series) -> pd.Series:
    """``values.isin(known)``; for small non-negative ids a lookup table, one pass with no hashing."""
    ids, allowed = values.to_numpy(), known.to_numpy()
    if (len(ids) and len(allowed) and ids.dtype.kind == allowed.dtype.kind == "i" and min(ids.min(), allowed.min()) >= 0
            and max(ids.max(), allowed.max()) < 4 * len(ids) + (1 << 20)):
        table = np.zeros(int(max(ids.max(), allowed.max())) + 1, dtype=bool)
        table[allowed] = True
        return pd.Series(table[ids], index=values.index)
    return values.isin(known)


def drop_unknown_ids(interactions: pd.DataFrame, items: pd.DataFrame, known_users: pd.Series | None,
                     ratings_file: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop ratings whose movie is not in the movie file or whose user is not in the user file.

    A published release has none; a copy that was appended to or mixed with
    another release has. They are dropped, counted, and reported in a warning
    that names the lines, so a modified file never passes unnoticed.
    """
    unknown_item = ~_is_in(interactions["item"], items["item"])
    unknown_user = ~_is_in(interactions["user"], known_users) if known_users is not None else unknown_item & False
    dropped = {}
    for reason, mask in (("unknown_user", unknown_user), ("unknown_item", unknown_item & ~unknown_user)):
        count = int(mask.sum())
        if count:
            dropped[reason] = count
            lines = _lines(interactions, mask.to_numpy().nonzero()[0])
            ids = interactions.loc[mask, "user" if reason == "unknown_user" else "item"].unique()
            shown = ", ".join(map(str, ids[:8])) + (", ..." if len(ids) > 8 else "")
            warnings.warn(
                f"{ratings_file}: dropped {count:,} ratings ({_span(lines)}) "
                f"whose {reason.split('_')[1]} is not in the release's {reason.split('_')[1]} file "
                f"(ids {shown}). A published MovieLens file has none: this copy was modified; "
                "fetch the release again if that is not intended.",
                stacklevel=3,
            )
    if dropped:
        interactions = interactions.loc[~(unknown_user | unknown_item)].reset_index(drop=True)
    return interactions, dropped


def drop_repeated_ratings(interactions: pd.DataFrame, ratings_file: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep each user's first rating of a film, in time order, and drop the later ones.

    Time order is the timestamp, ties broken by file order; without timestamps
    (``sequences.txt``) the file order. A repeated film would otherwise appear
    twice in a user's sequence, as its own next item or as a held-out film the
    user has already "seen". The drops are counted (``duplicate_rating``) and
    reported in one warning that names an example line.
    """
    if interactions.empty:
        return interactions, {}
    user, item = interactions["user"].to_numpy(), interactions["item"].to_numpy()
    if min(user.min(), item.min()) >= 0 and max(user.max(), item.max()) < 2**31:  # one int64 key per pair
        key = (user.astype(np.int64) << 31) | item
        if (key[1:] > key[:-1]).all():
            return interactions, {}  # ordered by user then film, as the CSV releases are: no pair twice
        pair = pd.Series(key)
    else:
        pair = pd.Series(list(zip(user, item)))
    repeated = pair.duplicated().to_numpy()
    if not repeated.any():
        return interactions, {}
    if interactions["timestamp"].notna().all():
        order = np.argsort(interactions["timestamp"].to_numpy(dtype=np.int64), kind="stable")
        repeated = np.empty_like(repeated)
        repeated[order] = pair.iloc[order].duplicated().to_numpy()
    count = int(repeated.sum())
    example = int(repeated.argmax())
    kept = int(((pair == pair.iloc[example]).to_numpy() & ~repeated).argmax())
    line, kept_line = _lines(interactions, np.array([example, kept]))
    warnings.warn(
        f"{ratings_file}: dropped {count:,} repeated rating{'s' * (count != 1)} of a film by the same user (for "
        f"example line {line:,}: user {user[example]} rated film {item[example]} already on line {kept_line:,}). "
        "recnb keeps each user's first rating of a film in time order and drops the rest; a published MovieLens "
        "file has none.",
        stacklevel=3,
    )
    return interactions.loc[~repeated].reset_index(drop=True), {"duplicate_rating": count}


def read_release(name: str, folder: str | Path) -> MovieLens:
    """Read release ``name`` from ``folder`` (the one holding its files) into the standard tables.

    A file that breaks the release's layout raises :class:`~recnb.errors.DataFormatError`
    naming the file and line. Ratings by users missing from the user file, of
    movies missing from the movie file, and repeated ratings of a film by one
    user are dropped with a warning and counted in ``MovieLens.dropped`` (see
    the module docstring for every rule).
    """
    release = get_release(name)
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingDataError(f"{folder} does not exist; expected the files of {name} there.")
    if release.layout == "ml-100k":
        tables = read_ml100k(folder)
    elif release.layout == "dat":
        tables = read_dat(folder, release)
    else:
        tables = read_csv_release(folder, release)
    interactions, dropped = drop_unknown_ids(tables.interactions, tables.items, _known_users(folder, release),
                                             tables.ratings_file)
    interactions, repeated = drop_repeated_ratings(interactions, tables.ratings_file)
    return MovieLens(name, interactions.drop(columns="line"), tables.items, folder, dropped | repeated)
