"""The MovieLens releases recnb knows: where GroupLens publishes them and how they are laid out.

Each archive is a zip with one top-level folder; recnb extracts that folder's
files into ``<data_dir>/<name>/`` (so ``ml-10m`` lives in ``data/ml-10m/`` even
though its zip calls the folder ``ml-10M100K``). GroupLens publishes the MD5 of
every archive beside it as ``<archive>.md5``; the downloader fetches and checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

from recnb.errors import InvalidArgumentError

GROUPLENS_BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class Release:
    """One MovieLens release.

    Attributes
    ----------
    name : str
        The name recnb uses, e.g. ``"ml-1m"``; also the folder under the data directory.
    folder : str
        The top-level folder inside the GroupLens zip.
    layout : str
        ``"ml-100k"`` (tab/pipe files), ``"dat"`` (``::``-separated, latin-1) or
        ``"csv"`` (header row, utf-8).
    ratings_file, items_file : str
        The interactions and the movie files, relative to the release folder.
    alternative_ratings_files : tuple of str
        Other interaction files the reader accepts when ``ratings_file`` is
        absent (ML-1M: ``sequences.txt``, the order-only copy in ``../shared/data``).
    """

    name: str
    folder: str
    layout: str
    ratings_file: str
    items_file: str
    alternative_ratings_files: tuple[str, ...] = ()

    @property
    def archive_name(self) -> str:
        return f"{self.name}.zip"

    def url(self, base_url: str = GROUPLENS_BASE_URL) -> str:
        return f"{base_url.rstrip('/')}/{self.archive_name}"

    def md5_url(self, base_url: str = GROUPLENS_BASE_URL) -> str:
        return self.url(base_url) + ".md5"

    @property
    def members(self) -> tuple[str, ...]:
        """Files the archive must contain (inside ``folder``) to be usable."""
        return (self.ratings_file, self.items_file)


RELEASES: dict[str, Release] = {
    r.name: r
    for r in [
        Release("ml-100k", "ml-100k", "ml-100k", "u.data", "u.item"),
        Release("ml-1m", "ml-1m", "dat", "ratings.dat", "movies.dat", ("sequences.txt",)),
        Release("ml-10m", "ml-10M100K", "dat", "ratings.dat", "movies.dat"),
        Release("ml-20m", "ml-20m", "csv", "ratings.csv", "movies.csv"),
        Release("ml-25m", "ml-25m", "csv", "ratings.csv", "movies.csv"),
        Release("ml-32m", "ml-32m", "csv", "ratings.csv", "movies.csv"),
        Release("ml-latest-small", "ml-latest-small", "csv", "ratings.csv", "movies.csv"),
    ]
}


def get_release(name: str) -> Release:
    """Look a release up by name, with an error that lists the known names."""
    try:
        return RELEASES[name]
    except KeyError:
        known = ", ".join(RELEASES)
        raise InvalidArgumentError(
            f"Unknown MovieLens release {name!r}. Known releases: {known} "
            "(and 'synthetic', the generated demo data set)."
        ) from None


@dataclass(frozen=True)
class ReleaseFigures:
    """The size of a release as GroupLens publishes it (its README), for generating data of the same shape.

    ``films`` counts the movie file's lines, ``rated_films`` the films with at least one rating;
    ``first_rating`` and ``last_rating`` (ISO dates, UTC) bound the timestamps.
    """

    users: int
    films: int
    ratings: int
    rated_films: int
    first_rating: str
    last_rating: str


#: Published figures of the large CSV releases, the ones :func:`recnb.data.synthetic.write_synthetic_release`
#: imitates. Every user rated at least 20 films; ratings are 0.5 to 5.0 in halves.
RELEASE_FIGURES: dict[str, ReleaseFigures] = {
    "ml-20m": ReleaseFigures(138_493, 27_278, 20_000_263, 26_744, "1995-01-09", "2015-03-31"),
    "ml-25m": ReleaseFigures(162_541, 62_423, 25_000_095, 59_047, "1995-01-09", "2019-11-21"),
    "ml-32m": ReleaseFigures(200_948, 87_585, 32_000_204, 84_432, "1995-01-09", "2023-10-12"),
}
