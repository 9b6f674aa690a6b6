"""One evaluator for every model: rank each user's held-out item among all items.

A *model* is anything that, given a batch of histories as a left-padded
``(B, L)`` LongTensor of item ids (0 = padding), returns a ``(B, N + 1)`` tensor
of scores for every item id (column 0, padding, is ignored). It can be an
object with a ``score(histories)`` method or a plain function; :func:`as_scorer` turns
either into the function every part of recnb calls, and :func:`score_batches` is the one
loop that scores histories batch by batch.

One tie rule for every list shown (:func:`top_columns`, used by :func:`top_k`, by
``recnb.models.recommend`` and by the explorers): higher score first, equal scores by
the lower item id, padding and (by default) seen items never listed.

Two protocols:

- ``"full"`` (the protocol of this series): the target is ranked among every
  item the user has not seen.
- ``"sampled"``: the target is ranked among ``n_negatives`` (100) items drawn
  at random from those the user has not seen, with a fixed seed. Many papers
  report this; its numbers are much higher and do not compare with full ranking.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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


def as_scorer(model: Model) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` as a function of a (B, L) batch of left-padded histories that returns (B, N + 1) scores.

    Its ``score`` method, or the model itself when it is a plain function: every part of recnb that
    scores goes through here, so whatever the evaluator accepts works everywhere.
    """
    if hasattr(model, "score"):
        return model.score
    if callable(model):
        return model
    raise InvalidArgumentError(f"{type(model).__name__} is not a model: give an object with a "
                               "score(histories) method, or a function of the histories.")


@contextmanager
def _scoring(model: Model) -> Iterator[None]:
    """Score without gradients and, for a torch module, in eval mode (no dropout), put back as it was after."""
    module = model if isinstance(model, torch.nn.Module) else None
    was_training = module is not None and module.training
    if module is not None and was_training:
        module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if module is not None and was_training:
            module.train()


def score_batches(model: Model, histories: Sequence[np.ndarray], batch_size: int = 512, *,
                  max_len: int | None = None, device: str | torch.device | None = None, progress: bool = False,
                  desc: str = "Scoring") -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Score ``histories`` ``batch_size`` users at a time: the one batch loop of recnb.

    Yields ``(rows, padded, scores)`` per batch: ``rows``, the indices into ``histories`` of
    the users scored; ``padded``, those whole histories left-padded to (B, L) on the scores'
    device (what a seen-item mask needs); ``scores``, the model's (B, N + 1). Users go in order
    of history length, so a batch holds histories of similar length and little padding (a
    sequence model's cost grows with the padded length); callers put results back with
    ``rows``. The model sees the last ``max_len`` items only (all with None), moved to
    ``device`` if given; it is scored without gradients and, if it is a torch module, in eval
    mode, restored after each batch.

    Raises ValueError for scores of the wrong shape or with NaN.
    """
    score = as_scorer(model)
    order = np.argsort([len(h) for h in histories], kind="stable")
    starts = range(0, len(histories), batch_size)
    for begin in tqdm(starts, desc=desc, disable=not progress, leave=False):
        rows = order[begin:begin + batch_size]
        padded = pad_histories([histories[i] for i in rows])
        model_input = padded if max_len is None else padded[:, -max_len:]
        if device is not None:
            model_input = model_input.to(device)
        with _scoring(model):
            scores = score(model_input)
        _check_scores(scores, len(padded))
        yield rows, padded.to(scores.device), scores


def in_input_order(parts: list[tuple[np.ndarray, torch.Tensor]], n: int) -> torch.Tensor:
    """Per-batch results of :func:`score_batches` ``(rows, values)`` put back in the order of its input."""
    if not parts:
        return torch.zeros(0, dtype=torch.int64)
    first = parts[0][1]
    out = first.new_empty((n, *first.shape[1:]))
    for rows, values in parts:
        out[torch.as_tensor(rows)] = values.to(out.device)
    return out


def candidate_mask(histories: torch.Tensor, targets: torch.Tensor | None, n_columns: int,
                   mask_seen: bool = True) -> torch.Tensor:
    """Which item ids may be ranked: never padding; not items in the history (if ``mask_seen``);
    always the target itself (where ``targets`` are given), even when the user saw it before."""
    allowed = torch.ones(len(histories), n_columns, dtype=torch.bool, device=histories.device)
    if mask_seen:
        allowed.scatter_(1, histories, False)
    allowed[:, 0] = False
    if targets is not None:
        allowed.scatter_(1, targets[:, None], True)
    return allowed


def top_columns(scores: torch.Tensor, k: int, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """The columns of each row's ``k`` highest scores, best first, by recnb's one tie rule.

    **The tie rule**: a higher score comes first; equal scores come in column order, the
    lower item id (or position) first; a column that is not ``allowed`` never appears.
    A row with fewer than ``k`` allowed columns ends in -1. Every top K of the series (the
    evaluator's :func:`top_k`, :func:`recnb.models.recommend.recommend`, the explorers of
    notebook 09) is this function, so the same scores always give the same list.
    """
    if allowed is None:
        allowed = torch.ones_like(scores, dtype=torch.bool)
    order = torch.sort(scores.masked_fill(~allowed, -torch.inf), dim=1, descending=True, stable=True).indices
    if (torch.isneginf(scores) & allowed).any():   # an allowed -inf sorts among the excluded: put it before them
        excluded_first = (~allowed.gather(1, order)).to(torch.uint8)
        order = order.gather(1, torch.sort(excluded_first, dim=1, stable=True).indices)
    order = order[:, :k]
    top = torch.where(allowed.gather(1, order), order, -1)
    if top.shape[1] < k:   # more places than columns
        top = torch.cat([top, top.new_full((len(top), k - top.shape[1]), -1)], dim=1)
    return top


def top_k(model: Model, histories: Sequence[np.ndarray], k: int = 10, *, exclude_seen: bool = True,
          batch_size: int = 1024, with_scores: bool = False):
    """The ``k`` item ids ``model`` ranks highest for each history: what each user would be shown.

    Padding is never listed, nor (with ``exclude_seen``, as in the evaluation) the items in the
    history; ties follow :func:`top_columns` (higher score first, then the lower item id). A user
    with fewer than ``k`` items left gets 0 (padding) in the places that remain.

    Returns
    -------
    (U, k) int64 array of item ids, best first; with ``with_scores``, also the (U, k) float64 scores
    (-inf in the places filled with 0).
    """
    if k < 1:
        raise InvalidArgumentError("k must be at least 1.")
    items, values = [], []
    for rows, padded, scores in score_batches(model, histories, batch_size):
        allowed = candidate_mask(padded, None, scores.shape[1], mask_seen=exclude_seen)
        top = top_columns(scores, k, allowed)
        found = top >= 0
        top = torch.where(found, top, 0)
        items.append((rows, top.cpu()))
        if with_scores:
            values.append((rows, scores.double().gather(1, top).masked_fill(~found, -torch.inf).cpu()))
    ids = in_input_order(items, len(histories)).numpy() if items else np.zeros((0, k), dtype=np.int64)
    if not with_scores:
        return ids
    return ids, (in_input_order(values, len(histories)).numpy() if values else np.zeros((0, k)))


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
    ranks = []
    start = time.perf_counter()
    batches = score_batches(model, histories, batch_size, max_len=max_len, device=device, progress=progress,
                            desc=f"Evaluating ({protocol})")
    for rows, padded, scores in batches:
        batch_targets = torch.as_tensor(targets[rows], device=scores.device)
        if int(batch_targets.max()) >= scores.shape[1]:
            raise ValueError(
                f"The model scores {scores.shape[1]} item ids but a target has id {int(batch_targets.max())}: "
                "was it built for another data set or another filter setting?"
            )
        allowed = candidate_mask(padded, batch_targets, scores.shape[1], mask_seen)
        if protocol == "full":
            batch_ranks = full_ranks(scores, batch_targets, allowed)
        else:
            users = torch.as_tensor(rows, device=scores.device)
            batch_ranks = sampled_ranks(scores, batch_targets, allowed, users, n_negatives, seed)
        ranks.append((rows, batch_ranks.cpu()))
    ranks_array = in_input_order(ranks, len(histories)).numpy()
    name = "full ranking" if protocol == "full" else f"sampled ({n_negatives} negatives, seed {seed})"
    return EvaluationResult(metrics_from_ranks(ranks_array, ks), ranks_array, name,
                            time.perf_counter() - start, {"mask_seen": mask_seen, "ks": tuple(ks)})


def _check_scores(scores: torch.Tensor, batch: int) -> None:
    if scores.dim() != 2 or scores.shape[0] != batch:
        raise ValueError(f"The model returned scores of shape {tuple(scores.shape)}; expected ({batch}, N + 1).")
    if torch.isnan(scores).any():
        raise ValueError("The model returned NaN scores; check its inputs and weights.")


def evaluate_split(model: Model, split: LeaveOneOutSplit, which: str = "test", **options) -> EvaluationResult:
    """Evaluate ``model`` on the validation or test targets of a leave-one-out split.

    The histories follow :func:`recnb.data.split.evaluation_inputs`: at test time the
    validation item is part of the input.
    """
    histories, targets = evaluation_inputs(split, which)
    return evaluate(model, histories, targets, **options)
