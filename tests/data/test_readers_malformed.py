"""The readers on damaged, re-saved and edited copies: a clear error naming file and line, or a counted policy.

One test per case of the module docstring of ``recnb.data.readers``, each on small
files in the GroupLens layouts, then Hypothesis properties that mix random
malformed lines into valid files and accept only a :class:`DataFormatError`
that names the file (and the first bad line), or exactly the valid rows.
"""

from __future__ import annotations

import codecs
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recnb.data.readers import parse_lines, read_number_file, read_release
from recnb.errors import DataFormatError, RecnbError

# Few, reproducible examples: these properties run in CI on every push.
PROPERTY = settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MOVIES_DAT = "1::Heat (1995)::Action|Crime\n2::Amélie (2001)::Comedy|Romance\n3::Jaws (1975)::Horror\n"
U_ITEM_FLAGS = "|".join(["0"] * 19)


def write(folder: Path, name: str, content: str | bytes, encoding: str = "latin-1") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def u_item_line(item: int, title: str) -> str:
    return f"{item}|{title}|01-Jan-1995||http://example.org/{item}|{U_ITEM_FLAGS}"


def read_quietly(name: str, folder: Path):
    """read_release with its warnings returned as strings, so a test can assert on them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = read_release(name, folder)
    return raw, [str(w.message) for w in caught]


# ----------------------------------------------------------------------------- 1. short movie lines
@pytest.mark.parametrize("line, problem", [("12::Title", "2 fields where 3 are expected"),
                                           ("12", "1 field where 3 are expected"),
                                           ("12::   ::Drama", "the title is empty")])
def test_short_or_untitled_movies_dat_line_is_an_error(tmp_path, line, problem):
    folder = tmp_path / "ml-1m"
    write(folder, "ratings.dat", "1::1::5::978300760\n")
    write(folder, "movies.dat", MOVIES_DAT + line + "\n")
    with pytest.raises(DataFormatError, match=rf"movies\.dat, line 4: {re.escape(repr(line))}: {problem}\. "
                                              r".*Fix or remove that line"):
        read_release("ml-1m", folder)


def test_short_u_item_line_is_an_error(tmp_path):
    folder = tmp_path / "ml-100k"
    write(folder, "u.data", "1\t1\t5\t881250949\n")
    write(folder, "u.item", u_item_line(1, "Toy Story (1995)") + "\n2|GoldenEye (1995)\n")
    with pytest.raises(DataFormatError, match=r"u\.item, line 2: '2\|GoldenEye \(1995\)': 2 fields where 24"):
        read_release("ml-100k", folder)


# ----------------------------------------------------------------------------- 2. encodings
def test_movies_dat_resaved_as_utf8_reads_correctly_with_a_warning(tmp_path):
    folder = tmp_path / "ml-1m"
    write(folder, "ratings.dat", "1::1::5::978300760\n")
    write(folder, "movies.dat", "1::Cité de la peur, La (1995)::Comedy\n2::Amélie (2001)::Comedy\n", "utf-8")
    raw, caught = read_quietly("ml-1m", folder)
    assert raw.items["title"].tolist() == ["Cité de la peur, La (1995)", "Amélie (2001)"]
    assert [w for w in caught if "movies.dat is UTF-8 text" in w and "latin-1" in w]
    # the published encoding reads the same titles without a word
    write(folder, "movies.dat", "1::Cité de la peur, La (1995)::Comedy\n2::Amélie (2001)::Comedy\n", "latin-1")
    raw, caught = read_quietly("ml-1m", folder)
    assert raw.items["title"].tolist() == ["Cité de la peur, La (1995)", "Amélie (2001)"] and caught == []


def test_u_item_with_utf8_bom_reads_correctly(tmp_path):
    folder = tmp_path / "ml-100k"
    write(folder, "u.data", "1\t1\t5\t881250949\n")
    write(folder, "u.item", "\ufeff" + u_item_line(1, "Misérables, Les (1995)") + "\n", "utf-8")
    raw, caught = read_quietly("ml-100k", folder)
    assert raw.items["title"].tolist() == ["Misérables, Les (1995)"]
    assert [w for w in caught if "UTF-8" in w]


@pytest.mark.parametrize("content, problem", [
    ("1::Heat (1995)::Action\n2::CitÃ© (1995)::Comedy\n".encode(),
     r"line 2: .* looks encoded twice \('Ã©' is 'é'"),
    ("1::Cité (1995)::Comedy\n".encode() + "2::Amélie (2001)::Comedy\n".encode("latin-1"),
     r"line 1: .* holds UTF-8 text .* but line 2 is not valid UTF-8: the file mixes encodings"),
    ("1::Heat (1995)::Action\n2::Schindler’s List (1993)::Drama\n".encode("cp1252"),
     r"line 2: .* holds byte 0x92, which is neither UTF-8 nor latin-1 text"),
    (b"1::Heat (1995)::Action\n2::\x00\x01\xff\xfe::Drama\n", r"line 2: .* holds byte 0x00"),
])
def test_text_in_neither_encoding_is_an_error(tmp_path, content, problem):
    folder = tmp_path / "ml-1m"
    write(folder, "ratings.dat", "1::1::5::978300760\n")
    write(folder, "movies.dat", content)
    with pytest.raises(DataFormatError, match=r"movies\.dat, " + problem):
        read_release("ml-1m", folder)


def test_csv_release_saved_as_latin1_reads_with_a_warning(tmp_path):
    folder = tmp_path / "ml-latest-small"
    write(folder, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    write(folder, "movies.csv", "movieId,title,genres\n1,Amélie (2001),Comedy|Romance\n", "latin-1")
    raw, caught = read_quietly("ml-latest-small", folder)
    assert raw.items["title"].tolist() == ["Amélie (2001)"]
    assert [w for w in caught if "movies.csv is not UTF-8" in w and "line 2" in w]


# ----------------------------------------------------------------------------- 3. duplicate movie ids
@pytest.mark.parametrize("release, name, ratings, content, lines", [
    ("ml-1m", "movies.dat", ("ratings.dat", "1::1::5::1\n"),
     "1::Heat (1995)::Action\n2::Jaws (1975)::Horror\n\n1::Heat (1995)::Action|Crime\n", "1 and 4"),
    ("ml-100k", "u.item", ("u.data", "1\t1\t5\t1\n"),
     "\n".join(u_item_line(i, t) for i, t in [(1, "Heat (1995)"), (2, "Jaws (1975)"), (1, "Heat")]) + "\n", "1 and 3"),
    ("ml-latest-small", "movies.csv", ("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n"),
     'movieId,title,genres\n1,Heat (1995),Action\n2,"Jaws, the (1975)",Horror\n1,Heat,Crime\n', "2 and 4"),
])
def test_duplicate_movie_id_names_both_lines(tmp_path, release, name, ratings, content, lines):
    folder = tmp_path / release
    write(folder, *ratings)
    write(folder, name, content)
    with pytest.raises(DataFormatError, match=rf"{re.escape(name)}: movie id 1 is listed on lines {lines}\. "
                                              "Each movie must have one line"):
        read_release(release, folder)


# ----------------------------------------------------------------------------- 4. non-numeric ratings and timestamps
@pytest.mark.parametrize("release, name, movies, line", [
    ("ml-1m", "ratings.dat", ("movies.dat", MOVIES_DAT), "1::2::five::978300761"),
    ("ml-1m", "ratings.dat", ("movies.dat", MOVIES_DAT), "1::2::nan::978300761"),
    ("ml-1m", "ratings.dat", ("movies.dat", MOVIES_DAT), "1::2::4::yesterday"),
    ("ml-100k", "u.data", ("u.item", u_item_line(1, "A") + "\n" + u_item_line(2, "B") + "\n"), "1\t2\t4,5\t881250949"),
    ("ml-100k", "u.data", ("u.item", u_item_line(1, "A") + "\n" + u_item_line(2, "B") + "\n"), "1\t2\t4\t8.8e8"),
    ("ml-latest-small", "ratings.csv", ("movies.csv", "movieId,title,genres\n1,A,Drama\n2,B,Drama\n"),
     "1,2,inf,964982703"),
])
def test_non_numeric_rating_or_timestamp_names_file_and_line(tmp_path, release, name, movies, line):
    folder = tmp_path / release
    sep = {"ratings.dat": "::", "u.data": "\t", "ratings.csv": ","}[name]
    header = "userId,movieId,rating,timestamp\n" if name.endswith(".csv") else ""
    write(folder, *movies)
    good = sep.join(["1", "1", "5", "978300760"])
    write(folder, name, header + f"{good}\n\n{good.replace('1', '3', 1)}\n{line}\n")
    number = 4 + bool(header)  # the blank line counts: line numbers are the editor's
    with pytest.raises(DataFormatError, match=rf"{re.escape(name)}, line {number}: {re.escape(repr(line))}: "
                                              r"(rating|timestamp) '.*' is not a (whole )?number"):
        read_release(release, folder)


# ----------------------------------------------------------------------------- 5. repeated (user, film) pairs
@pytest.mark.parametrize("release, files, kept_lines", [
    # ratings.dat: user 1 rated film 1 at t=30 (line 1) and again earlier at t=10 (line 3): line 3 is kept
    ("ml-1m", {"ratings.dat": "1::1::5::30\n1::2::4::20\n1::1::3::10\n2::1::4::10\n1::1::1::10\n",
               "movies.dat": MOVIES_DAT}, [2, 3, 4]),
    # sequences.txt has no timestamps: file order is time order, the first line of a pair is kept
    ("ml-1m", {"sequences.txt": "1 1\n1 2\n1 1\n2 1\n1 2\n", "movies.dat": MOVIES_DAT}, [1, 2, 4]),
    ("ml-100k", {"u.data": "1\t1\t5\t30\n1\t2\t4\t20\n1\t1\t3\t10\n2\t1\t4\t10\n1\t1\t1\t10\n",
                 "u.item": u_item_line(1, "A") + "\n" + u_item_line(2, "B") + "\n"}, [2, 3, 4]),
    ("ml-latest-small", {"ratings.csv": "userId,movieId,rating,timestamp\n1,1,5.0,30\n1,2,4.0,20\n1,1,3.0,10\n"
                                        "2,1,4.0,10\n1,1,1.0,10\n",
                         "movies.csv": "movieId,title,genres\n1,A,Drama\n2,B,Drama\n"}, [3, 4, 5]),
])
def test_repeated_pairs_keep_the_first_in_time_order_counted_and_warned(tmp_path, release, files, kept_lines):
    folder = tmp_path / release
    for name, content in files.items():
        write(folder, name, content)
    raw, caught = read_quietly(release, folder)
    ratings_name = next(name for name in files if not name.startswith(("movies", "u.item")))
    source = [line for line in files[ratings_name].splitlines() if line and not line.startswith("userId")]
    header = ratings_name.endswith(".csv")
    expected = [re.split(r"::|\t|,| ", source[n - 1 - header]) for n in kept_lines]
    assert raw.interactions[["user", "item"]].values.tolist() == [[int(u), int(i)] for u, i, *_ in expected]
    assert raw.dropped == {"duplicate_rating": 2}
    repeated = [w for w in caught if "repeated ratings" in w]
    assert len(repeated) == 1 and f"{ratings_name}: dropped 2 repeated ratings" in repeated[0]
    assert "keeps each user's first rating of a film in time order" in repeated[0]


def test_real_releases_have_no_repeated_pairs_or_duplicate_movies(ml100k_dir, ml1m_raw):
    """The published figures do not move: nothing is dropped from the shared ML-100K and ML-1M."""
    raw_100k, caught = read_quietly("ml-100k", ml100k_dir)
    for raw, n_ratings in ((raw_100k, 100_000), (ml1m_raw, 1_000_209)):
        assert raw.dropped == {} and len(raw.interactions) == n_ratings
        assert raw.items["item"].is_unique
    assert caught == []


def test_empty_ratings_file_is_an_error(tmp_path):
    folder = tmp_path / "ml-1m"
    write(folder, "movies.dat", MOVIES_DAT)
    write(folder, "ratings.dat", "\n\n")
    with pytest.raises(DataFormatError, match=r"ratings\.dat holds no data lines"):
        read_release("ml-1m", folder)


# ----------------------------------------------------------------------------- properties
# Interaction file -> (release, separator, number of fields, header line, the other files the release needs)
LAYOUTS = {
    "ratings.dat": ("ml-1m", "::", 4, None, {"movies.dat": MOVIES_DAT}),
    "sequences.txt": ("ml-1m", " ", 2, None, {"movies.dat": MOVIES_DAT}),
    "u.data": ("ml-100k", "\t", 4, None, {"u.item": "\n".join(u_item_line(i, f"Film {i}") for i in (1, 2, 3))}),
    "ratings.csv": ("ml-latest-small", ",", 4, "userId,movieId,rating,timestamp",
                    {"movies.csv": "movieId,title,genres\n1,A,Drama\n2,B,Drama\n3,C,Drama\n"}),
}

valid_ratings = st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3), st.sampled_from(["1", "4", "3.5", "5.0"]),
                                   st.integers(0, 5)), max_size=12)
blank_lines = st.sampled_from(["", " ", "\t", "  \t"])
# Text and bytes that cannot form a valid line of an all-numeric file: not blank, and some
# character that is neither a digit, a '.', nor a separator.
no_breaks = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r")
random_text = st.text(no_breaks, min_size=1, max_size=20).filter(
    lambda t: t.strip(" \t") and re.search(r"[^0-9.:,\t ]", t))
random_bytes = st.binary(min_size=1, max_size=20).filter(
    lambda b: b"\n" not in b and b"\r" not in b and b.strip(b" \t") and re.search(rb"[^0-9.:,\t ]", b)
    and not b.startswith(codecs.BOM_UTF8))  # a BOM is stripped, and what follows might be a valid line
not_a_number = st.sampled_from(["five", "nan", "inf", "-1", "+3", "1e3", "4,5", "", " 4", "4 ", "0x1F", "½", "٣",
                                "1.2.3", ".", "99999999999999999999999", "1_000"])


@st.composite
def malformed_line(draw, sep: str, n_fields: int) -> str | bytes:
    fields = [str(draw(st.integers(1, 3))) for _ in range(n_fields)]
    kind = draw(st.sampled_from(["missing", "extra", "not_a_number", "wrong_sep", "text", "bytes"]))
    if kind == "missing":
        return sep.join(fields[:draw(st.integers(1, n_fields - 1))])
    if kind == "extra":
        return sep.join(fields + ["1"] * draw(st.integers(1, 2)))
    if kind == "not_a_number":
        position = draw(st.integers(0, n_fields - 1))
        token = draw(not_a_number)
        fields[0 if token.isdigit() else position] = token  # a huge whole number is a valid rating
        return sep.join(fields)
    if kind == "wrong_sep":
        other = draw(st.sampled_from([s for s in ("::", ":", ";", "|", "\t", " ", ",", "-") if s != sep]))
        return other.join(fields)
    return draw(random_text if kind == "text" else random_bytes)


def expected_interactions(rows: list[tuple], has_time: bool) -> tuple[list[list[int]], int]:
    """The rule, written out: each (user, film) pair's earliest rating (ties: the first line), in file order."""
    order = sorted(range(len(rows)), key=lambda k: (rows[k][3] if has_time else 0, k))
    seen, kept = set(), set()
    for k in order:
        if rows[k][:2] not in seen:
            seen.add(rows[k][:2])
            kept.add(k)
    return [list(rows[k][:2]) for k in sorted(kept)], len(rows) - len(kept)


@pytest.mark.parametrize("ratings_name", list(LAYOUTS))
@PROPERTY
@given(data=st.data())
def test_property_interaction_file_with_malformed_lines(ratings_name, data):
    release, sep, n_fields, header, others = LAYOUTS[ratings_name]
    rows = data.draw(valid_ratings)
    if n_fields == 2:
        rows = [(user, item, None, None) for user, item, _, _ in rows]
    lines = [sep.join(str(v) for v in row if v is not None) for row in rows]
    kinds = ["valid"] * len(lines)
    for line in data.draw(st.lists(blank_lines, max_size=2)):
        at = data.draw(st.integers(0, len(lines)))
        lines.insert(at, line)
        kinds.insert(at, "blank")
    for line in data.draw(st.lists(malformed_line(sep, n_fields), max_size=2)):
        at = data.draw(st.integers(0, len(lines)))
        lines.insert(at, line)
        kinds.insert(at, "bad")
    newline = data.draw(st.sampled_from([b"\n", b"\r\n"]))
    encoded = [line if isinstance(line, bytes) else line.encode() for line in ([header] if header else []) + lines]
    content = newline.join(encoded) + (newline if data.draw(st.booleans()) else b"")
    first_line = 1 + bool(header)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / release
        for name, text in others.items():
            write(folder, name, text + "\n")
        path = write(folder, ratings_name, content)
        bad = [first_line + k for k, kind in enumerate(kinds) if kind == "bad"]
        if bad or not rows:
            with pytest.raises(DataFormatError) as error:
                read_quietly(release, folder)
            message = str(error.value)
            assert str(path) in message
            assert f"line {bad[0]}:" in message if bad else "holds no data lines" in message
            return
        raw, caught = read_quietly(release, folder)
    pairs, repeats = expected_interactions(rows, has_time=n_fields == 4)
    assert raw.interactions[["user", "item"]].values.tolist() == pairs
    assert raw.dropped == ({"duplicate_rating": repeats} if repeats else {})
    assert len([w for w in caught if "repeated rating" in w]) == bool(repeats)
    if n_fields == 4:  # each kept pair carries the rating and timestamp of its earliest line
        by_pair = {}
        for k in sorted(range(len(rows)), key=lambda k: (rows[k][3], k)):
            by_pair.setdefault(rows[k][:2], rows[k])
        assert raw.interactions["timestamp"].tolist() == [by_pair[tuple(p)][3] for p in pairs]
        assert raw.interactions["rating"].tolist() == [float(by_pair[tuple(p)][2]) for p in pairs]


latin1_letters = "éèàçñöüÁÉÍßø"  # from 0xC0-0xFF: never a UTF-8 sequence, in either file encoding
title_text = st.text(st.sampled_from("abcXYZ 019(),.'&!?-" + latin1_letters), min_size=1, max_size=16).filter(
    lambda t: t.strip())


@st.composite
def movie_file(draw, layout: str):
    """Lines of movies.dat or u.item: valid movies, malformed lines and repeated ids, with what each is."""
    sep = "::" if layout == "movies.dat" else "|"
    n_fields = 3 if layout == "movies.dat" else 24
    ids = draw(st.lists(st.integers(1, 50), min_size=1, max_size=8, unique=True))
    lines, kinds, titles = [], [], {}
    for item in ids:
        title = draw(title_text)
        titles[item] = title
        lines.append(f"{item}::{title}::Drama" if sep == "::" else u_item_line(item, title))
        kinds.append(("valid", item))
    bad_kinds = st.sampled_from(["short", "extra", "empty_title", "bad_id", "text", "bytes"])
    extra_kinds = [draw(bad_kinds) for _ in range(draw(st.sampled_from([0, 1, 1, 2])))]
    extra_kinds += ["repeat_id"] * draw(st.integers(0, 1))
    for kind in draw(st.permutations(extra_kinds)):
        item = draw(st.sampled_from(ids))
        if kind == "short":
            line = sep.join([str(item), "Title"][:draw(st.integers(1, 2))])
        elif kind == "extra":
            line = f"{item}::A::B::Drama" if sep == "::" else u_item_line(item, "A|B")
        elif kind == "empty_title":
            line = f"{item}:: ::Drama" if sep == "::" else u_item_line(item, "")
        elif kind == "bad_id":
            token = draw(not_a_number.filter(lambda t: sep not in t))
            line = f"{token}::A::Drama" if sep == "::" else u_item_line(item, "A").replace(str(item), token, 1)
        elif kind == "repeat_id":
            line = f"{item}::{draw(title_text)}::Comedy" if sep == "::" else u_item_line(item, draw(title_text))
        else:
            line = draw(random_text.map(str.encode) if kind == "text" else random_bytes)
            if line.count(sep[0].encode()) >= n_fields - 1:
                continue  # enough separators to be read as fields: not certainly malformed
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, line)
        kinds.insert(at, ("repeat" if kind == "repeat_id" else "bad", item))
    return lines, kinds, titles


@pytest.mark.parametrize("layout", ["movies.dat", "u.item"])
@PROPERTY
@given(data=st.data())
def test_property_movie_file_with_malformed_lines(layout, data):
    lines, kinds, titles = data.draw(movie_file(layout))
    encoding = data.draw(st.sampled_from(["latin-1", "utf-8"]))
    # valid lines are latin-1 text; a bad id such as '٣' is not, and stays bad as '?'
    encoded = [line if isinstance(line, bytes) else line.encode(encoding, "replace") for line in lines]
    content = b"\n".join(encoded) + b"\n"
    release = "ml-1m" if layout == "movies.dat" else "ml-100k"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / release
        first = next(iter(titles))
        write(folder, "ratings.dat" if layout == "movies.dat" else "u.data",
              f"1::{first}::5::1\n" if layout == "movies.dat" else f"1\t{first}\t5\t1\n")
        path = write(folder, layout, content)
        bad = [n for n, (kind, _) in enumerate(kinds, start=1) if kind == "bad"]
        repeats = [n for n, (kind, _) in enumerate(kinds, start=1) if kind == "repeat"]
        if bad or repeats:
            with pytest.raises(DataFormatError) as error:
                read_quietly(release, folder)
            message = str(error.value)
            assert str(path) in message
            if bad:  # random bytes may fail the encoding check first, at a later bad line
                assert {int(n) for n in re.findall(r"line (\d+)", message)} & set(bad), message
            else:  # only repeated ids: the first id seen twice, with all its lines
                seen = set()
                item = next(i for _, i in kinds if i in seen or seen.add(i))
                lines = [n for n, (_, i) in enumerate(kinds, start=1) if i == item]
                listed = f"{', '.join(map(str, lines[:-1]))} and {lines[-1]}"
                assert f"movie id {item} is listed on lines {listed}." in message
            return
        raw, caught = read_quietly(release, folder)
    assert dict(zip(raw.items["item"], raw.items["title"])) == titles
    non_ascii = any(not t.isascii() for t in titles.values())
    assert bool([w for w in caught if "UTF-8 text" in w]) == (encoding == "utf-8" and non_ascii)


numeric_bytes = st.lists(st.sampled_from([b"1", b"2", b"0", b"7", b".", b"::", b":", b"\t", b" ", b"\n", b"\r\n",
                                          b"\r", b"12", b"3.5", b"\n\n"]), max_size=40).map(b"".join)


@pytest.mark.parametrize("sep, columns", [
    ("::", {"user": "id", "item": "id", "rating": "number", "timestamp": "id"}),
    ("\t", {"user": "id", "item": "id", "rating": "number", "timestamp": "id"}),
    (" ", {"user": "id", "item": "id"}),
])
@PROPERTY
@given(content=numeric_bytes)
def test_property_fast_reader_agrees_with_the_line_by_line_rules(sep, columns, content):
    """The C-parser path never accepts what the reference parser rejects, and reads the same rows and lines."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), "ratings", content)
        try:
            reference = parse_lines(content.decode("ascii"), path, sep, columns, header=False)
        except DataFormatError as error:
            with pytest.raises(DataFormatError) as fast_error:
                read_number_file(path, sep, columns)
            assert str(fast_error.value) == str(error)
            return
        if reference.frame.empty:
            with pytest.raises(DataFormatError, match="holds no data lines"):
                read_number_file(path, sep, columns)
            return
        table = read_number_file(path, sep, columns)
    pd.testing.assert_frame_equal(table.frame, reference.frame)
    np.testing.assert_array_equal(table.lines, reference.lines)


def test_every_reader_error_is_a_recnb_error():
    assert issubclass(DataFormatError, RecnbError) and issubclass(DataFormatError, ValueError)
