"""A small synthetic MovieLens in the ML-1M file layout, with sequential structure planted in it.

It is written to disk as ``movies.dat``, ``users.dat`` and ``ratings.dat`` and read
back by the same reader as the real ML-1M, so it exercises the whole pipeline
offline. Two patterns are planted:

- franchises: series of 3 to 6 films that a user who starts one watches in
  order, one right after the other (a first-order model can learn "part 2
  follows part 1"; popularity cannot);
- genre loyalty: each user has a favourite genre and picks most other films from it.

Each user's ratings are written in shuffled order with distinct timestamps, so
only a reader that sorts by time recovers the planted order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

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
