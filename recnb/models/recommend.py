"""Recommendations for people: the top films for any history given as titles or MovieLens ids.

>>> recommend(model, data, ["Star Wars: Episode IV - A New Hope (1977)", "Alien"], k=5)

Works with any model the evaluator accepts (SASRec or a baseline).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recnb.data.sequences import SequenceData
from recnb.errors import InvalidArgumentError, UnknownFilmError  # noqa: F401 (find_items raises it; tests import it here)
from recnb.evaluation.evaluator import Model, top_k
from recnb.films import find_films


def find_items(data: SequenceData, films) -> np.ndarray:
    """Item ids for a list of films given as titles or MovieLens movie ids (the ids in movies.dat).

    A title matches exactly (ignoring case), or else by a unique substring
    ("Godfather: Part II"). An unknown or ambiguous title raises
    :class:`UnknownFilmError` with the closest titles as suggestions. The rule is
    :func:`recnb.films.find_films`'s, which the ONNX server (:mod:`recnb.serve`) shares.
    """
    return find_films(films, data.items["title"].iloc[1:], data.item_ids, data.name)


def recommend(model: Model, data: SequenceData, history, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
    """The top ``k`` films to watch after ``history`` (oldest first), with titles, years, genres and scores.

    ``history`` holds titles or MovieLens ids. Films already in it are left
    out (``exclude_seen``). A history longer than the model's ``max_len`` is
    cut to its most recent films by the model itself.
    """
    if k < 1:
        raise InvalidArgumentError("k must be at least 1.")
    items = find_items(data, list(history))
    if len(items) == 0:
        raise InvalidArgumentError("The history is empty: give at least one film the person has watched.")
    return recommend_items(model, data, items, k, exclude_seen)


def recommend_items(model: Model, data: SequenceData, items: np.ndarray, k: int = 10,
                    exclude_seen: bool = True) -> pd.DataFrame:
    """:func:`recommend` for a history already given as item ids (1..N, oldest first).

    The list is :func:`recnb.evaluation.evaluator.top_k`'s, so its tie rule: a higher score first,
    equal scores by the lower item id. Fewer than ``k`` rows when fewer films are left to show.
    """
    items = np.asarray(items, dtype=np.int64)
    top, scores = top_k(model, [items], k, exclude_seen=exclude_seen, with_scores=True)
    shown = top[0] != 0
    top, scores = top[0][shown], scores[0][shown]
    table = data.items.loc[top, ["title", "year", "genres"]].copy()
    table.insert(0, "movielens_id", data.item_ids[top])
    table["score"] = scores
    table.index = pd.RangeIndex(1, len(top) + 1, name="rank")
    table.insert(0, "item_id", top)
    return table
