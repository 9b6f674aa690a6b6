"""Baseline scorers. Each is fit on training sequences and scores every item for a batch of histories.

Every baseline follows the evaluator's contract (:mod:`recnb.evaluation.evaluator`):
``fit(split.train)`` once, then ``score(histories)`` maps a left-padded
``(B, L)`` LongTensor of item ids (0 = padding) to ``(B, N + 1)`` scores, with
no Python loop over users or items.

=============== ================================================================
``popularity``  :class:`Popularity`: how often each item occurs in training
``genre``       :class:`FavouriteGenre`: popular items of the user's favourite genre first
``markov``      :class:`MarkovChain`: P(next | last item)
``hybrid``      :class:`Hybrid`: alpha * Markov + (1 - alpha) * popularity
``ar2``         :class:`AR2`: P(next | last two items), backing off to Markov
=============== ================================================================

>>> model = make_baseline("markov", data).fit(split.train)
>>> evaluate_split(model, split, "test")
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from recnb.data.sequences import item_counts
from recnb.errors import InvalidArgumentError, NotFittedError

BASELINES = ("popularity", "genre", "markov", "hybrid", "ar2")


def consecutive_items(sequences: list[np.ndarray], order: int) -> list[np.ndarray]:
    """Every run of ``order + 1`` consecutive items inside one sequence, as ``order + 1`` aligned arrays.

    ``consecutive_items(seqs, 1)`` gives ``[a, b]`` with ``b[i]`` right after
    ``a[i]`` in some sequence. Runs never cross from one user's sequence into the next.
    """
    flat = np.concatenate(sequences).astype(np.int64) if len(sequences) else np.zeros(0, dtype=np.int64)
    n = max(len(flat) - order, 0)
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    owner = np.repeat(np.arange(len(sequences)), lengths)
    same_sequence = owner[:n] == owner[order:order + n]
    return [flat[k:k + n][same_sequence] for k in range(order + 1)]


def count_matrix(rows: np.ndarray, cols: np.ndarray, n_cols: int,
                 n_rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """How often each (row, col) pair occurs, as a sparse CSR matrix, built with one sort.

    With ``n_rows``, row ids 0..n_rows-1 index the matrix directly. Without it,
    rows are arbitrary integer keys and only the distinct keys seen become rows,
    in sorted order (the sparse state space of :class:`AR2`).

    Returns
    -------
    row_keys : LongTensor
        The key of each matrix row (``arange(n_rows)`` when ``n_rows`` is given).
    counts : sparse CSR float64 tensor of shape (len(row_keys), n_cols)
    """
    # row-major keys sort the pairs the way CSR stores them: by row, then by column
    keys, counts = np.unique(rows * n_cols + cols, return_counts=True)
    entry_row = keys // n_cols
    if n_rows is None:
        starts_row = np.r_[True, entry_row[1:] != entry_row[:-1]] if len(keys) else np.zeros(0, dtype=bool)
        row_keys, entry_row = entry_row[starts_row], np.cumsum(starts_row) - 1
        n_rows = len(row_keys)
    else:
        row_keys = np.arange(n_rows)
    crow = np.zeros(n_rows + 1, dtype=np.int64)
    crow[1:] = np.cumsum(np.bincount(entry_row, minlength=n_rows))
    with warnings.catch_warnings():  # torch flags its CSR layout as beta; the few operations used here are stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        matrix = torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(keys % n_cols),
                                         torch.from_numpy(counts.astype(np.float64)), (n_rows, n_cols),
                                         check_invariants=False)
    return torch.from_numpy(row_keys.astype(np.int64)), matrix


def row_sums(matrix: torch.Tensor) -> torch.Tensor:
    """Sum of each row of a sparse CSR matrix, as a dense float64 tensor."""
    crow = matrix.crow_indices()
    rows = torch.repeat_interleave(torch.arange(len(crow) - 1), crow.diff())
    return torch.zeros(len(crow) - 1, dtype=torch.float64).index_add_(0, rows, matrix.values().double())


def dense_rows(matrix: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows ``rows`` of a sparse CSR matrix as a dense (B, n_cols) float64 tensor.

    torch has no ``index_select`` for CSR on the CPU, so the stored entries of
    the wanted rows are gathered by position: all rows at once, no Python loop.
    """
    crow, col, values = matrix.crow_indices(), matrix.col_indices(), matrix.values()
    starts = crow[rows]
    lengths = crow[rows + 1] - starts
    owner = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), lengths)
    # position of each wanted entry in ``values``: its row's start + its offset within the row
    offset = torch.arange(int(lengths.sum()), device=rows.device) - torch.repeat_interleave(
        torch.cumsum(lengths, 0) - lengths, lengths)
    positions = torch.repeat_interleave(starts, lengths) + offset
    out = torch.zeros(len(rows), matrix.shape[1], dtype=torch.float64, device=rows.device)
    out[owner, col[positions]] = values[positions].to(torch.float64)
    return out


def last_items(histories: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` most recent items of each left-padded history, (B, k); 0 where a history is shorter."""
    return F.pad(histories, (k, 0))[:, -k:]


class Baseline:
    """The fit/score contract every baseline shares.

    ``fit`` counts item popularity (every baseline falls back to it) and calls
    the subclass's ``_fit``; ``score`` checks the input and calls ``_score``.
    What ``fit`` learns is ``None`` until then; code reads it through
    ``_fitted``, which turns a use before ``fit`` into a :class:`NotFittedError`.

    Attributes
    ----------
    counts : FloatTensor of shape (N + 1,)
        Interactions per item in the training sequences (``None`` before ``fit``).
    popularity : float64 tensor of shape (N + 1,)
        The same as a probability distribution over items (sums to 1).
    """

    def __init__(self, n_items: int):
        self.n_items = int(n_items)
        self.counts: torch.Tensor | None = None
        self.popularity: torch.Tensor | None = None

    def fit(self, sequences: list[np.ndarray]):
        """Learn from training sequences (``split.train``: never validation or test targets)."""
        self.counts = item_counts(sequences, self.n_items)
        self.popularity = self.counts.double() / self.counts.sum().clamp_min(1.0)
        self._fit(sequences)
        return self

    def _fit(self, sequences: list[np.ndarray]) -> None:
        """Extra statistics of a subclass; popularity is already counted."""

    def score(self, histories: torch.Tensor) -> torch.Tensor:
        """Scores of shape (B, N + 1) for a (B, L) LongTensor of left-padded histories (0 = padding)."""
        counts = self._fitted(self.counts, "score()")
        if histories.dim() != 2 or histories.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"histories must be a (B, L) integer tensor, not {histories.dtype} "
                             f"of shape {tuple(histories.shape)}.")
        if histories.numel() and (int(histories.min()) < 0 or int(histories.max()) > self.n_items):
            raise ValueError(f"Item ids must lie in 0..{self.n_items} (0 = padding); was the model fit "
                             "on another data set?")
        device = histories.device
        return self._score(histories.long().to(counts.device)).to(device)

    def _score(self, histories: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _fitted(self, statistic: torch.Tensor | None, use: str) -> torch.Tensor:
        """``statistic`` (something ``fit`` learns), or NotFittedError naming ``use`` if ``fit`` has not run."""
        if statistic is None:
            raise NotFittedError(f"Call {type(self).__name__}.fit(training_sequences) before {use}.")
        return statistic

    def __repr__(self) -> str:
        state = "fitted" if self.counts is not None else "not fitted"
        return f"{type(self).__name__}(n_items={self.n_items}, {state})"


class Popularity(Baseline):
    """Global popularity: every user gets the items ranked by their count in the training data.

    Fit it on ``split.train`` (never on validation or test items); the history
    is not used, so every user gets the same ranking (minus the items they saw,
    which the evaluator removes). Scores are the raw counts.
    """

    def _score(self, histories: torch.Tensor) -> torch.Tensor:
        return self._fitted(self.counts, "score()").expand(len(histories), -1)


class FavouriteGenre(Baseline):
    """Popular items of the user's favourite genre first, then every other item by popularity.

    The favourite genre is the most frequent primary genre in the history.
    **Ties go to recency**: among the genres tied for most frequent, the one
    seen most recently wins. Items without a genre (id 0 in ``item_genre``) do
    not vote; a history with no genre at all (only padding, or only items
    without a genre) gets plain popularity.

    Popularity comes from the training sequences (``fit(split.train)``); at
    test time a user's history includes the validation item, the same input
    SASRec gets.

    Parameters
    ----------
    item_genre : LongTensor of shape (N + 1,)
        Primary-genre id of each item id (``SequenceData.item_genre``; 0 = none).
    n_items : int
        Number of real items N.
    """

    #: Added to items of the favourite genre: larger than any popularity share (at most 1).
    GENRE_BONUS = 2.0

    def __init__(self, item_genre: torch.Tensor, n_items: int):
        super().__init__(n_items)
        item_genre = torch.as_tensor(item_genre, dtype=torch.int64)
        if item_genre.shape != (self.n_items + 1,):
            raise ValueError(f"item_genre needs one genre per item id 0..{self.n_items}, "
                             f"got shape {tuple(item_genre.shape)}.")
        self.item_genre = item_genre
        self.n_genres = int(item_genre.max()) + 1 if len(item_genre) else 1

    def favourite_genre(self, histories: torch.Tensor) -> torch.Tensor:
        """Each history's favourite genre id, (B,); 0 where the history has no genre."""
        self._fitted(self.counts, "favourite_genre()")
        histories = histories.long().to(self.item_genre.device)
        genres = self.item_genre[histories]  # (B, L); padding maps to genre 0
        batch, width = genres.shape
        empty = torch.zeros(batch, self.n_genres, dtype=torch.int64)
        counts = empty.scatter_add(1, genres, torch.ones_like(genres))
        # columns are in time order (left padding), so the column number says how recent an item is
        position = torch.arange(1, width + 1).expand(batch, -1)
        last_seen = empty.scatter_reduce(1, genres, position, "amax")
        # count first, recency second: last_seen <= width < width + 1, so it only decides between equal counts
        key = counts * (width + 1) + last_seen
        key[:, 0] = 0  # "no genre" never votes
        best, favourite = key.max(1)
        return torch.where(best > 0, favourite, torch.zeros_like(favourite))  # key 0: no genre in the history

    def _score(self, histories: torch.Tensor) -> torch.Tensor:
        favourite = self.favourite_genre(histories)[:, None]
        in_genre = (self.item_genre[None, :] == favourite) & (favourite > 0)
        return self._fitted(self.popularity, "score()")[None, :] + self.GENRE_BONUS * in_genre


class MarkovChain(Baseline):
    """First-order Markov chain: P(next | last item), from transition counts in the training sequences.

    The counts of every consecutive pair (a, b) inside a training sequence are
    held in a sparse CSR matrix, ``transitions`` (N + 1, N + 1): row a, column b.
    A user's score for item b is P(b | a) = count(a, b) / count(a, anything),
    with a the last item of the history.

    Most items have no evidence after a given item (probability 0), and if the
    last item was never followed by anything in training, none has. Those ties
    are broken by popularity, **lexicographically**: the score is
    ``P(b | a) + tie_break * popularity[b]`` with ``tie_break = 1 / (m + 1)``,
    m the largest row total. Within one row the probabilities are multiples of
    1 / count(a, anything) >= 1 / m, so two different probabilities differ by at
    least 1 / m, while the popularity term (a share, at most 1) adds less than
    1 / m: it orders items with equal probability and never overturns a
    probability difference. This matters because the evaluator ranks ties
    pessimistically: without it, every item with the target's probability
    (often 0) ties with it and ranks ahead of it. On ML-1M (test split), HR@10
    is 0.172 with ties against the target, 0.219 with ties for it, and 0.192
    with the popularity tie-break.

    Statistics come from the training part (``fit(split.train)``); at test time
    a user's history includes the validation item, the same input SASRec gets.
    A history with only padding has no last item and gets plain popularity.
    """

    def __init__(self, n_items: int):
        super().__init__(n_items)
        self.transitions: torch.Tensor | None = None
        self.row_totals: torch.Tensor | None = None
        self.tie_break = 1.0

    def _fit(self, sequences: list[np.ndarray]) -> None:
        previous, following = consecutive_items(sequences, 1)
        _, self.transitions = count_matrix(previous, following, self.n_items + 1, n_rows=self.n_items + 1)
        self.row_totals = row_sums(self.transitions)
        self.tie_break = 1.0 / (float(self.row_totals.max()) + 1.0)

    @property
    def n_transitions(self) -> int:
        """Distinct (a, b) pairs seen in training: the stored entries of the sparse matrix."""
        return int(self._fitted(self.transitions, "n_transitions").values().numel())

    def next_item_probabilities(self, items: torch.Tensor) -> torch.Tensor:
        """P(next | item) for a (B,) batch of item ids as dense (B, N + 1) rows; all 0 without evidence."""
        transitions = self._fitted(self.transitions, "next_item_probabilities()")
        row_totals = self._fitted(self.row_totals, "next_item_probabilities()")
        return dense_rows(transitions, items) / row_totals[items].clamp_min(1.0)[:, None]

    def _score(self, histories: torch.Tensor) -> torch.Tensor:
        last = last_items(histories, 1)[:, 0]  # 0 (padding) for an empty history: row 0 is empty
        popularity = self._fitted(self.popularity, "score()")
        return self.next_item_probabilities(last) + self.tie_break * popularity[None, :]


class Hybrid(MarkovChain):
    """A blend: ``alpha * Markov + (1 - alpha) * popularity``.

    Both parts are probability distributions over items: the Markov chain's
    P(next | last item) (with its popularity tie-break, see :class:`MarkovChain`)
    and the popularity share of each item, so ``alpha`` weighs like against like.
    At ``alpha=1`` the scores are exactly the Markov chain's, at ``alpha=0``
    they rank exactly like :class:`Popularity`.

    Statistics come from the training part (``fit(split.train)``); at test time
    a user's history includes the validation item, the same input SASRec gets.
    A history with only padding gets plain popularity.

    Parameters
    ----------
    n_items : int
        Number of real items N.
    alpha : float in [0, 1]
        Weight of the Markov chain.
    """

    def __init__(self, n_items: int, alpha: float = 0.5):
        super().__init__(n_items)
        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0:  # also rejects NaN
            raise InvalidArgumentError(f"alpha must lie in [0, 1] (1 = Markov chain only, 0 = popularity only); "
                             f"got {alpha}.")
        self.alpha = alpha

    def _score(self, histories: torch.Tensor) -> torch.Tensor:
        popularity = self._fitted(self.popularity, "score()")
        return self.alpha * super()._score(histories) + (1.0 - self.alpha) * popularity[None, :]

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", alpha={self.alpha})"


class AR2(MarkovChain):
    """Second-order chain: P(next | last two items), backing off to the first-order chain, then popularity.

    Only the pairs (a, b) seen in training become states: their keys
    ``a * (N + 1) + b`` are kept sorted in ``pair_keys`` and found with
    ``searchsorted``, and their successor counts fill a sparse CSR matrix
    ``pair_transitions`` (n_pairs, N + 1). The state space stays as small as the
    data, not (N + 1)^2.

    - If the last two items form a seen pair, the score is
      ``P(c | a, b) + pair_tie_break * markov_score(c)``: the first-order
      score (itself broken by popularity) orders the successors the pair has no
      evidence for. ``pair_tie_break = 1 / (2 (m + 1))``, m the largest pair
      total: first-order scores lie in [0, 2), so the term adds less than
      1 / m and never overturns a second-order probability (the argument of
      :class:`MarkovChain`).
    - Otherwise (unseen pair, history shorter than two items) the score is
      exactly the first-order chain's: it *backs off*. :meth:`backoff_mask`
      says which histories do; ``backoff_share`` is the share over all
      histories scored since ``fit``.

    Statistics come from the training part (``fit(split.train)``); at test time
    a user's history includes the validation item, the same input SASRec gets.
    A history with only padding backs off all the way to popularity.
    """

    def __init__(self, n_items: int):
        super().__init__(n_items)
        self.pair_keys: torch.Tensor | None = None
        self.pair_transitions: torch.Tensor | None = None
        self.pair_totals: torch.Tensor | None = None
        self.pair_tie_break = 1.0
        self.n_scored = self.n_backed_off = 0

    def _fit(self, sequences: list[np.ndarray]) -> None:
        super()._fit(sequences)
        a, b, c = consecutive_items(sequences, 2)
        self.pair_keys, self.pair_transitions = count_matrix(a * (self.n_items + 1) + b, c, self.n_items + 1)
        self.pair_totals = row_sums(self.pair_transitions)
        largest = float(self.pair_totals.max()) if len(self.pair_totals) else 0.0
        self.pair_tie_break = 1.0 / (2.0 * (largest + 1.0))
        self.n_scored = self.n_backed_off = 0

    @property
    def n_pair_states(self) -> int:
        """Distinct (a, b) pairs seen in training, each a state of the chain."""
        return len(self._fitted(self.pair_keys, "n_pair_states"))

    @property
    def backoff_share(self) -> float:
        """Share of the histories scored since ``fit`` that backed off to the first-order chain."""
        return self.n_backed_off / self.n_scored if self.n_scored else float("nan")

    def _pair_states(self, histories: torch.Tensor, use: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Each history's row in ``pair_transitions`` (valid only where found) and whether it was found."""
        pair_keys = self._fitted(self.pair_keys, use)
        a, b = last_items(histories.long(), 2).to(pair_keys.device).unbind(1)
        keys = a * (self.n_items + 1) + b
        if not len(pair_keys):  # no training sequence had three items
            return torch.zeros_like(keys), torch.zeros_like(keys, dtype=torch.bool)
        rows = torch.searchsorted(pair_keys, keys).clamp_max(len(pair_keys) - 1)
        # a history shorter than two items has a = 0 and key b < N + 1, below every training key: never found
        return rows, pair_keys[rows] == keys

    def backoff_mask(self, histories: torch.Tensor) -> torch.Tensor:
        """(B,) bool: True where the last two items were never seen as a pair in training."""
        return ~self._pair_states(histories, "backoff_mask()")[1]

    def _score(self, histories: torch.Tensor) -> torch.Tensor:
        first_order = super()._score(histories)
        rows, found = self._pair_states(histories, "score()")
        self.n_scored += len(histories)
        self.n_backed_off += int((~found).sum())
        if not bool(found.any()):
            return first_order
        pair_transitions = self._fitted(self.pair_transitions, "score()")
        pair_totals = self._fitted(self.pair_totals, "score()")
        second = dense_rows(pair_transitions, rows) / pair_totals[rows].clamp_min(1.0)[:, None]
        return torch.where(found[:, None], second + self.pair_tie_break * first_order, first_order)


def make_baseline(name: str, data, **options) -> Baseline:
    """A new, unfitted baseline by name, sized for ``data``; call ``.fit(split.train)`` next.

    Parameters
    ----------
    name : one of :data:`BASELINES`
        ``"popularity"``, ``"genre"``, ``"markov"``, ``"hybrid"`` or ``"ar2"``.
    data : SequenceData
        Supplies ``n_items`` (and ``item_genre`` for ``"genre"``).
    **options
        Passed to the class, e.g. ``alpha=0.3`` for ``"hybrid"``.
    """
    if name not in BASELINES:
        raise InvalidArgumentError(f"Unknown baseline {name!r}; choose one of {', '.join(BASELINES)}.")
    if name == "genre":
        return FavouriteGenre(data.item_genre, data.n_items, **options)
    classes = {"popularity": Popularity, "markov": MarkovChain, "hybrid": Hybrid, "ar2": AR2}
    return classes[name](data.n_items, **options)


def pair_support(model: AR2, histories: list[np.ndarray]) -> np.ndarray:
    """How often each history's last two items were seen as a pair in training; 0 where never (AR(2) backs off).

    A pair seen once gives AR(2) a next-item estimate from a single example.
    """
    pair_keys = model._fitted(model.pair_keys, "pair_support()").numpy()
    totals = model._fitted(model.pair_totals, "pair_support()").numpy()
    keys = np.array([h[-2] * (model.n_items + 1) + h[-1] if len(h) >= 2 else -1 for h in histories],
                    dtype=np.int64)
    if not len(pair_keys):
        return np.zeros(len(histories), dtype=np.int64)
    rows = np.minimum(np.searchsorted(pair_keys, keys), len(pair_keys) - 1)
    return np.where(pair_keys[rows] == keys, totals[rows], 0).astype(np.int64)


def state_support_shares(totals) -> pd.DataFrame:
    """How often each state of a count-based model was seen in training: one row per count, 1 to the largest.

    ``totals`` holds one training count per row of the model, e.g. ``MarkovChain.row_totals``
    (times each item was followed) or ``AR2.pair_totals``; rows counted 0 (padding, items never
    followed) are not states and are left out. ``states`` is the number of states seen exactly
    that often, ``share at most`` the share seen at most that often: a state seen once gives
    a next-item estimate from a single example.
    """
    totals = np.asarray(totals)
    totals = totals[totals > 0]
    if not len(totals):
        raise InvalidArgumentError("No state was seen in training (every total is 0): fit the model first.")
    seen = np.arange(1, int(totals.max()) + 1)
    return pd.DataFrame({"states": np.bincount(totals.astype(np.int64))[1:],
                         "share at most": np.searchsorted(np.sort(totals), seen, side="right") / len(totals)},
                        index=pd.Index(seen, name="times seen"))
