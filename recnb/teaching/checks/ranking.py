"""Assignment 1: HR@K, NDCG@K and MRR from the rank of each user's held-out item."""

from __future__ import annotations

import math

import torch

from recnb.evaluation import metrics
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

#: Default inputs of the metric checks, (ranks, k), smallest first.
METRIC_CASES = [([1], 1), ([1], 10), ([10], 10), ([11], 10), ([2], 1), ([3], 5), ([1, 2], 1), ([1, 4, 9], 4),
                ([3, 1, 12, 5], 5), ([1, 1, 50, 7, 2, 10], 10)]

_METRIC_HINTS = {
    "hit_rate": "HR@K is the share of users whose held-out item is in the top K, and rank K itself is a hit. "
                "A comparison gives a bool tensor: make it floating point before averaging. Notebook 02, section 4.",
    "ndcg": "With one relevant item, a hit at rank r (r <= K) gains 1 / log2(r + 1), so rank 1 gains exactly 1, "
            "and a miss gains 0; NDCG@K is the average gain over users. Notebook 02, section 4.",
    "mrr": "Each user contributes the reciprocal of their rank (rank 4 gives 0.25), with no cut-off; MRR is "
           "the average over users. Notebook 02, section 4.",
}


def _references() -> list[Reference]:
    """recnb's metrics: every one of them, since ``metrics_from_ranks`` and the evaluator go through them."""
    return [Reference(metrics.hit_rate, "recnb.evaluation.metrics.hit_rate"),
            Reference(metrics.ndcg, "recnb.evaluation.metrics.ndcg"),
            Reference(metrics.mrr, "recnb.evaluation.metrics.mrr")]


def _metric_diagnosis(metric: str, ranks: torch.Tensor, k: int | None, got: float) -> str:
    """Name a common mistake when ``got`` equals what that mistake computes."""
    r = ranks.double()

    def gain(cut, discount):
        return torch.where(cut, discount, torch.zeros_like(r)).mean()

    mistakes = {
        "hit_rate": [
            ("counts rank K as a miss: use <= K, not < K.", lambda: (r < k).double().mean()),
            ("returns the number of hits; HR@K is their share (average over users).", lambda: (r <= k).double().sum()),
        ],
        "ndcg": [
            ("uses log2(rank); the discount is 1 / log2(rank + 1).", lambda: gain(r <= k, 1.0 / torch.log2(r))),
            ("uses the natural logarithm; the discount is base 2.", lambda: gain(r <= k, 1.0 / torch.log(r + 1.0))),
            ("ignores the cut-off: ranks beyond K must score 0.", lambda: (1.0 / torch.log2(r + 1.0)).mean()),
            ("counts rank K as a miss: use <= K, not < K.", lambda: gain(r < k, 1.0 / torch.log2(r + 1.0))),
        ],
        "mrr": [
            ("averages the ranks; MRR averages their reciprocals, 1 / rank.", lambda: r.mean()),
            ("takes the reciprocal of the mean rank; MRR is the mean of the reciprocals.", lambda: 1.0 / r.mean()),
            ("sums the reciprocal ranks; MRR averages them.", lambda: (1.0 / r).sum()),
        ],
    }[metric]
    for text, value in mistakes:
        if math.isclose(got, float(value()), rel_tol=1e-6, abs_tol=1e-12):
            return text
    return "the value differs from recnb.evaluation.metrics."


def _check_metric(metric: str, function, cases, strict) -> None:
    reference = {"hit_rate": metrics.hit_rate, "ndcg": metrics.ndcg, "mrr": metrics.mrr}[metric]
    name = name_of(function, metric)
    all_cases = cases_in_order(METRIC_CASES, cases, lambda case: (len(case[0]), sum(case[0])))
    hint = _METRIC_HINTS[metric]

    def body():
        for case in all_cases:
            values, k = case.value
            ranks = torch.tensor(values, dtype=torch.int64)
            args = (ranks,) if metric == "mrr" else (ranks, k)
            shown = f"ranks = {ranks}" + ("" if metric == "mrr" else f", k = {k}")
            expected = reference(*args)
            try:
                result = call(function, *(a.clone() if isinstance(a, torch.Tensor) else a for a in args),
                              refuse=_references(), hidden=case.hidden)
            except StudentError as error:
                raise raised(name, error, shown, f"{expected:.6g}", hint, case.hidden) from None
            got = as_float(result)
            if got is None:
                raise failure(name, "it should return one number, the average over users.", shown,
                              f"{expected:.6g}", describe(result), hint, case.hidden)
            if not math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9):
                raise failure(name, _metric_diagnosis(metric, ranks, k, got), shown, f"{expected:.6g}",
                              f"{got:.6g}", hint, case.hidden)
        return f"matches recnb.evaluation.metrics.{metric} on {len(all_cases)} inputs."

    run_check(name, body, strict)


def check_hit_rate(hit_rate, cases=None, strict: bool | None = None) -> None:
    """Check ``hit_rate(ranks, k) -> float`` (HR@K) against :func:`recnb.evaluation.metrics.hit_rate`.

    ``cases``: extra ``(ranks, k)`` pairs, ranks a list of ints >= 1 (hidden inputs: never shown).
    """
    _check_metric("hit_rate", hit_rate, cases, strict)


def check_ndcg(ndcg, cases=None, strict: bool | None = None) -> None:
    """Check ``ndcg(ranks, k) -> float`` (NDCG@K) against :func:`recnb.evaluation.metrics.ndcg`."""
    _check_metric("ndcg", ndcg, cases, strict)


def check_mrr(mrr, cases=None, strict: bool | None = None) -> None:
    """Check ``mrr(ranks) -> float`` against :func:`~recnb.evaluation.metrics.mrr` (no cut-off).

    ``cases``: (ranks, k) pairs."""
    _check_metric("mrr", mrr, cases, strict)
