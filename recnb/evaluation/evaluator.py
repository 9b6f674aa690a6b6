"""One evaluator for every model: rank each user's held-out item among all items.

A *model* is anything that, given a batch of histories as a left-padded
``(B, L)`` LongTensor of item ids (0 = padding), returns a ``(B, N + 1)`` tensor
of scores for every item id (column 0, padding, is ignored). It can be an
object with a ``score(histories)`` method or a plain function.

Two protocols:

- ``"full"`` (the protocol of this series): the target is ranked among every
  item the user has not seen.
- ``"sampled"``: the target is ranked among ``n_negatives`` (100) items drawn
  at random from those the user has not seen, with a fixed seed. Many papers
  report this; its numbers are much higher and do not compare with full ranking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, Union

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from recnb.data.split import LeaveOneOutSplit, evaluation_inputs, pad_histories
from recnb.errors import InvalidArgumentError
from recnb.evaluation.metrics import DEFAULT_KS, metrics_from_ranks


class Scorer(Protocol):
    def score(self, histories: torch.Tensor) -> torch.Tensor:
        """Scores of shape (B, N + 1) for a (B, L) batch of left-padded histories."""


Model = Union[Scorer, Callable[[torch.Tensor], torch.Tensor]]


@dataclass
class EvaluationResult:
    """Metrics and each user's rank of the held-out item."""

    metrics: dict[str, float]
    ranks: np.ndarray
    protocol: str
    seconds: float
    details: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.metrics[name]

    def to_series(self, name: str | None = None) -> pd.Series:
        return pd.Series(self.metrics, name=name)

    def __repr__(self) -> str:
        head = ", ".join(f"{k} {self.metrics[k]:.4f}" for k in ("HR@10", "NDCG@10", "MRR") if k in self.metrics)
        return f"EvaluationResult({self.protocol}, {len(self.ranks):,} users: {head}; {self.seconds:.2f} s)"


def _score_function(model: Model) -> Callable[[torch.Tensor], torch.Tensor]:
    return model.score if hasattr(model, "score") else model


def candidate_mask(histories: torch.Tensor, targets: torch.Tensor, n_columns: int,
                   mask_seen: bool = True) -> torch.Tensor:
    """Which item ids may be ranked: never padding; not items in the history (if ``mask_seen``);
    always the target itself, even when the user saw it before."""
    allowed = torch.ones(len(histories), n_columns, dtype=torch.bool, device=histories.device)
    if mask_seen:
        allowed.scatter_(1, histories, False)
    allowed[:, 0] = False
    allowed.scatter_(1, targets[:, None], True)
    return allowed


def full_ranks(scores: torch.Tensor, targets: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of each target among the allowed items.

    Ties are ranked pessimistically: the target is placed after every allowed
    item with an equal score, so a model that gives every item the same score
    ranks its target last, not first.
    """
    target_scores = scores.gather(1, targets[:, None])
    return ((scores >= target_scores) & allowed).sum(1)


def _hash_keys(users: torch.Tensor, n_columns: int, seed: int) -> torch.Tensor:
    """Pseudo-random integer key for every (user, item) pair, fixed by the seed.

    Depending only on (seed, user, item), the sampled negatives are the same
    whatever the batch size or the order of evaluation.
    """
    mask31 = 0x7FFFFFFF
    items = torch.arange(n_columns, dtype=torch.int64, device=users.device)
    h = (users[:, None] * 0x9E3779B1 + items[None, :] * 0x85EBCA77 + (seed % 2**31) * 0xC2B2AE3D) & mask31
    for _ in range(3):  # integer mixing rounds (xorshift-multiply), kept within 31 bits
        h = ((h ^ (h >> 15)) * 0x2C1B3C6D) & mask31
    return h


def sampled_ranks(scores: torch.Tensor, targets: torch.Tensor, allowed: torch.Tensor, users: torch.Tensor,
                  n_negatives: int, seed: int) -> torch.Tensor:
    """Rank of each target among ``n_negatives`` allowed items drawn without replacement.

    Users with fewer allowed items than ``n_negatives`` are ranked against all
    of them. Ties are pessimistic, as in :func:`full_ranks`.
    """
    never = torch.iinfo(torch.int64).max
    allowed = allowed.clone()
    allowed.scatter_(1, targets[:, None], False)  # the target is not its own negative
    keys = _hash_keys(users, scores.shape[1], seed).masked_fill(~allowed, never)
    k = min(n_negatives, scores.shape[1])
    picked_keys, negatives = keys.topk(k, dim=1, largest=False)
    valid = picked_keys != never
    target_scores = scores.gather(1, targets[:, None])
    return 1 + ((scores.gather(1, negatives) >= target_scores) & valid).sum(1)


def evaluate(model: Model, histories: list[np.ndarray], targets, *, ks=DEFAULT_KS, batch_size: int = 512,
             mask_seen: bool = True, protocol: str = "full", n_negatives: int = 100, seed: int = 0,
             max_len: int | None = None, device: str | torch.device | None = None,
             progress: bool = False) -> EvaluationResult:
    """Rank every user's target with ``model`` and summarise the ranks.

    Parameters
    ----------
    model : object with ``score(histories)``, or a function
        Returns (B, N + 1) scores for a (B, L) LongTensor of left-padded histories.
    histories : list of int arrays
        Each user's items, oldest first (see :func:`recnb.data.split.evaluation_inputs`).
    targets : array of shape (U,)
        The held-out item id of each user.
    ks : tuple of int
        Cut-offs for HR@K, NDCG@K and MRR@K. A K larger than the catalogue is allowed
        (every rank is within it).
    mask_seen : bool
        Remove the items in each history from the ranking (the benchmark's rule).
    protocol : ``"full"`` or ``"sampled"``
        Rank among all items, or among ``n_negatives`` random unseen items (seeded by ``seed``).
    max_len : int, optional
        Give the model only the most recent ``max_len`` items. Seen-item masking
        always uses the whole history.

    Ties between the target's score and another item's are ranked
    pessimistically (the target after the equal scores).

    Returns
    -------
    EvaluationResult
        ``metrics`` (HR@K, NDCG@K, MRR@K, MRR) and ``ranks`` (one per user, in input order).
    """
    if protocol not in ("full", "sampled"):
        raise InvalidArgumentError(f"protocol must be 'full' or 'sampled', not {protocol!r}.")
    targets = np.asarray(targets, dtype=np.int64)
    if len(histories) != len(targets):
        raise ValueError(f"{len(histories)} histories but {len(targets)} targets: give one target per history.")
    if len(targets) and targets.min() < 1:
        raise ValueError("Targets must be real item ids (1..N); 0 is padding.")
    score = _score_function(model)
    was_training = getattr(model, "training", None)
    if was_training:
        model.eval()
    ranks = []
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            batches = range(0, len(targets), batch_size)
            for begin in tqdm(batches, desc=f"Evaluating ({protocol})", disable=not progress, leave=False):
                end = begin + batch_size
                batch_histories = histories[begin:end]
                full = pad_histories(batch_histories)
                model_input = full if max_len is None else full[:, -max_len:]
                if device is not None:
                    full, model_input = full.to(device), model_input.to(device)
                scores = score(model_input)
                batch_targets = torch.as_tensor(targets[begin:end], device=scores.device)
                _check_scores(scores, len(batch_histories), int(batch_targets.max()))
                allowed = candidate_mask(full.to(scores.device), batch_targets, scores.shape[1], mask_seen)
                if protocol == "full":
                    batch_ranks = full_ranks(scores, batch_targets, allowed)
                else:
                    users = torch.arange(begin, begin + len(batch_histories), device=scores.device)
                    batch_ranks = sampled_ranks(scores, batch_targets, allowed, users, n_negatives, seed)
                ranks.append(batch_ranks.cpu())
    finally:
        if was_training:
            model.train()
    ranks_array = torch.cat(ranks).numpy() if ranks else np.zeros(0, dtype=np.int64)
    name = "full ranking" if protocol == "full" else f"sampled ({n_negatives} negatives, seed {seed})"
    return EvaluationResult(metrics_from_ranks(ranks_array, ks), ranks_array, name,
                            time.perf_counter() - start, {"mask_seen": mask_seen, "ks": tuple(ks)})


def _check_scores(scores: torch.Tensor, batch: int, max_target: int) -> None:
    if scores.dim() != 2 or scores.shape[0] != batch:
        raise ValueError(f"The model returned scores of shape {tuple(scores.shape)}; expected ({batch}, N + 1).")
    if max_target >= scores.shape[1]:
        raise ValueError(
            f"The model scores {scores.shape[1]} item ids but a target has id {max_target}: "
            "was it built for another data set or another filter setting?"
        )
    if torch.isnan(scores).any():
        raise ValueError("The model returned NaN scores; check its inputs and weights.")


def evaluate_split(model: Model, split: LeaveOneOutSplit, which: str = "test", **options) -> EvaluationResult:
    """Evaluate ``model`` on the validation or test targets of a leave-one-out split.

    The histories follow :func:`recnb.data.split.evaluation_inputs`: at test time the
    validation item is part of the input.
    """
    histories, targets = evaluation_inputs(split, which)
    return evaluate(model, histories, targets, **options)
