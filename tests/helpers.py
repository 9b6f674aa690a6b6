"""Helpers more than one test module uses: import them as ``from tests.helpers import name``.

Fixtures live in tests/conftest.py; this module holds plain functions and constants.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import torch

from recnb.models.checkpoints import save_checkpoint
from recnb.models.sasrec import SASRec, config_from_preset
from recnb.models.training import build_model

#: The repository root (the folder that holds recnb/, tests/ and notebooks/).
REPO = Path(__file__).resolve().parents[1]

#: The catalogue size of the tiny SASRec models the model tests build.
TINY_N_ITEMS = 30


def file_mode(path) -> int:
    """The permission bits of a file or folder, e.g. ``0o644``."""
    return stat.S_IMODE(os.stat(path).st_mode)


def tiny_sasrec(preset: str = "quick", **overrides) -> SASRec:
    """An untrained SASRec over ``TINY_N_ITEMS`` films with random genres and years, without dropout, in eval mode.

    Seeded, so two calls with the same arguments give the same weights; ``overrides`` replace config fields.
    """
    torch.manual_seed(0)
    genre = torch.randint(1, 5, (TINY_N_ITEMS + 1,))
    year = torch.randint(1, 7, (TINY_N_ITEMS + 1,))
    genre[0] = year[0] = 0
    config = config_from_preset(preset, TINY_N_ITEMS, n_genres=5, n_year_buckets=7,
                                **{"max_len": 12, "dropout": 0.0, **overrides})
    return SASRec(config, genre, year).eval()


def tie_the_last_three(source: Path, target: Path, every: int = 4) -> int:
    """Write to ``target`` a copy of a GroupLens-layout folder where every ``every``-th user's last three ratings
    share one timestamp and stand in the file newest first: the same ratings, another order of ties in time.

    Returns how many users were tied.
    """
    rows: dict[str, list[list[str]]] = {}
    for line in (source / "ratings.dat").read_text(encoding="latin-1").splitlines():
        rows.setdefault(line.split("::")[0], []).append(line.split("::"))
    out, tied = [], 0
    for n, user in enumerate(rows):
        ordered = sorted(rows[user], key=lambda row: int(row[3]))
        if n % every == 0 and len(ordered) >= 5:
            last = ordered[-3:]
            for row in last:
                row[3] = last[0][3]
            ordered = ordered[:-3] + last[::-1]
            tied += 1
        out += ["::".join(row) for row in ordered]
    target.mkdir(parents=True)
    for name in ("movies.dat", "users.dat", "README"):
        shutil.copy(source / name, target / name)
    (target / "ratings.dat").write_text("\n".join(out) + "\n", encoding="latin-1")
    return tied


def tiny_checkpoint(data, split, path: Path, record_split: bool = True, seed: int = 0) -> Path:
    """An untrained quick SASRec saved for ``data`` (with ``split``'s fingerprint unless told not to); ``seed``
    draws its weights."""
    torch.manual_seed(seed)
    config = config_from_preset("quick", data.n_items, len(data.genre_names), len(data.year_bucket_labels))
    return save_checkpoint(path, build_model(data, config), data, split if record_split else None)


def held_out_by_user(data, split) -> dict[int, tuple[int, int]]:
    """Each user's (validation, test) film in MovieLens ids: what a split holds out, independent of recnb.data.split."""
    return {int(data.user_ids[u]): (int(data.item_ids[v]), int(data.item_ids[t]))
            for u, v, t in zip(split.users, split.valid, split.test)}
