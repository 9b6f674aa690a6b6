"""Settings shared by the package and the notebooks: where data lives, the run profile, the seed."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recnb.errors import InvalidArgumentError

#: Environment variable that overrides the data cache folder.
DATA_DIR_ENV = "RECNB_DATA_DIR"
#: Environment variable that picks the run profile (``quick`` or ``full``).
PROFILE_ENV = "RECNB_PROFILE"

PACKAGE_DIR = Path(__file__).resolve().parent


def repository_root() -> Path | None:
    """The source checkout recnb is imported from, or None for an installed copy."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def _folder(path: Path, name: str) -> Path:
    """``path`` unless it is an existing file: a data folder must be a folder (or not exist yet)."""
    if path.exists() and not path.is_dir():
        raise InvalidArgumentError(f"{name} points at {path}, which is a file; "
                                   "point it at a folder (it is created if missing).")
    return path


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Where MovieLens files are cached.

    In order: the ``data_dir`` argument, the ``RECNB_DATA_DIR`` environment
    variable, ``data/`` at the root of the source checkout, and finally
    ``~/.cache/recnb`` for a copy of recnb installed without its repository.
    """
    if data_dir is not None:
        return _folder(Path(data_dir).expanduser(), "data_dir")
    if os.environ.get(DATA_DIR_ENV):
        return _folder(Path(os.environ[DATA_DIR_ENV]).expanduser(), DATA_DIR_ENV)
    root = repository_root()
    if root is not None:
        return root / "data"
    return Path.home() / ".cache" / "recnb"


def display_path(path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> str:
    """A path as a learner should see it: relative to the repository, or to the data folder.

    Notebook outputs and messages are read on other machines; an absolute path
    says nothing there. Paths inside the repository print as ``checkpoints/x.pt``,
    paths inside the data folder as ``<data>/ml-1m/movies.dat``, anything else
    by its file name only.
    """
    path = Path(path).expanduser().resolve()
    root = repository_root()
    try:
        places = [("<data>", resolve_data_dir(data_dir).expanduser().resolve())]
    except ValueError:  # a data folder setting that names a file: nothing can lie inside it
        places = []
    if root is not None:
        places.insert(0, ("", root.resolve()))
    for label, base in places:
        if path == base:
            return label or "."
        if path.is_relative_to(base):
            relative = path.relative_to(base).as_posix()
            return f"{label}/{relative}" if label else relative
    return path.name


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch threads and restore the previous count afterwards, even on error."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class Profile:
    """How much work a notebook or script does.

    ``full`` is what the committed notebooks were run with; ``quick`` is what the
    test suite (nbval) uses, so every notebook runs in seconds: fewer users in
    slow demonstrations, fewer repetitions in timings, fewer epochs.
    """

    name: str
    #: Users to loop over in pure-Python demonstrations (None: all).
    demo_users: int | None
    #: Repetitions when a notebook times something live.
    timing_repeats: int

    @property
    def quick(self) -> bool:
        return self.name == "quick"


PROFILES = {
    "full": Profile("full", demo_users=None, timing_repeats=5),
    "quick": Profile("quick", demo_users=500, timing_repeats=1),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile named by ``name`` or ``RECNB_PROFILE`` (default ``full``)."""
    name = name or os.environ.get(PROFILE_ENV) or "full"
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidArgumentError(
            f"Unknown profile {name!r} (from {PROFILE_ENV} or the argument); "
            f"use one of {sorted(PROFILES)}."
        ) from None


#: NumPy's legacy seeding takes 0 <= seed < 2**32; one range for every seed recnb accepts.
MAX_SEED = 2**32 - 1


def check_seed(seed) -> int:
    """``seed`` as an int, or a clear error when NumPy could not take it."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise InvalidArgumentError(f"seed must be a whole number from 0 to {MAX_SEED:,} (2**32 - 1), not {seed!r}.")
    return int(seed)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that one seed makes a run repeatable."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
