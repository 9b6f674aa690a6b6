"""Assignment 5: ranking a held-out item among candidates, and drawing the sampled protocol's candidates."""

from __future__ import annotations

import numpy as np
import torch

from recnb.evaluation.evaluator import _hash_keys, candidate_mask, evaluate, full_ranks, sampled_ranks
from recnb.teaching.checks._core import (
    CheckFailed,
    Reference,
    StudentError,
    call,
    cases_in_order,
    describe,
    failure,
    name_of,
    raised,
    run_check,
)

_RANK_HINT = ("A target's rank is the number of candidates whose score is at least the target's: the target "
              "counts itself, so the best rank is 1, and every candidate that ties with it is counted against "
              "the model (pessimistic ties). Items that are not candidates do not count at all. Notebook 02, "
              "sections 3 and 8.")
_SAMPLE_HINT = ("Per user, the eligible items are 1..N minus the history and the target. Draw n_negatives of "
                "them without replacement, uniformly, with the generator you are given (for example a random key "
                "per item, torch.rand(..., generator=generator), with the ineligible items' keys set to inf, and "
                "the n smallest keys by topk); take them all when fewer are eligible. Then mark the target too. "
                "Notebook 02, section 8.")


def _rank_references() -> list[Reference]:
    return [Reference(full_ranks, "recnb.evaluation.evaluator.full_ranks"),
            Reference(sampled_ranks, "recnb.evaluation.evaluator.sampled_ranks"),
            Reference(evaluate, "recnb.evaluation.evaluator.evaluate")]


def _sample_references() -> list[Reference]:
    return [Reference(candidate_mask, "recnb.evaluation.evaluator.candidate_mask"),
            Reference(sampled_ranks, "recnb.evaluation.evaluator.sampled_ranks"),
            Reference(_hash_keys, "recnb.evaluation.evaluator's negative sampler"),
            Reference(evaluate, "recnb.evaluation.evaluator.evaluate")]


# ----------------------------------------------------------------------------- 1. the rank among candidates
#: Default inputs of the rank check, (users, n_items, seed), smallest first.
RANK_CASES = [(1, 2, 0), (1, 3, 1), (1, 4, 2), (2, 5, 3), (3, 6, 4), (4, 10, 5)]


def rank_example(users: int = 2, n_items: int = 5, seed: int = 0):
    """One input of the rank check: ``scores (B, N + 1), targets (B,), candidates (B, N + 1)``.

    Scores are small whole numbers, so that ties happen; ``candidates`` is True for a random subset of
    the items 1..N, always including the target (never column 0, padding).
    """
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 4, (users, n_items + 1), generator=generator).float()
    targets = torch.randint(1, n_items + 1, (users,), generator=generator)
    candidates = torch.rand(users, n_items + 1, generator=generator) < 0.7
    candidates[:, 0] = False
    candidates[torch.arange(users), targets] = True
    return scores, targets, candidates


def check_rank_among(rank_among, cases=None, strict: bool | None = None) -> None:
    """Check ``rank_among(scores, targets, candidates) -> (B,)`` integer ranks, 1 = best, ties pessimistic.

    The reference is the evaluator's rule (:func:`recnb.evaluation.evaluator.full_ranks`), on the inputs of
    :func:`rank_example`. ``cases``: extra ``(users, n_items, seed)``.
    """
    name = name_of(rank_among, "rank_among")
    all_cases = cases_in_order(RANK_CASES, cases, lambda case: (case[0] * case[1], case[2]))

    def body():
        for case in all_cases:
            users, n_items, seed = case.value
            scores, targets, candidates = rank_example(users, n_items, seed)
            expected = full_ranks(scores, targets, candidates)
            shown = (f"scores, targets, candidates = checks.rank_example(users={users}, n_items={n_items}, "
                     f"seed={seed})\nscores =\n{scores}\ntargets = {targets}\ncandidates =\n{candidates.int()}")
            try:
                result = call(rank_among, scores.clone(), targets.clone(), candidates.clone(),
                              refuse=_rank_references(), hidden=case.hidden)
            except StudentError as error:
                raise raised(name, error, shown, f"{expected}", _RANK_HINT, case.hidden) from None
            if isinstance(result, np.ndarray):
                result = torch.from_numpy(result)
            if not isinstance(result, torch.Tensor) or tuple(result.shape) != tuple(expected.shape):
                raise failure(name, "it should return one rank per user, a tensor of shape (B,).", shown,
                              f"{expected}", describe(result), _RANK_HINT, case.hidden)
            if result.is_floating_point() or result.dtype == torch.bool:
                raise failure(name, "ranks are whole numbers: return an integer tensor.", shown, f"{expected}",
                              describe(result), _RANK_HINT, case.hidden)
            if not torch.equal(result.long(), expected):
                raise failure(name, _rank_diagnosis(scores, targets, candidates, result.long()), shown,
                              f"{expected}", f"{result}", _RANK_HINT, case.hidden)
        return f"ranks like recnb's evaluator on {len(all_cases)} inputs."

    run_check(name, body, strict)


def _rank_diagnosis(scores, targets, candidates, got) -> str:
    target = scores.gather(1, targets[:, None])
    above = (scores > target) & candidates
    ties = (scores == target) & candidates
    if torch.equal(got, 1 + above.sum(1)):
        return ("ties are counted for the model: a candidate with the target's score must rank ahead of it "
                "(>=, not >), or a model that scores everything the same would rank every target first.")
    if torch.equal(got, (scores >= target).sum(1)) or torch.equal(got, (scores >= target)[:, 1:].sum(1)):
        return "it ranks against every item; only the candidates count (the others are seen items or not drawn)."
    if torch.equal(got, above.sum(1) + ties.sum(1) + 1):
        return "the target is counted twice: it is one of the candidates, and scores >= its own score."
    if torch.equal(got, above.sum(1) + ties.sum(1) - 1):
        return "ranks start at 1 (the target ranked first), not 0."
    return "the ranks differ from the evaluator's."


# ----------------------------------------------------------------------------- 2. the sampled candidates
#: Default inputs of the sampling check, (histories, targets, n_items, n_negatives), smallest first.
SAMPLE_CASES = [([[1]], [2], 3, 1), ([[0, 1]], [3], 4, 2), ([[2, 4]], [1], 6, 2),
                ([[0, 0, 5], [1, 2, 3]], [2, 4], 8, 3),
                ([[0, 3, 1], [4, 5, 6]], [7, 1], 9, 20)]
#: Repetitions of the uniformity test, and its rejection threshold (chi-square; a fair sampler exceeds it
#: with a probability far below one in a million).
_DRAWS, _CHI2_LIMIT = 400, 90.0


def _eligible(histories: torch.Tensor, targets: torch.Tensor, n_items: int) -> torch.Tensor:
    """(B, N + 1) bool: the items a negative may be drawn from."""
    eligible = torch.ones(len(histories), n_items + 1, dtype=torch.bool)
    eligible[:, 0] = False
    eligible.scatter_(1, histories, False)
    eligible[torch.arange(len(targets)), targets] = False
    return eligible


def check_sample_candidates(sample_candidates, cases=None, strict: bool | None = None) -> None:
    """Check ``sample_candidates(histories, targets, n_items, n_negatives, generator) -> (B, N + 1)`` bool.

    The sampled protocol's candidates: the target, and ``n_negatives`` different items drawn uniformly
    from those the user has not seen (all of them when fewer are left), never padding. Checked by its
    properties, since every fair sampler draws differently: the counts, the exclusions, that a seed
    repeats the draw and another seed changes it, and that every eligible item is drawn about equally
    often. ``cases``: extra ``(histories, targets, n_items, n_negatives)``.
    """
    name = name_of(sample_candidates, "sample_candidates")
    all_cases = cases_in_order(SAMPLE_CASES, cases, lambda case: (case[2], np.size(case[0])))

    def body():
        for case in all_cases:
            _check_sample_case(name, sample_candidates, case)
        _check_uniform(name, sample_candidates)
        return (f"draws the right candidates on {len(all_cases)} inputs, repeats with a seed, and draws every "
                f"eligible item equally often ({_DRAWS} draws).")

    run_check(name, body, strict)


def _draw(function, histories, targets, n_items, n_negatives, seed, hidden=False):
    generator = torch.Generator().manual_seed(seed)
    return call(function, histories.clone(), targets.clone(), n_items, n_negatives, generator,
                refuse=_sample_references(), hidden=hidden)


def _check_sample_case(name: str, function, case) -> None:
    raw_histories, raw_targets, n_items, n_negatives = case.value
    histories, targets = torch.tensor(raw_histories), torch.tensor(raw_targets)
    eligible = _eligible(histories, targets, n_items)
    wanted = 1 + eligible.sum(1).clamp_max(n_negatives)
    shown = (f"histories = {histories}\ntargets = {targets}\nn_items = {n_items}, n_negatives = {n_negatives}, "
             f"generator = torch.Generator().manual_seed(0)")
    expected = (f"a (B, N + 1) = {tuple(eligible.shape)} bool tensor: True at the target and at "
                f"{eligible.sum(1).clamp_max(n_negatives).tolist()} unseen items")

    def fail(problem: str, got: str) -> Exception:
        return failure(name, problem, shown, expected, got, _SAMPLE_HINT, case.hidden)

    try:
        drawn = _draw(function, histories, targets, n_items, n_negatives, 0, case.hidden)
    except StudentError as error:
        raise raised(name, error, shown, expected, _SAMPLE_HINT, case.hidden) from None
    if not isinstance(drawn, torch.Tensor) or tuple(drawn.shape) != tuple(eligible.shape):
        raise fail("it should return a (B, N + 1) tensor, one row of item ids 0..N per user.", describe(drawn))
    if drawn.dtype != torch.bool:
        raise fail("it should return a bool tensor: True for the candidates.", describe(drawn))
    rows = f"{drawn.int()}"
    if not bool(drawn[torch.arange(len(targets)), targets].all()):
        raise fail("the target is not among the candidates: it is the item being ranked, so it always is.", rows)
    if bool(drawn[:, 0].any()):
        raise fail("column 0 is padding, not an item: it is never a candidate.", rows)
    seen = torch.zeros_like(drawn).scatter_(1, histories, True)
    seen[torch.arange(len(targets)), targets] = False
    seen[:, 0] = False
    if bool((drawn & seen).any()):
        raise fail("an item from the user's history was drawn: negatives come from items the user has not seen.",
                   rows)
    counts = drawn.sum(1)
    if not torch.equal(counts, wanted):
        if bool((counts > wanted).any()):
            problem = "there are too many candidates: n_negatives drawn items, plus the target."
        elif bool((eligible.sum(1) < n_negatives).any()):
            problem = "there are too few candidates: when fewer items are eligible than n_negatives, take them all."
        else:
            problem = ("there are too few candidates: a draw with replacement, or one that can pick the target or "
                       "a seen item and drop it, gives fewer than n_negatives different negatives.")
        raise fail(problem, rows + f"\n({counts.tolist()} candidates per row; expected {wanted.tolist()})")


def _check_uniform(name: str, function) -> None:
    """Every eligible item should be drawn about equally often; a chi-square test over many seeds."""
    n_items, n_negatives = 24, 5
    histories, targets = torch.tensor([[0, 3, 9, 4, 17]]), torch.tensor([11])
    eligible = _eligible(histories, targets, n_items)[0]
    shown = (f"histories = {histories}, targets = {targets}, n_items = {n_items}, n_negatives = {n_negatives}, "
             f"generator = torch.Generator().manual_seed(seed)")
    first, again, other = (_draw(function, histories, targets, n_items, n_negatives, seed) for seed in (0, 0, 1))
    expected = f"one draw of {n_negatives} of the {int(eligible.sum())} eligible items per seed"
    if not torch.equal(first, again):
        raise failure(name, "the same seed gave another draw: it ignores the generator it is given. Pass "
                      "generator=generator to every random call, so that a seed repeats the evaluation.", shown,
                      expected, f"seed 0:\n{first.int()}\nseed 0 again:\n{again.int()}", _SAMPLE_HINT)
    if torch.equal(first, other):  # 11,628 possible draws: a fair sampler repeats itself once in that many seeds
        raise failure(name, "another seed gave the same draw: the negatives are not random (for example the first "
                      "unseen items). Draw them with the generator.", shown, expected,
                      f"seed 0:\n{first.int()}\nseed 1:\n{other.int()}", _SAMPLE_HINT)
    counts = torch.zeros(n_items + 1)
    for seed in range(_DRAWS):
        counts += _draw(function, histories, targets, n_items, n_negatives, 1000 + seed)[0].float()
    observed = counts[eligible]
    expected = _DRAWS * n_negatives / int(eligible.sum())
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    if chi2 > _CHI2_LIMIT:
        low, high = int(observed.min()), int(observed.max())
        raise CheckFailed(
            f"✗ {name}: the negatives are not drawn uniformly: over {_DRAWS} draws of {n_negatives} among "
            f"{int(eligible.sum())} eligible items, each should come up about {expected:.0f} times, but the counts "
            f"run from {low} to {high} (chi-square {chi2:.0f}, far above {_CHI2_LIMIT:.0f}).\n"
            f"Hint: {_SAMPLE_HINT}")
