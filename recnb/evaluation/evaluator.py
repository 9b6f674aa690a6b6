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

Full ranking and :func:`top_k` score a batch of users against every item: (users x items) scores, 180 MB
for 512 users of ML-32M (87,585 films) in fp32, more with the masks beside them. A model that can score a
slice of the items (:class:`ItemScorer`; SASRec can) is scored in item chunks
instead, chosen from a memory budget (``memory_mib``) or given (``item_chunk``): the target's rank is summed
over the chunks and the top K merged across them, with the same results as scoring all items at once.
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

#: The memory one batch's scores and masks may take in full ranking and top K when no ``item_chunk`` is given.
SCORE_MEMORY_MIB = 256


class Scorer(Protocol):
    def score(self, histories: torch.Tensor) -> torch.Tensor:
        """Scores of shape (B, N + 1) for a (B, L) batch of left-padded histories."""


Model = Union[Scorer, Callable[[torch.Tensor], torch.Tensor]]


class ItemScorer(Protocol):
    """A model that scores a slice of the items: what ranking in item chunks needs.

    ``user_states(histories)`` is what the scores of a batch of (B, L) histories are computed from (for SASRec,
    the last hidden state, (B, D)); ``score_items(states, start, stop)`` the (B, stop - start) float scores of item
    ids start..stop-1, equal to the same columns of ``score(histories)``; ``n_columns`` the N + 1 item ids.
    """

    n_columns: int

    def user_states(self, histories: torch.Tensor) -> torch.Tensor:
        """What the scores of (B, L) histories are computed from."""

    def score_items(self, states: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Scores (B, stop - start) of item ids start..stop-1."""


def item_scorer(model: Model) -> ItemScorer | None:
    """``model`` itself when it can score slices of the items (``user_states``, ``score_items``, ``n_columns``:
    SASRec can), else None (it is scored against every item at once)."""
    if all(hasattr(model, name) for name in ("user_states", "score_items", "n_columns")):
        return model  # type: ignore[return-value]  # it has the methods: an ItemScorer
    return None


def items_per_chunk(batch_size: int, n_columns: int, memory_mib: float = SCORE_MEMORY_MIB) -> int:
    """Items scored at once so that a batch's fp32 scores and its boolean masks (about 8 bytes a score) stay
    within ``memory_mib``; at least 1, at most every column."""
    if not (isinstance(memory_mib, (int, float)) and not isinstance(memory_mib, bool) and memory_mib > 0):
        raise InvalidArgumentError(f"memory_mib must be a number of MiB above 0, not {memory_mib!r}.")
    return int(min(max(int(memory_mib * 2**20 // (8 * max(batch_size, 1))), 1), n_columns))


def chunking(model: Model, batch_size: int, item_chunk: int | None = None,
             memory_mib: float = SCORE_MEMORY_MIB) -> tuple[ItemScorer, int] | None:
    """How to score ``model`` in item chunks: its :class:`ItemScorer` and the items of a chunk; None when it
    cannot score a slice, or when one chunk would hold every item (then it is scored as always)."""
    if item_chunk is not None and (isinstance(item_chunk, bool) or not isinstance(item_chunk, (int, np.integer))
                                   or item_chunk < 1):
        raise InvalidArgumentError(f"item_chunk must be a whole number of at least 1 (or None: chosen from "
                                   f"memory_mib), not {item_chunk!r}.")
    scorer = item_scorer(model)
    if scorer is None:
        return None
    chunk = int(item_chunk) if item_chunk is not None else items_per_chunk(batch_size, scorer.n_columns, memory_mib)
    return None if chunk >= scorer.n_columns else (scorer, chunk)


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
    """Score without gradients and, for a torch module, in eval mode (no dropout), put back as it was after.

    Each submodule gets its own mode back: ``module.train()`` would also switch on dropout in the parts that
    were in eval mode (an :class:`~recnb.models.ensemble.Ensemble` built in train mode around models in eval mode).
    """
    modes = [(part, part.training) for part in model.modules()] if isinstance(model, torch.nn.Module) else []
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for part, training in modes:
            part.training = training


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
    for rows, padded, model_input in _history_batches(histories, batch_size, max_len, device, progress, desc):
        with _scoring(model):
            scores = score(model_input)
        _check_scores(scores, len(padded))
        yield rows, padded.to(scores.device), scores


def _history_batches(histories: Sequence[np.ndarray], batch_size: int, max_len: int | None, device,
                     progress: bool, desc: str) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """``(rows, padded, model_input)`` of :func:`score_batches`'s batches, before scoring."""
    order = np.argsort([len(h) for h in histories], kind="stable")
    starts = range(0, len(histories), batch_size)
    for begin in tqdm(starts, desc=desc, disable=not progress, leave=False):
        rows = order[begin:begin + batch_size]
        padded = pad_histories([histories[i] for i in rows])
        model_input = padded if max_len is None else padded[:, -max_len:]
        if device is not None:
            model_input = model_input.to(device)
        yield rows, padded, model_input


def state_batches(model: Model, scorer: ItemScorer, histories: Sequence[np.ndarray], batch_size: int = 512, *,
                  max_len: int | None = None, device: str | torch.device | None = None, progress: bool = False,
                  desc: str = "Scoring") -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """:func:`score_batches` for item chunks: ``(rows, padded, states)``, the scorer's ``user_states`` of each
    batch instead of its scores (``model`` is the module put in eval mode, without gradients, as there)."""
    for rows, padded, model_input in _history_batches(histories, batch_size, max_len, device, progress, desc):
        with _scoring(model):
            states = scorer.user_states(model_input)
        yield rows, padded.to(states.device), states


def chunk_candidates(histories: torch.Tensor, start: int, stop: int, mask_seen: bool = True) -> torch.Tensor:
    """:func:`candidate_mask` of the item ids start..stop-1 alone, (B, stop - start), without the target rule
    (its callers count the target apart): never padding, not the items in the history (if ``mask_seen``)."""
    width = stop - start
    allowed = torch.ones(len(histories), width + 1, dtype=torch.bool, device=histories.device)
    if mask_seen:   # ids outside the chunk go to the spare last column
        inside = (histories >= start) & (histories < stop)
        allowed.scatter_(1, torch.where(inside, histories - start, width), False)
    allowed = allowed[:, :width]
    if start == 0:
        allowed[:, 0] = False
    return allowed


def _chunk_scores(scorer: ItemScorer, states: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    with torch.no_grad():
        scores = scorer.score_items(states, start, stop)
    if scores.shape != (len(states), stop - start):
        raise ValueError(f"score_items returned scores of shape {tuple(scores.shape)} for items {start}..{stop - 1}; "
                         f"expected ({len(states)}, {stop - start}).")
    if torch.isnan(scores).any():
        raise ValueError("The model returned NaN scores; check its inputs and weights.")
    return scores


def chunked_full_ranks(scorer: ItemScorer, states: torch.Tensor, targets: torch.Tensor, histories: torch.Tensor,
                       item_chunk: int, mask_seen: bool = True) -> torch.Tensor:
    """:func:`full_ranks` of the targets with ``candidate_mask``'s rules, scoring ``item_chunk`` items at a time:
    1 + the allowed items other than the target that score at least as high (ties pessimistic), chunk by chunk."""
    rows = torch.arange(len(targets), device=targets.device)
    target_scores: torch.Tensor | None = None
    which = targets // item_chunk
    for part in torch.unique(which).tolist():   # each target scored in its own chunk, by the same product
        start, stop = part * item_chunk, min((part + 1) * item_chunk, scorer.n_columns)
        mine = which == part
        scores = _chunk_scores(scorer, states[mine], start, stop)
        if target_scores is None:
            target_scores = scores.new_empty(len(targets))
        target_scores[mine] = scores.gather(1, (targets[mine] - start)[:, None]).squeeze(1)
    higher = torch.zeros(len(targets), dtype=torch.int64, device=targets.device)
    for start in range(0, scorer.n_columns, item_chunk):
        stop = min(start + item_chunk, scorer.n_columns)
        scores = _chunk_scores(scorer, states, start, stop)
        allowed = chunk_candidates(histories, start, stop, mask_seen)
        inside = (targets >= start) & (targets < stop)
        allowed[rows[inside], targets[inside] - start] = False      # the target itself: the 1 below
        higher += ((scores >= target_scores[:, None]) & allowed).sum(1)  # type: ignore[index]  # set above
    return higher + 1


def chunked_top_columns(scorer: ItemScorer, states: torch.Tensor, histories: torch.Tensor, k: int,
                        item_chunk: int, mask_seen: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`top_columns` over every item id, ``item_chunk`` items at a time: each chunk's top ``k`` merged into
    the running top ``k`` by the same tie rule (chunks come in id order, so equal scores keep the lower id first).
    Returns the (B, k) item ids (-1 where fewer than k are allowed) and their scores."""
    best = torch.full((len(states), 0), -1, dtype=torch.int64, device=states.device)
    best_scores = torch.zeros((len(states), 0), dtype=torch.float32, device=states.device)
    for start in range(0, scorer.n_columns, item_chunk):
        stop = min(start + item_chunk, scorer.n_columns)
        scores = _chunk_scores(scorer, states, start, stop)
        top = top_columns(scores, k, chunk_candidates(histories, start, stop, mask_seen))
        ids = torch.where(top >= 0, top + start, -1)
        candidates = torch.cat([best, ids], dim=1)
        candidate_scores = torch.cat([best_scores.to(scores.dtype), scores.gather(1, top.clamp(min=0))], dim=1)
        pick = top_columns(candidate_scores, k, candidates >= 0)
        best = torch.where(pick >= 0, candidates.gather(1, pick.clamp(min=0)), -1)
        best_scores = candidate_scores.gather(1, pick.clamp(min=0))
    return best, best_scores


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
          batch_size: int = 1024, with_scores: bool = False, item_chunk: int | None = None,
          memory_mib: float = SCORE_MEMORY_MIB):
    """The ``k`` item ids ``model`` ranks highest for each history: what each user would be shown.

    Padding is never listed, nor (with ``exclude_seen``, as in the evaluation) the items in the
    history; ties follow :func:`top_columns` (higher score first, then the lower item id). A user
    with fewer than ``k`` items left gets 0 (padding) in the places that remain. A model that scores slices
    of the items (:func:`item_scorer`) is scored ``item_chunk`` items at a time (default: as many as fit
    ``memory_mib``), with the same lists.

    Returns
    -------
    (U, k) int64 array of item ids, best first; with ``with_scores``, also the (U, k) float64 scores
    (-inf in the places filled with 0).
    """
    if k < 1:
        raise InvalidArgumentError("k must be at least 1.")
    items, values = [], []
    plan = chunking(model, batch_size, item_chunk, memory_mib)
    if plan is not None:
        scorer, chunk = plan
        for rows, padded, states in state_batches(model, scorer, histories, batch_size):
            top, top_scores = chunked_top_columns(scorer, states, padded, k, chunk, mask_seen=exclude_seen)
            found = top >= 0
            items.append((rows, torch.where(found, top, 0).cpu()))
            if with_scores:
                values.append((rows, top_scores.double().masked_fill(~found, -torch.inf).cpu()))
    for rows, padded, scores in (score_batches(model, histories, batch_size) if plan is None else ()):
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
             progress: bool = False, item_chunk: int | None = None,
             memory_mib: float = SCORE_MEMORY_MIB) -> EvaluationResult:
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
    item_chunk, memory_mib : int, float
        Full ranking of a model that scores slices of the items (:func:`item_scorer`, e.g. SASRec) scores
        ``item_chunk`` items at a time, by default as many as keep a batch's scores and masks within
        ``memory_mib`` MiB; the ranks are the same. Other models, and the sampled protocol, score every item.

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
    plan = chunking(model, batch_size, item_chunk, memory_mib) if protocol == "full" else None
    if plan is not None:
        scorer, chunk = plan
        for rows, padded, states in state_batches(model, scorer, histories, batch_size, max_len=max_len,
                                                  device=device, progress=progress, desc="Evaluating (full)"):
            batch_targets = torch.as_tensor(targets[rows], device=states.device)
            if int(batch_targets.max()) >= scorer.n_columns:
                raise ValueError(f"The model scores {scorer.n_columns} item ids but a target has id "
                                 f"{int(batch_targets.max())}: was it built for another data set or another filter "
                                 "setting?")
            batch_ranks = chunked_full_ranks(scorer, states, batch_targets, padded, chunk, mask_seen)
            ranks.append((rows, batch_ranks.cpu()))
    batches = () if plan is not None else score_batches(
        model, histories, batch_size, max_len=max_len, device=device, progress=progress,
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
