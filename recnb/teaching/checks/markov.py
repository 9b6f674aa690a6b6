"""Assignment 2: a first-order Markov chain's transition counts and scores, vectorized."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from recnb.models import baselines
from recnb.models.baselines import MarkovChain, last_items
from recnb.teaching.checks._core import (
    Reference,
    StudentError,
    call,
    cases_in_order,
    describe,
    failure,
    name_of,
    raised,
    require_vectorized,
    run_check,
)

#: Default training sets of the Markov checks, (sequences, n_items), smallest first.
MARKOV_CASES = [([[1, 2]], 2), ([[1, 2, 1]], 2), ([[1, 2], [3, 1]], 3), ([[2, 2, 2]], 2), ([[1], [2, 1]], 2),
                ([[1, 2, 3, 1, 2], [2, 3], [3, 1, 3]], 4)]

_COUNT_HINT = ("counts[a, b] is how often item b directly follows item a inside one user's sequence. Join the "
               "sequences (np.concatenate), pair each item with the next one, and drop the pairs that cross "
               "from one user to the next (np.repeat can number each item's user). Add the pairs up with an "
               "operation that accumulates repeats (np.add.at, np.bincount, or index_put_ with accumulate=True). "
               "Notebook 04.")
_SCORE_HINT = ("With left padding, each history's most recent item sits in the last column (0 if the history "
               "is empty). Its row of counts, divided by the row's total, is P(next | last item); a row that "
               "sums to 0 has no evidence and must stay all 0 (clamp the total). Notebook 04.")


def _count_references() -> list[Reference]:
    return [Reference(baselines.consecutive_items, "recnb.models.baselines.consecutive_items"),
            Reference(baselines.count_matrix, "recnb.models.baselines.count_matrix"),
            Reference(MarkovChain._fit, "recnb.models.baselines.MarkovChain.fit")]


def _score_references() -> list[Reference]:
    return [Reference(MarkovChain.next_item_probabilities,
                      "recnb.models.baselines.MarkovChain.next_item_probabilities"),
            Reference(MarkovChain._score, "recnb.models.baselines.MarkovChain.score"),
            Reference(baselines.dense_rows, "recnb.models.baselines.dense_rows")]


def _sequences(raw) -> list[np.ndarray]:
    return [np.asarray(s, dtype=np.int64) for s in raw]


def _reference_chain(raw, n_items: int) -> MarkovChain:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MarkovChain(n_items).fit(_sequences(raw))


def _as_matrix(value, shape) -> torch.Tensor | None:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
        return None
    if value.is_sparse or value.layout != torch.strided:
        value = value.to_dense()
    return value.double()


def check_transition_counts(transition_counts, cases=None, strict: bool | None = None) -> None:
    """Check ``transition_counts(sequences, n_items) -> (N + 1, N + 1)`` dense counts, vectorized.

    The reference is :class:`recnb.models.baselines.MarkovChain`'s ``transitions`` (row a, column b:
    how often b follows a). ``cases``: extra ``(sequences, n_items)``, sequences lists of item ids.
    """
    name = name_of(transition_counts, "transition_counts")
    all_cases = cases_in_order(MARKOV_CASES, cases, lambda case: sum(map(len, case[0])))

    def body():
        for case in all_cases:
            raw, n_items = case.value
            expected = _reference_chain(raw, n_items).transitions.to_dense()
            shown = f"sequences = {[list(s) for s in raw]}, n_items = {n_items}"
            try:
                result = call(transition_counts, _sequences(raw), n_items, refuse=_count_references(),
                              hidden=case.hidden)
            except StudentError as error:
                raise raised(name, error, shown, f"counts\n{expected.int()}", _COUNT_HINT, case.hidden) from None
            got = _as_matrix(result, (n_items + 1, n_items + 1))
            if got is None:
                raise failure(name, "it should return an (N + 1, N + 1) tensor of counts (row 0 and column 0 are "
                              "padding and stay 0).", shown, f"a tensor of shape {tuple(expected.shape)}",
                              describe(result), _COUNT_HINT, case.hidden)
            if not torch.equal(got, expected):
                raise failure(name, _count_diagnosis(raw, n_items, got, expected), shown,
                              f"counts\n{expected.int()}",
                              f"counts\n{got.int()}" if torch.equal(got, got.round()) else f"{got}", _COUNT_HINT,
                              case.hidden)
        require_vectorized(transition_counts, name, _COUNT_HINT)
        return f"matches recnb.models.baselines.MarkovChain's transition counts on {len(all_cases)} inputs."

    run_check(name, body, strict)


def _count_diagnosis(raw, n_items: int, got: torch.Tensor, expected: torch.Tensor) -> str:
    joined = _reference_chain([[i for s in raw for i in s]], n_items).transitions.to_dense()
    if torch.equal(got, expected.T):
        return "rows and columns are swapped: row a, column b counts b following a."
    if torch.equal(got, joined):
        return "it counts the pair from one user's last item to the next user's first item, which is not a transition."
    if torch.equal(got, expected.clamp_max(1)):
        return "a pair that occurs several times is counted once (indexed assignment does not accumulate)."
    return "the counts differ from recnb.models.baselines.MarkovChain's."


#: Default inputs of the scorer check, (sequences, n_items, histories), smallest first.
SCORE_CASES = [([[1, 2]], 2, [[1]]), ([[1, 2, 1, 1]], 2, [[0, 1]]), ([[1, 2], [2, 1]], 2, [[0, 0]]),
               ([[1, 2, 3], [2, 3]], 3, [[0, 3]]), ([[1, 2, 3, 1, 2], [2, 3], [3, 1, 3]], 4, [[0, 0, 3], [1, 2, 1]]),
               ([[1, 2, 3, 1, 2], [2, 3], [3, 1, 3]], 4, [[0, 0, 0, 2], [0, 4, 1, 3], [0, 0, 0, 0]])]


def check_markov_scores(markov_scores, cases=None, strict: bool | None = None) -> None:
    """Check ``markov_scores(counts, histories) -> (B, N + 1)``: P(next | last item), vectorized.

    ``counts`` is the reference dense count matrix (so this check does not depend on
    ``transition_counts``); the reference scores are
    :meth:`recnb.models.baselines.MarkovChain.next_item_probabilities` of each history's last item.
    ``cases``: extra ``(sequences, n_items, histories)``, histories left-padded lists of lists.
    """
    name = name_of(markov_scores, "markov_scores")
    all_cases = cases_in_order(SCORE_CASES, cases, lambda case: np.size(case[2]))

    def body():
        for case in all_cases:
            raw, n_items, histories = case.value
            chain = _reference_chain(raw, n_items)
            counts = chain.transitions.to_dense()
            histories = torch.tensor(histories, dtype=torch.int64)
            expected = chain.next_item_probabilities(last_items(histories, 1)[:, 0])
            shown = f"counts =\n{counts.int()}\nhistories = {histories}"
            try:
                result = call(markov_scores, counts.clone(), histories.clone(), refuse=_score_references(),
                              hidden=case.hidden)
            except StudentError as error:
                raise raised(name, error, shown, f"{expected}", _SCORE_HINT, case.hidden) from None
            got = _as_matrix(result, tuple(expected.shape))
            if got is None:
                raise failure(name, "it should return one row of N + 1 scores per history.",
                              shown, f"a tensor of shape {tuple(expected.shape)}", describe(result), _SCORE_HINT,
                              case.hidden)
            if not torch.allclose(got, expected, atol=1e-6, equal_nan=False):
                raise failure(name, _score_diagnosis(counts, histories, got), shown, f"{expected}", f"{got}",
                              _SCORE_HINT, case.hidden)
        require_vectorized(markov_scores, name, _SCORE_HINT)
        return f"matches recnb.models.baselines.MarkovChain's probabilities on {len(all_cases)} inputs."

    run_check(name, body, strict)


def _score_diagnosis(counts: torch.Tensor, histories: torch.Tensor, got: torch.Tensor) -> str:
    if torch.isnan(got).any():
        return "some scores are NaN: a row without evidence (or the padding row 0) divided 0 by 0."
    first = counts[histories[:, 0]]
    if torch.allclose(got, first / first.sum(1, keepdim=True).clamp_min(1)):
        return "it uses the first column; with left padding the most recent item is in the last column."
    if torch.allclose(got, counts[histories[:, -1]]):
        return "it returns the raw counts; divide each row by its total to get probabilities."
    return "the scores differ from P(next | last item)."
