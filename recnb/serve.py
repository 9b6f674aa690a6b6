"""Recommending from an exported SASRec with ONNX Runtime: no PyTorch, no data set, one file.

>>> recommender = OnnxRecommender("model.onnx")      # python -m recnb export --onnx ... wrote it
>>> recommender.recommend(["Star Wars: Episode IV - A New Hope (1977)", "Alien (1979)"], k=5)

The file carries the films' ids, titles, years and genres (:data:`recnb.models.onnx_export.METADATA_KEYS`),
so serving needs only ``onnxruntime``, NumPy and pandas (``pip install 'recnb[serve]'``). Titles are matched
as :func:`recnb.models.recommend.find_items` matches them, and the lists follow recnb's one tie rule (a higher
score first, equal scores by the lower item id), so a served list is the list PyTorch gives for that history.
From a shell: ``python -m recnb.serve model.onnx "Alien (1979)" "Aliens" -k 5``.

This module imports nothing that imports PyTorch (checked by ``tests/serve``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from recnb.errors import CheckpointError, InvalidArgumentError, MissingDataError, MissingToolError, RecnbError
from recnb.films import find_films

#: The format tag :func:`recnb.models.onnx_export.export_onnx` writes (the same string; the tests check it).
ONNX_FORMAT = "recnb-sasrec-onnx/1"
#: Users scored together by :meth:`OnnxRecommender.recommend_batch` and :meth:`OnnxRecommender.top_items`.
BATCH_SIZE = 256
COLUMNS = ["item_id", "movielens_id", "title", "year", "genres", "score"]


class OnnxRecommender:
    """An exported SASRec (``python -m recnb export --onnx``) loaded into ONNX Runtime, with its films.

    ``threads`` sets ONNX Runtime's intra-op threads (default: ONNX Runtime's choice, one a core).
    Attributes: ``path``, ``dataset``, ``max_len``, ``n_items``, ``config`` (the model's, a dict),
    ``metrics`` and ``best_epoch`` (the checkpoint's, or None), ``metadata`` (every ``recnb.*`` string) and
    ``items``, the films indexed by item id 0..N (row 0 is padding) like ``SequenceData.items``.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise MissingDataError(f"No ONNX model at {self.path}"
                                   + (" (it is a folder)" if self.path.is_dir() else "")
                                   + ". Export one with: python -m recnb export --onnx --checkpoint CHECKPOINT.pt "
                                     "--output model.onnx")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InvalidArgumentError(f"threads must be a whole number of at least 1, not {threads!r}.")
        self.threads = threads
        self.session = open_session(self.path, threads)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if self.metadata.get("recnb.format") != ONNX_FORMAT:
            found = self.metadata.get("recnb.format")
            raise CheckpointError(f"{self.path} is an ONNX model but not one recnb exported "
                                  f"({'no recnb metadata' if found is None else f'format {found!r}'}): it lacks "
                                  "the films and settings serving needs. Export it with: python -m recnb export "
                                  "--onnx --checkpoint CHECKPOINT.pt --output model.onnx")
        self.config = json.loads(self.metadata["recnb.config"])
        self.max_len = int(self.metadata["recnb.max_len"])
        self.n_items = int(self.metadata["recnb.n_items"])
        self.dataset = self.metadata["recnb.dataset"]
        self.metrics = json.loads(self.metadata["recnb.metrics"]) if "recnb.metrics" in self.metadata else None
        self.best_epoch = int(self.metadata["recnb.best_epoch"]) if "recnb.best_epoch" in self.metadata else None
        self.items = items_table(json.loads(self.metadata["recnb.items"]))
        if len(self.items) != self.n_items + 1:
            raise CheckpointError(f"{self.path}: its metadata lists {len(self.items) - 1} films for "
                                  f"{self.n_items} items; the file is damaged. Export it again.")
        movielens = self.items["movielens_id"].to_numpy()[1:]
        self._order = np.argsort(movielens, kind="stable")   # MovieLens id -> item id, by binary search
        self._sorted_ids = movielens[self._order]

    def __repr__(self) -> str:
        return (f"OnnxRecommender({str(self.path)!r}: SASRec on {self.dataset}, {self.n_items:,} films, "
                f"histories of up to {self.max_len})")

    # ------------------------------------------------------------------ films
    def find_items(self, films: Iterable) -> np.ndarray:
        """Item ids (1..N) of films given as titles or MovieLens ids: :func:`recnb.films.find_films`'s rule."""
        return find_films(films, self.items["title"].iloc[1:], self.items["movielens_id"].to_numpy(),
                          self.dataset, title_hint="Search recommender.items['title'] for the exact title.")

    def encode(self, movielens_ids) -> np.ndarray:
        """Item ids (1..N) of MovieLens ids, all at once; an id the model does not know raises UnknownFilmError."""
        wanted = np.asarray(movielens_ids, dtype=np.int64).reshape(-1)
        where = np.minimum(np.searchsorted(self._sorted_ids, wanted), len(self._sorted_ids) - 1)
        known = self._sorted_ids[where] == wanted
        if not known.all():
            return self.find_items([int(wanted[~known][0])])  # raises the message find_films gives
        return self._order[where] + 1

    # ------------------------------------------------------------------ scores
    def scores(self, histories: Sequence) -> np.ndarray:
        """Scores (B, N + 1), float32, of the next film after each history (item ids 1..N, oldest first).

        Histories of any lengths from 1 to ``max_len`` are left-padded to the longest here; column 0 is
        padding. Use :meth:`find_items` or :meth:`encode` for titles or MovieLens ids.
        """
        checked = self.check_histories(histories)
        return self.run(checked)

    def check_histories(self, histories: Sequence) -> list[np.ndarray]:
        """The histories as int64 arrays, or one clear error for an empty or too long one, or unknown ids."""
        checked = []
        for number, history in enumerate(histories):
            items = np.asarray(history, dtype=np.int64).reshape(-1)
            which = "The history" if len(histories) == 1 else f"History {number}"
            if len(items) == 0:
                raise InvalidArgumentError(f"{which} is empty: give at least one film the person has watched.")
            if len(items) > self.max_len:
                raise InvalidArgumentError(
                    f"{which} has {len(items)} films; this model reads at most {self.max_len}. Pass the most "
                    f"recent {self.max_len} (history[-{self.max_len}:]): the model only looks at those.")
            if items.min() < 1 or items.max() > self.n_items:
                raise InvalidArgumentError(f"{which} holds item ids outside 1..{self.n_items}; convert titles or "
                                           "MovieLens ids with find_items() or encode().")
            checked.append(items)
        return checked

    def run(self, histories: list[np.ndarray]) -> np.ndarray:
        """ONNX Runtime on checked histories, left-padded to the longest: (B, N + 1) float32 scores."""
        if not histories:
            return np.zeros((0, self.n_items + 1), dtype=np.float32)
        padded = left_padded(histories)
        (scores,) = self.session.run(["scores"], {"histories": padded})
        return scores

    # ------------------------------------------------------------------ top K
    def top_items(self, histories: Sequence, k: int = 10, exclude_seen: bool = True,
                  batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best item ids (U, k) and their scores (U, k, float64) for histories of item ids.

        What :func:`recnb.evaluation.evaluator.top_k` returns with ``with_scores``: padding never listed,
        the history left out (``exclude_seen``), ties by the lower item id, 0 and -inf where fewer than
        ``k`` films are left. Histories are scored ``batch_size`` at a time, those of similar lengths
        together, so little of a batch is padding.
        """
        check_k(k)
        checked = self.check_histories(histories)
        top = np.zeros((len(checked), k), dtype=np.int64)
        values = np.full((len(checked), k), -np.inf)
        order = np.argsort([len(h) for h in checked], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = [checked[r] for r in rows]
            scores = self.run(batch)
            allowed = np.ones(scores.shape, dtype=bool)
            if exclude_seen:
                allowed[np.repeat(np.arange(len(batch)), [len(h) for h in batch]), np.concatenate(batch)] = False
            allowed[:, 0] = False
            columns = top_columns(scores, k, allowed)
            found = columns >= 0
            top[rows] = np.where(found, columns, 0)
            picked = np.take_along_axis(scores, np.maximum(columns, 0), axis=1).astype(np.float64)
            values[rows] = np.where(found, picked, -np.inf)
        return top, values

    def recommend(self, history: Iterable, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """The top ``k`` films after ``history`` (titles or MovieLens ids, oldest first), best first.

        The table of :func:`recnb.models.recommend.recommend`: index ``rank`` (1..k), columns item_id,
        movielens_id, title, year, genres and score. Films in the history are left out (``exclude_seen``).
        A history longer than ``max_len`` is refused: pass its most recent ``max_len`` films.
        """
        check_k(k)
        items = self.find_items(list(history))
        top, scores = self.top_items([items], k, exclude_seen)
        return self.table(top[0], scores[0])

    def recommend_batch(self, histories: Iterable, k: int = 10, exclude_seen: bool = True,
                        batch_size: int = BATCH_SIZE) -> pd.DataFrame:
        """:meth:`recommend` for many people at once: one table, indexed by (``user``, ``rank``).

        ``user`` is the history's position in ``histories``; ``table.loc[u]`` is :meth:`recommend`'s table for
        it. A history of MovieLens ids (ints) is converted all at once (:meth:`encode`); one of titles is
        matched film by film. The throughput path: scored ``batch_size`` histories at a time.
        """
        check_k(k)
        encoded = []
        for history in histories:
            ids = np.asarray(history) if not isinstance(history, np.ndarray) else history
            integers = ids.dtype.kind in "iu" and ids.ndim == 1
            encoded.append(self.encode(ids) if integers else self.find_items(list(history)))
        top, scores = self.top_items(encoded, k, exclude_seen, batch_size)
        shown = top != 0
        users, ranks = np.nonzero(shown)
        table = self.table(top[shown], scores[shown])
        table.index = pd.MultiIndex.from_arrays([users, ranks + 1], names=["user", "rank"])
        return table

    def table(self, items: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        """Films and their scores as recommend's table (padding, id 0, dropped), ranked in the order given."""
        shown = items != 0
        items, scores = items[shown], scores[shown]
        table = self.items.iloc[items][["movielens_id", "title", "year", "genres"]].copy()
        table["score"] = scores
        table.index = pd.RangeIndex(1, len(items) + 1, name="rank")
        table.insert(0, "item_id", items)
        return table


def open_session(path: Path, threads: int | None = None):
    """An ONNX Runtime session on ``path`` (CPU), or a clear error for a file that is not an ONNX model."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingToolError("Serving needs ONNX Runtime: pip install 'recnb[serve]' (or onnxruntime).") from None
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except (PermissionError, IsADirectoryError):
        raise
    except Exception as error:  # ONNX Runtime's own classes (InvalidProtobuf, Fail, ...) for a foreign file
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} cannot be read as an ONNX model ({reason}). Give a file written by "
                              "python -m recnb export --onnx.") from None


def items_table(items: dict) -> pd.DataFrame:
    """The films of the metadata as ``SequenceData.items`` holds them: indexed by item id, row 0 padding."""
    n = len(items["movielens_id"])
    return pd.DataFrame({
        "movielens_id": np.array([0, *items["movielens_id"]], dtype=np.int64),
        "title": pd.Series(["<pad>", *items["title"]], dtype="str"),
        "year": pd.array([None, *items["year"]], dtype="Int64"),
        "genres": pd.Series([(), *(tuple(g) for g in items["genres"])], dtype=object),
    }, index=pd.RangeIndex(n + 1, name="item_id"))


def left_padded(histories: list[np.ndarray]) -> np.ndarray:
    """(B, longest) int64, each history in the last columns and 0 (padding) before it."""
    width = max(len(h) for h in histories)
    padded = np.zeros((len(histories), width), dtype=np.int64)
    for row, history in enumerate(histories):
        padded[row, width - len(history):] = history
    return padded


def top_columns(scores: np.ndarray, k: int, allowed: np.ndarray) -> np.ndarray:
    """The columns of each row's ``k`` highest allowed scores, best first, -1 where none is left: recnb's tie
    rule (:func:`recnb.evaluation.evaluator.top_columns`) in NumPy. A higher score first; equal scores by the
    lower column; an allowed -inf before any excluded column.

    ``argpartition`` finds each row's k-th best score; only the columns at or above it are sorted.
    """
    masked = np.where(allowed, scores, -np.inf)
    n_rows, n_columns = masked.shape
    if k < n_columns:
        kth = -np.partition(-masked, k - 1, axis=1)[:, k - 1]
        candidates = masked >= kth[:, None]            # k columns a row, more where scores tie at the k-th
    else:
        candidates = np.ones_like(allowed)
    rows, columns = np.nonzero(candidates)
    order = np.lexsort((columns, ~allowed[rows, columns], -masked[rows, columns], rows))
    rows, columns = rows[order], columns[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    place = np.arange(len(rows)) - starts[rows]
    keep = place < k
    top = np.full((n_rows, k), -1, dtype=np.int64)
    top[rows[keep], place[keep]] = np.where(allowed[rows[keep], columns[keep]], columns[keep], -1)
    return top


def check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidArgumentError("k must be at least 1.")


def load_recommender(path: str | os.PathLike, threads: int | None = None) -> OnnxRecommender:
    """:class:`OnnxRecommender` of an exported file: ``load_recommender("model.onnx").recommend([...])``."""
    return OnnxRecommender(path, threads)


def main(argv: list[str] | None = None) -> int:
    """``python -m recnb.serve MODEL.onnx FILM [FILM ...] [-k 10]``: print the top K after those films."""
    parser = argparse.ArgumentParser(prog="python -m recnb.serve",
                                     description="The top K films after a history, from an exported ONNX model "
                                                 "(python -m recnb export --onnx), without PyTorch.")
    parser.add_argument("model", help="the .onnx file")
    parser.add_argument("films", nargs="+", help="the films watched, oldest first: titles (or MovieLens ids, --ids)")
    parser.add_argument("-k", type=int, default=10, help="how many films to recommend (default 10)")
    parser.add_argument("--ids", action="store_true", help="the films are MovieLens ids (movies.dat), not titles")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: one a core)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        films = args.films
        if args.ids:
            if not all(film.lstrip("-").isdigit() for film in films):
                raise InvalidArgumentError("With --ids, give MovieLens ids (whole numbers), e.g. 260 1196.")
            films = [int(film) for film in films]
        recommender = OnnxRecommender(args.model, args.threads)
        table = recommender.recommend(films, k=args.k)
    except RecnbError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(f"{recommender}: top {len(table)} after {len(films)} film{'s' if len(films) != 1 else ''}")
        print(table.assign(genres=table["genres"].map(", ".join))[["title", "year", "genres", "score"]]
              .to_string(float_format=lambda x: f"{x:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
