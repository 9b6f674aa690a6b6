"""Assignment 6: is the difference between two models larger than its noise? A paired comparison over users."""

from __future__ import annotations

import math

import numpy as np

from recnb.teaching.checks._core import (
    Reference,
    StudentError,
    as_float,
    call,
    cases_in_order,
    describe,
    failure,
    name_of,
    raised,
    run_check,
)

_PAIRED_HINT = ("Both models ranked the same users, so compare them user by user: each user's NDCG@k gain "
                "(1 / log2(rank + 1) if rank <= k, else 0) under model A minus under model B. The mean of those "
                "differences is the difference of the two NDCG@k; its standard error is their standard deviation "
                "(with n - 1, ddof=1) divided by sqrt(n), n the number of users. Notebook 06b, section 6, reads its "
                "ablations with this standard error.")

#: Default inputs of the paired-difference check, (users, k, seed), smallest first.
PAIRED_CASES = [(2, 10, 0), (3, 10, 1), (4, 5, 2), (6, 10, 3), (50, 10, 4)]


def paired_example(users: int = 4, k: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """One input of the check: ``ranks_a, ranks_b, k``, two models' ranks of the same users' held-out items."""
    rng = np.random.default_rng(seed)
    ranks_a = rng.integers(1, 3 * k, users)
    ranks_b = np.where(rng.random(users) < 0.5, ranks_a, rng.integers(1, 3 * k, users))
    return ranks_a, ranks_b, k


def _gains(ranks: np.ndarray, k: int) -> np.ndarray:
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)


def _paired_reference(ranks_a, ranks_b, k) -> tuple[float, float]:
    difference = _gains(ranks_a, k) - _gains(ranks_b, k)
    return float(difference.mean()), float(difference.std(ddof=1) / math.sqrt(len(difference)))


def check_paired_difference(paired_difference, cases=None, strict: bool | None = None) -> None:
    """Check ``paired_difference(ranks_a, ranks_b, k) -> (mean, standard_error)`` of NDCG@k, A minus B.

    ``ranks_a`` and ``ranks_b`` are NumPy arrays of the same users' ranks under two models (an
    :class:`~recnb.evaluation.evaluator.EvaluationResult`'s ``ranks``). ``cases``: extra ``(users, k, seed)``
    for :func:`paired_example`.
    """
    name = name_of(paired_difference, "paired_difference")
    all_cases = cases_in_order(PAIRED_CASES, cases, lambda case: (case[0], case[2]))

    def body():
        for case in all_cases:
            users, k, seed = case.value
            ranks_a, ranks_b, k = paired_example(users, k, seed)
            mean, error = _paired_reference(ranks_a, ranks_b, k)
            shown = (f"ranks_a, ranks_b, k = checks.paired_example(users={users}, k={k}, seed={seed})\n"
                     f"ranks_a = {ranks_a.tolist()}\nranks_b = {ranks_b.tolist()}\nk = {k}")
            expected = f"({mean:.6g}, {error:.6g})"
            try:
                result = call(paired_difference, ranks_a.copy(), ranks_b.copy(), k, hidden=case.hidden,
                              refuse=[Reference(_paired_reference, "recnb.teaching.checks' reference")])
            except StudentError as error_:
                raise raised(name, error_, shown, expected, _PAIRED_HINT, case.hidden) from None
            values = (tuple(as_float(v) for v in result)
                      if isinstance(result, (tuple, list)) and len(result) == 2 else None)
            if values is None or None in values:
                raise failure(name, "it should return two numbers, (mean difference, standard error).", shown,
                              expected, describe(result), _PAIRED_HINT, case.hidden)
            got_mean, got_error = values
            if not math.isclose(got_mean, mean, rel_tol=1e-6, abs_tol=1e-9):
                raise failure(name, _mean_diagnosis(ranks_a, ranks_b, k, got_mean), shown, expected,
                              f"({got_mean:.6g}, {got_error:.6g})", _PAIRED_HINT, case.hidden)
            if not math.isclose(got_error, error, rel_tol=1e-6, abs_tol=1e-9):
                raise failure(name, _error_diagnosis(ranks_a, ranks_b, k, got_error), shown, expected,
                              f"({got_mean:.6g}, {got_error:.6g})", _PAIRED_HINT, case.hidden)
        return f"matches the paired mean and standard error on {len(all_cases)} inputs."

    run_check(name, body, strict)


def _mean_diagnosis(ranks_a, ranks_b, k, got: float) -> str:
    a, b = _gains(ranks_a, k), _gains(ranks_b, k)
    hits = (np.asarray(ranks_a) <= k).mean() - (np.asarray(ranks_b) <= k).mean()
    mistakes = [
        ("the sign is flipped: the difference is A minus B.", (b - a).mean()),
        ("it compares hit rates; the exercise compares NDCG@k gains, 1 / log2(rank + 1) within the top k.", hits),
        ("it ignores the cut-off: ranks beyond k gain 0.",
         (1 / np.log2(np.asarray(ranks_a) + 1.0) - 1 / np.log2(np.asarray(ranks_b) + 1.0)).mean()),
    ]
    for text, value in mistakes:
        if math.isclose(got, float(value), rel_tol=1e-6, abs_tol=1e-9):
            return text
    return "the mean difference of NDCG@k is wrong."


def _error_diagnosis(ranks_a, ranks_b, k, got: float) -> str:
    a, b = _gains(ranks_a, k), _gains(ranks_b, k)
    d, n = a - b, len(a)
    mistakes = [
        ("it treats the two models as independent samples (sqrt(var_a / n + var_b / n)); the same users were "
         "ranked by both, so take the difference per user first: the shared difficulty of a user cancels.",
         math.sqrt(a.var(ddof=1) / n + b.var(ddof=1) / n)),
        ("it divides by n instead of n - 1 (ddof=0): use the sample standard deviation, ddof=1.",
         d.std(ddof=0) / math.sqrt(n)),
        ("it returns the standard deviation of the differences; the standard error of their mean divides it by "
         "sqrt(n).", d.std(ddof=1)),
        ("it returns the variance of the mean; the standard error is its square root.", d.var(ddof=1) / n),
    ]
    for text, value in mistakes:
        if math.isclose(got, float(value), rel_tol=1e-6, abs_tol=1e-12):
            return text
    return "the standard error is wrong."

