"""Finding films by title or MovieLens id: the one matching rule of recnb, without PyTorch.

:func:`recnb.models.recommend.find_items` (a :class:`~recnb.data.sequences.SequenceData`) and
:class:`recnb.serve.OnnxRecommender` (an exported model, no PyTorch) both call :func:`find_films`, so a
title finds the same film wherever it is typed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from recnb.errors import UnknownFilmError


def find_films(films: Iterable, titles: pd.Series, movielens_ids: np.ndarray, dataset: str,
               title_hint: str = "Search data.items['title'] for the exact title.") -> np.ndarray:
    """Item ids (1..N) for films given as titles or MovieLens movie ids (the ids in movies.dat).

    ``titles`` is indexed by item id 1..N; ``movielens_ids[i]`` is item ``i``'s MovieLens id
    (``movielens_ids[0]`` is padding). A title matches exactly (ignoring case), or else by a unique
    substring ("Godfather: Part II"). An unknown or ambiguous title raises :class:`UnknownFilmError`
    with the closest titles as suggestions (or ``title_hint`` when none is close).
    """
    lower = titles.str.lower()
    item_of = {int(movie): item for item, movie in enumerate(np.asarray(movielens_ids)) if item}
    found = []
    for film in films:
        if isinstance(film, (int, np.integer)):
            item = item_of.get(int(film), 0)
            if item == 0:
                raise UnknownFilmError(f"MovieLens id {film} is not in {dataset} after filtering "
                                       "(unknown id, or a film with too few ratings).")
            found.append(item)
            continue
        query = str(film).strip().lower()
        exact = titles.index[lower == query]
        matches = exact if len(exact) else titles.index[lower.str.contains(query, regex=False)]
        if len(matches) == 1:
            found.append(int(matches[0]))
            continue
        if len(matches) > 1:
            shown = "; ".join(titles[matches[:6]])
            raise UnknownFilmError(f"{film!r} matches {len(matches)} films ({shown}...). Give the full title.")
        close = difflib.get_close_matches(str(film), titles.tolist(), n=3, cutoff=0.5)
        hint = f" Did you mean: {'; '.join(close)}?" if close else f" {title_hint}"
        raise UnknownFilmError(f"No film titled {film!r} in {dataset}.{hint}")
    return np.asarray(found, dtype=np.int64)
