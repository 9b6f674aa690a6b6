"""Synthetic MovieLens data: a small set with planted sequential structure, and logs at the scale of ML-25M.

:func:`write_synthetic_movielens` writes a small data set in the ML-1M layout with patterns a model can learn;
:func:`write_synthetic_release` writes interaction logs in the exact CSV layout of ML-20M, ML-25M or ML-32M,
as large as the real release, to measure the pipeline where the real files cannot be downloaded.

The small set is written to disk as ``movies.dat``, ``users.dat`` and ``ratings.dat``
and read back by the same reader as the real ML-1M, so it exercises the whole pipeline
offline. Two patterns are planted:

- franchises: series of 3 to 6 films that a user who starts one watches in
  order, one right after the other (a first-order model can learn "part 2
  follows part 1"; popularity cannot);
- genre loyalty: each user has a favourite genre and picks most other films from it.

Each user's ratings are written in shuffled order with distinct timestamps, so
only a reader that sorts by time recovers the planted order.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recnb.data.releases import RELEASE_FIGURES, ReleaseFigures
from recnb.errors import InvalidArgumentError
from recnb.files import atomic_folder

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Animation")


def write_synthetic_movielens(folder: str | os.PathLike, *, n_users: int = 400, n_films: int = 160,
                              n_franchises: int = 20, franchise_start: float = 0.3,
                              genre_loyalty: float = 0.7, seed: int = 0) -> Path:
    """Write a synthetic data set in the ML-1M layout into ``folder`` and return it.

    The folder must not exist yet (nothing of the user's is overwritten); it is
    written to a temporary folder beside it and renamed into place when complete.
    """
    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; choose a new folder or remove it yourself.")
    rng = np.random.default_rng(seed)

    # Films: standalone titles, then franchises whose parts share a genre and come out in order.
    titles: list[str] = []
    genres: list[int] = []
    years: list[int] = []
    franchises: list[list[int]] = []
    for i in range(n_films):
        titles.append(f"Film {i + 1}")
        genres.append(int(rng.integers(len(GENRES))))
        years.append(int(rng.integers(1960, 2020)))
    for f in range(n_franchises):
        genre, year, parts = int(rng.integers(len(GENRES))), int(rng.integers(1970, 2012)), int(rng.integers(3, 7))
        franchises.append(list(range(len(titles), len(titles) + parts)))
        for p in range(parts):
            titles.append(f"Saga {f + 1}: Part {p + 1}")
            genres.append(genre)
            years.append(min(year + 2 * p, 2023))
    genre_of, n_items = np.array(genres), len(titles)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity = popularity[rng.permutation(n_items)]
    first_part = {chain[0]: chain for chain in franchises}

    rows = []
    for user in range(1, n_users + 1):
        favourite = int(rng.integers(len(GENRES)))
        length, seen = int(rng.integers(12, 45)), np.zeros(n_items, bool)
        sequence: list[int] = []
        while len(sequence) < length and not seen.all():
            open_chains = [c for c in franchises if not seen[c[0]]]
            if open_chains and rng.random() < franchise_start:
                chain = open_chains[int(rng.integers(len(open_chains)))]
                picks = chain
            else:
                pool = ~seen & ((genre_of == favourite) if rng.random() < genre_loyalty else True)
                pool &= ~np.isin(np.arange(n_items), [i for c in franchises for i in c[1:]])
                if not pool.any():
                    break
                weights = popularity * pool
                pick = int(rng.choice(n_items, p=weights / weights.sum()))
                picks = first_part.get(pick, [pick])
            for item in picks:
                if not seen[item]:
                    seen[item] = True
                    sequence.append(item)
        start = 978_300_000 + int(rng.integers(0, 10_000_000))
        times = start + np.cumsum(rng.integers(60, 86_400, size=len(sequence)))
        for pos in rng.permutation(len(sequence)):  # file order is not time order, as in ratings.dat
            rows.append(f"{user}::{sequence[pos] + 1}::{int(rng.integers(1, 6))}::{times[pos]}")

    with atomic_folder(folder) as staging:
        (staging / "ratings.dat").write_text("\n".join(rows) + "\n", encoding="latin-1")
        (staging / "movies.dat").write_text(
            "".join(f"{i + 1}::{t} ({y})::{GENRES[g]}\n" for i, (t, y, g) in enumerate(zip(titles, years, genres))),
            encoding="latin-1",
        )
        (staging / "users.dat").write_text(
            "".join(f"{u}::F::25::0::00000\n" for u in range(1, n_users + 1)), encoding="latin-1"
        )
        (staging / "README").write_text(
            f"Synthetic MovieLens-style data written by recnb.data.synthetic (seed {seed}); not real ratings.\n"
        )
    return folder


# ----------------------------------------------------------------------------- logs at the scale of the large releases
#: The genres of the CSV releases (their README), for the generated movies.csv.
CSV_GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
              "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
#: Share of the ratings 0.5, 1.0, ..., 5.0, close to ML-25M's (4.0 the most common, half stars rarer).
RATING_SHARES = np.array([1.6, 3.1, 1.6, 6.6, 5.0, 19.5, 12.6, 26.6, 8.5, 14.9]) / 100
#: Every user of a MovieLens release rated at least this many films.
MIN_USER_RATINGS = 20
#: Rated films grow as ``interactions ** FILM_GROWTH`` below the release's size (Heaps' law): a smaller log of
#: the same users' tastes still reaches many films, and popularity can stay as skewed as in the full release.
FILM_GROWTH = 0.6
#: The most popular films are each rated by about this share of users (Forrest Gump: 50 % of ML-25M's users).
HEAD_REACH = 0.4
#: Spread (log scale) of user activity: ML-25M's users have a median of about 71 ratings and a mean of 154.
ACTIVITY_SIGMA = 1.38
#: Movie ids are spread over 1 .. ID_SPREAD * films, with gaps (ML-25M: 62,423 films, ids up to 209,171).
ID_SPREAD = 3.35
_CSV_HEADER = b"userId,movieId,rating,timestamp\n"
_DAY = 86_400


def scaled_figures(release: str, n_interactions: int | None = None) -> ReleaseFigures:
    """The users, films and rated films a log of ``n_interactions`` gets, scaled from the release's published figures.

    Users scale with the interactions (the activity per user stays the release's), rated films as
    ``n_interactions ** FILM_GROWTH``, and the movie file keeps the release's share of unrated films. At the
    release's own size this gives its published figures.
    """
    if release not in RELEASE_FIGURES:
        raise InvalidArgumentError(f"No published figures for {release!r}; choose one of {', '.join(RELEASE_FIGURES)}.")
    real = RELEASE_FIGURES[release]
    n = real.ratings if n_interactions is None else int(n_interactions)
    scale = n / real.ratings
    users = max(1, round(real.users * scale))
    rated = round(real.rated_films * scale ** FILM_GROWTH)
    films = max(rated, round(rated * real.films / real.rated_films))
    if rated < 2 * MIN_USER_RATINGS or not MIN_USER_RATINGS * users <= n <= users * (rated // 2):
        raise InvalidArgumentError(
            f"{n:,} interactions are too few for a log shaped like {release} (every user rates at least "
            f"{MIN_USER_RATINGS} films and at most half of them); ask for 20,000 or more."
        )
    return ReleaseFigures(users, films, n, rated, real.first_rating, real.last_rating)


def figures_table(n_interactions: int | None = None) -> pd.DataFrame:
    """The published figures of each large release, one row each; scaled to ``n_interactions`` when given."""
    rows = {name: dataclasses.asdict(scaled_figures(name, n_interactions)) for name in RELEASE_FIGURES}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("release")


def _user_activity(rng: np.random.Generator, n_users: int, n_interactions: int, cap: int) -> np.ndarray:
    """Ratings per user: at least MIN_USER_RATINGS, long-tailed (log-normal), at most ``cap``, summing exactly."""
    extra = n_interactions / n_users - MIN_USER_RATINGS
    draws = rng.lognormal(0.0, ACTIVITY_SIGMA, n_users)
    counts = np.minimum(MIN_USER_RATINGS + np.floor(draws * (extra / draws.mean())).astype(np.int64), cap)
    while (missing := n_interactions - int(counts.sum())) != 0:
        room = (cap - counts) if missing > 0 else (counts - MIN_USER_RATINGS)
        step = np.minimum(rng.multinomial(abs(missing), room / room.sum()), room)
        counts += np.sign(missing) * step
    return counts


def _popularity(n_rated: int, n_users: int, n_interactions: int, exponent: float) -> np.ndarray:
    """Cumulative draw probabilities of the films by popularity rank: a flat head, then a Zipf tail.

    Weight ``max(rank, h) ** -exponent``; ``h`` is the smallest head for which a head film is drawn about
    HEAD_REACH * users times, since a film can be rated once per user at most.
    """
    rank = np.arange(1, n_rated + 1, dtype=np.float64)
    power = rank ** -exponent
    tail = power.sum() - np.cumsum(power)  # sum over ranks above h, for h = 1..n_rated
    share_of_one = power / (rank * power + tail)  # of a head film, with a head of h films
    small_enough = share_of_one <= HEAD_REACH * n_users / n_interactions
    h = int(np.argmax(small_enough)) + 1 if small_enough.any() else n_rated
    weights = np.maximum(rank, h) ** -exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _distinct_films(rng: np.random.Generator, counts: np.ndarray, cdf: np.ndarray, film_of_rank: np.ndarray,
                    n_films: int, popular_rounds: int = 8) -> np.ndarray:
    """``user * n_films + film`` for every rating, sorted: each user's films drawn by popularity, none twice.

    All draws at once; a film a user already has is drawn again, by popularity for a few rounds, then
    uniformly (which ends quickly, as no user rates more than half of the films).
    """
    users = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    keys = users * n_films + film_of_rank[np.searchsorted(cdf, rng.random(len(users)), side="right")]
    del users
    keys.sort()
    repeated = np.flatnonzero(keys[1:] == keys[:-1]) + 1
    pending_users = keys[repeated] // n_films
    kept = np.delete(keys, repeated)
    del keys
    extra = np.zeros(0, dtype=np.int64)
    round_ = 0
    while len(pending_users):
        if round_ < popular_rounds:
            ranks = np.minimum(np.searchsorted(cdf, rng.random(len(pending_users)), side="right"), len(cdf) - 1)
        else:
            ranks = rng.integers(0, len(cdf), len(pending_users))
        candidates = pending_users * n_films + film_of_rank[ranks]
        fresh = np.zeros(len(candidates), dtype=bool)
        fresh[np.unique(candidates, return_index=True)[1]] = True
        for taken in (kept, extra):
            if len(taken):
                at = np.minimum(np.searchsorted(taken, candidates), len(taken) - 1)
                fresh &= taken[at] != candidates
        extra = np.sort(np.concatenate([extra, candidates[fresh]]))
        pending_users = pending_users[~fresh]
        round_ += 1
    keys = np.concatenate([kept, extra])
    keys.sort(kind="stable")  # two sorted runs: a merge
    return keys


def _timestamps(rng: np.random.Generator, counts: np.ndarray, first: int, last: int) -> np.ndarray:
    """Per-user increasing times (sessions of quick ratings, days apart), in a random order within each user.

    Rows are grouped by user; each user's times are distinct seconds between ``first`` and ``last``.
    """
    n = int(counts.sum())
    starts = np.cumsum(counts) - counts
    long_gap = rng.random(n) < 0.1
    gaps = np.where(long_gap, rng.exponential(20 * _DAY, n), rng.exponential(120.0, n))
    gaps[starts] = 0.0
    span = np.add.reduceat(gaps, starts)
    shrink = np.minimum(1.0, 0.9 * (last - first) / np.maximum(span, 1.0))
    users = np.repeat(np.arange(len(counts)), counts)
    steps = (np.floor(gaps * shrink[users]) + 1).astype(np.int64)
    steps[starts] = 0
    del gaps, long_gap
    within = np.cumsum(steps)
    within -= np.repeat(within[starts], counts)
    span = within[np.cumsum(counts) - 1]
    begin = first + np.floor(rng.random(len(counts)) * (last - first - span)).astype(np.int64)
    times = within + np.repeat(begin, counts)
    del within, steps
    # the i-th earliest time goes to a random one of the user's rows: file order (by film) is not time order
    order = np.argsort(users + rng.random(n), kind="stable")
    shuffled = np.empty_like(times)
    shuffled[order] = times
    return shuffled


def _digit_counts(values: np.ndarray) -> np.ndarray:
    digits = np.ones(len(values), dtype=np.int64)
    power = 10
    while (above := values >= power).any():
        digits += above
        power *= 10
    return digits


def _put_digits(out: np.ndarray, values: np.ndarray, ends: np.ndarray, digits: np.ndarray) -> None:
    """Write each non-negative int in ASCII so that its last digit lands just before ``ends``."""
    power = 1
    for place in range(int(digits.max())):
        rows = digits > place
        out[ends[rows] - 1 - place] = 48 + (values[rows] // power) % 10
        power *= 10


def ratings_csv_bytes(user: np.ndarray, movie: np.ndarray, half_stars: np.ndarray, timestamp: np.ndarray) -> bytes:
    """Rows ``userId,movieId,rating,timestamp`` as GroupLens writes them (``4.0``, ``3.5``), formatted by numpy."""
    widths = [_digit_counts(user), _digit_counts(movie), _digit_counts(timestamp)]
    length = widths[0] + widths[1] + widths[2] + 7  # three commas, "x.y" and the line break
    ends = np.cumsum(length)
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
    user_end = ends - length + widths[0]
    movie_end = user_end + 1 + widths[1]
    _put_digits(out, user, user_end, widths[0])
    _put_digits(out, movie, movie_end, widths[1])
    _put_digits(out, timestamp, ends - 1, widths[2])
    out[user_end] = out[movie_end] = out[movie_end + 4] = ord(",")
    out[movie_end + 1] = 48 + half_stars // 2
    out[movie_end + 2] = ord(".")
    out[movie_end + 3] = 48 + 5 * (half_stars % 2)
    out[ends - 1] = ord("\n")
    return out.tobytes()


def _movies_csv(rng: np.random.Generator, movie_ids: np.ndarray, first_year: int, last_year: int) -> str:
    """movies.csv in the release's layout: quoted titles with commas, accents, a few without year or genres."""
    years = rng.integers(first_year, last_year + 1, len(movie_ids))
    n_genres = rng.choice([0, 1, 2, 3, 4], len(movie_ids), p=[0.03, 0.35, 0.32, 0.2, 0.1])
    genre_draws = rng.random((len(movie_ids), len(CSV_GENRES))).argsort(axis=1)
    kind = rng.random(len(movie_ids))
    lines = ["movieId,title,genres\n"]
    for k, (movie, year, n, genres, style) in enumerate(zip(movie_ids.tolist(), years.tolist(), n_genres.tolist(),
                                                            genre_draws.tolist(), kind.tolist())):
        if style < 0.1:
            title = f'"Film {k + 1}, The ({year})"'  # a comma: quoted, as in "American President, The (1995)"
        elif style < 0.12:
            title = f"Café Noir {k + 1} ({year})"
        elif style < 0.13:
            title = f"Film {k + 1}"  # no year, as some titles of the CSV releases
        else:
            title = f"Film {k + 1} ({year})"
        listed = "|".join(CSV_GENRES[g] for g in sorted(genres[:n])) if n else "(no genres listed)"
        lines.append(f"{movie},{title},{listed}\n")
    return "".join(lines)


def write_synthetic_release(folder: str | os.PathLike, release: str = "ml-25m", n_interactions: int | None = None,
                            *, seed: int = 0, popularity_exponent: float = 1.5, chunk_rows: int = 2_000_000,
                            progress: bool = True) -> Path:
    """Write an interaction log shaped like ``release`` (ML-20M, ML-25M or ML-32M) into ``folder``; return it.

    ``ratings.csv`` and ``movies.csv`` are in the release's exact CSV layout (header, ``4.0``-style ratings,
    rows ordered by user then movie id, quoted titles), read by ``read_release(release, folder)``. Its size
    comes from :func:`scaled_figures` (``n_interactions=None``: as many as the real release). Shape: film
    popularity Zipf-like with a capped head (the top 10 % of films get well over half the ratings), user
    activity long-tailed with at least 20 ratings each, no film twice per user, distinct increasing
    timestamps per user. Not real ratings: it measures speed and memory, not models. The same seed gives
    the same bytes.

    The folder must not exist yet; it is written beside it and renamed into place when complete.
    """
    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; choose a new folder or remove it yourself.")
    figures = scaled_figures(release, n_interactions)
    rng = np.random.default_rng(seed)
    movie_ids = np.sort(rng.choice(int(figures.films * ID_SPREAD), figures.films, replace=False)) + 1
    rated = np.sort(rng.choice(figures.films, figures.rated_films, replace=False))  # indices into movie_ids
    film_of_rank = rated[rng.permutation(figures.rated_films)]
    counts = _user_activity(rng, figures.users, figures.ratings, figures.rated_films // 2)
    cdf = _popularity(figures.rated_films, figures.users, figures.ratings, popularity_exponent)
    keys = _distinct_films(rng, counts, cdf, film_of_rank, figures.films)
    first = int(np.datetime64(figures.first_rating, "s").astype(np.int64))
    last = int(np.datetime64(figures.last_rating, "s").astype(np.int64)) + _DAY - 1
    times = _timestamps(rng, counts, first, last)
    half_stars = rng.choice(np.arange(1, 11), len(keys), p=RATING_SHARES)
    movies = _movies_csv(rng, movie_ids, 1900, int(figures.last_rating[:4]))

    with atomic_folder(folder) as staging:
        with open(staging / "ratings.csv", "wb") as out:
            out.write(_CSV_HEADER)
            for start in tqdm(range(0, len(keys), chunk_rows), desc="ratings.csv", unit="chunk", disable=not progress):
                part = keys[start:start + chunk_rows]
                out.write(ratings_csv_bytes(part // figures.films + 1, movie_ids[part % figures.films],
                                            half_stars[start:start + chunk_rows], times[start:start + chunk_rows]))
        (staging / "movies.csv").write_text(movies, encoding="utf-8")
        (staging / "README.txt").write_text(
            f"Synthetic interaction log shaped like {release}, written by recnb.data.synthetic.write_synthetic_release "
            f"(seed {seed}): {figures.ratings:,} ratings by {figures.users:,} users of {figures.rated_films:,} "
            f"films ({figures.films:,} in movies.csv). Not real ratings.\n", encoding="utf-8")
    return folder
