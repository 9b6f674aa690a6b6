"""Small analyses the baseline notebooks (02 to 05) run on evaluation results: tables, not pictures.

The pictures of the same notebooks are in :mod:`recnb.baseline_plots`. Every
function here returns plain numbers, arrays or DataFrames, so it can be tested
without drawing and reused in later notebooks.

>>> sweep = alpha_sweep(data.n_items, split, [0.0, 0.5, 1.0], which="valid")  # choose on validation ...
>>> alpha = choose_alpha(sweep)                                              # ... then test once
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .baselines import AR2, MarkovChain
from .evaluate import EvaluationResult, candidate_mask, full_ranks
from .metrics import metrics_from_ranks
from .split import LeaveOneOutSplit, evaluation_inputs, pad_histories

#: The three figures the series reports for every model.
HEADLINE_METRICS = ("HR@10", "NDCG@10", "MRR")


# ----------------------------------------------------------------------------- the hybrid's alpha
def alpha_sweep(n_items: int, split: LeaveOneOutSplit, alphas: Sequence[float], which: str = "valid",
                metrics: Sequence[str] = HEADLINE_METRICS, batch_size: int = 1024,
                tie_break: bool = True) -> pd.DataFrame:
    """Metrics of ``Hybrid(alpha)`` for every alpha in ``alphas``, from one Markov chain fit on ``split.train``.

    The hybrid's score is ``alpha * markov + (1 - alpha) * popularity`` (see
    :class:`recnb.baselines.Hybrid`). Both parts are computed once per batch and
    only the blend changes with alpha, so a sweep costs little more than one
    evaluation. The ranks are exactly those ``evaluate_split(Hybrid(alpha), split, which)``
    gives: the same scores, the same candidates, ties ranked pessimistically.

    Choose alpha on ``which="valid"`` and report the chosen one on test: never choose on test.

    Parameters
    ----------
    n_items : int
        Number of real items N (``data.n_items``).
    split : LeaveOneOutSplit
        The model is fit on ``split.train``; histories and targets follow
        :func:`recnb.split.evaluation_inputs`.
    alphas : sequence of float in [0, 1]
        Weights of the Markov chain to try.
    which : ``"valid"`` or ``"test"``
    metrics : names from :func:`recnb.metrics.metrics_from_ranks`
        Columns of the result (cut-offs up to 50, and ``"MRR"``).
    tie_break : bool
        ``False`` blends the bare P(next | last) instead of the chain's score, leaving out
        :class:`~recnb.baselines.MarkovChain`'s popularity tie-break: what the blend does for a
        chain without one (alpha = 1 is then the bare chain, ties ranked pessimistically).

    Returns
    -------
    DataFrame indexed by ``alpha`` (in the order given), one column per metric.
    """
    alphas = [float(a) for a in alphas]
    if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
        raise ValueError(f"alphas must be a non-empty list of weights in [0, 1]; got {alphas}.")
    markov = MarkovChain(n_items).fit(split.train)
    histories, targets = evaluation_inputs(split, which)
    ranks: dict[float, list[torch.Tensor]] = {a: [] for a in alphas}
    with torch.inference_mode():
        for begin in range(0, len(targets), batch_size):
            full = pad_histories(histories[begin:begin + batch_size])
            batch_targets = torch.as_tensor(targets[begin:begin + batch_size])
            last = full[:, -1:]  # (B, 1): the chain reads only the last item
            markov_scores = markov.score(last) if tie_break else markov.next_item_probabilities(last[:, 0])
            allowed = candidate_mask(full, batch_targets, markov_scores.shape[1])  # seen items: whole history
            for alpha in alphas:  # the same expression as Hybrid._score, so the same floating-point scores
                scores = alpha * markov_scores + (1.0 - alpha) * markov.popularity[None, :]
                ranks[alpha].append(full_ranks(scores, batch_targets, allowed))
    rows = [metrics_from_ranks(torch.cat(ranks[a]).numpy()) for a in alphas]
    missing = [m for m in metrics if m not in rows[0]]
    if missing:
        raise ValueError(f"Unknown metrics {missing}; choose from {sorted(rows[0])}.")
    table = pd.DataFrame([{m: row[m] for m in metrics} for row in rows], index=pd.Index(alphas, name="alpha"))
    return table


def choose_alpha(sweep: pd.DataFrame, metric: str = "HR@10") -> float:
    """The alpha with the best ``metric`` in a sweep.

    Ties go to the sweep's other columns in turn, then to the alpha that comes first in the sweep.
    """
    order = [metric] + [c for c in sweep.columns if c != metric]
    ranked = sweep.reset_index().sort_values(order, ascending=False, kind="stable")
    return float(ranked["alpha"].iloc[0])


# ----------------------------------------------------------------------------- ranks and ties
def tie_rank_bounds(scorer, histories: list[np.ndarray], targets, batch_size: int = 512,
                    mask_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Each target's rank with ties counted against it (the evaluator's rule) and for it.

    ``pessimistic`` places the target after every candidate with an equal score,
    as :func:`recnb.evaluate.full_ranks` does; ``optimistic`` places it before
    them. Their gap is how much a model's figures depend on tie handling alone.

    Returns
    -------
    pessimistic, optimistic : int arrays of shape (U,)
    """
    score = scorer.score if hasattr(scorer, "score") else scorer
    targets = np.asarray(targets, dtype=np.int64)
    pessimistic, optimistic = [], []
    with torch.inference_mode():
        for begin in range(0, len(targets), batch_size):
            full = pad_histories(histories[begin:begin + batch_size])
            batch_targets = torch.as_tensor(targets[begin:begin + batch_size])
            scores = score(full)
            allowed = candidate_mask(full, batch_targets, scores.shape[1], mask_seen)
            target_scores = scores.gather(1, batch_targets[:, None])
            pessimistic.append(full_ranks(scores, batch_targets, allowed))
            optimistic.append(1 + ((scores > target_scores) & allowed).sum(1))
    return torch.cat(pessimistic).numpy(), torch.cat(optimistic).numpy()


def metrics_by_group(ranks: Mapping[str, np.ndarray], groups, metric: str = "HR@10",
                     order: Sequence | None = None) -> pd.DataFrame:
    """One metric of several models, computed separately for each group of users.

    Parameters
    ----------
    ranks : dict of model name -> ranks (one per user, the same users in the same order)
    groups : array of shape (U,)
        A label per user, e.g. ``"pair seen"`` / ``"backed off"``.
    order : sequence of labels, optional
        The rows to give, in this order (default: every label, in order of first appearance).

    Returns
    -------
    DataFrame indexed by group, one column per
    model, and a last column ``users`` with the size of each group.
    """
    groups = np.asarray(groups)
    labels = list(dict.fromkeys(groups.tolist())) if order is None else list(order)
    table = {}
    for name, model_ranks in ranks.items():
        model_ranks = np.asarray(model_ranks)
        if len(model_ranks) != len(groups):
            raise ValueError(f"{name}: {len(model_ranks)} ranks for {len(groups)} group labels.")
        table[name] = [metrics_from_ranks(model_ranks[groups == g], ks=_cutoffs(metric))[metric] for g in labels]
    table["users"] = [int((groups == g).sum()) for g in labels]
    return pd.DataFrame(table, index=pd.Index(labels, name="group"))


def _cutoffs(metric: str) -> tuple[int, ...]:
    match = re.fullmatch(r"(?:HR|NDCG|MRR)@(\d+)", metric)
    if match:
        return (int(match.group(1)),)
    if metric == "MRR":
        return (10,)
    raise ValueError(f"Unknown metric {metric!r}: use HR@K, NDCG@K, MRR@K or MRR.")


def top_items(model, history, k: int = 10, exclude_seen: bool = True) -> np.ndarray:
    """The ``k`` item ids ``model`` ranks highest for one history, best first (what a user would be shown).

    Seen items are left out, as the evaluator leaves them out (``exclude_seen``);
    equal scores are ordered by item id.
    """
    history = np.asarray(history, dtype=np.int64)
    score = model.score if hasattr(model, "score") else model
    with torch.no_grad():
        scores = score(pad_histories([history]))[0].double().clone()
    scores[0] = -np.inf  # padding
    if exclude_seen:
        scores[torch.from_numpy(history)] = -np.inf
    order = torch.sort(-scores, stable=True).indices  # stable: ties in id order
    return order[:k].numpy()


def pair_support(model: AR2, histories: list[np.ndarray]) -> np.ndarray:
    """How often each history's last two items were seen as a pair in training; 0 where never (AR(2) backs off).

    A pair seen once gives AR(2) a next-item estimate from a single example.
    """
    model._check_fitted()
    keys = np.array([h[-2] * (model.n_items + 1) + h[-1] if len(h) >= 2 else -1 for h in histories],
                    dtype=np.int64)
    pair_keys, totals = model.pair_keys.numpy(), model.pair_totals.numpy()
    if not len(pair_keys):
        return np.zeros(len(histories), dtype=np.int64)
    rows = np.minimum(np.searchsorted(pair_keys, keys), len(pair_keys) - 1)
    return np.where(pair_keys[rows] == keys, totals[rows], 0).astype(np.int64)


# ----------------------------------------------------------------------------- items and genres
def items_matching(items: pd.DataFrame, pattern: str) -> pd.DataFrame:
    """Title (and year) of the items whose title matches a regular expression, ignoring case, by item id.

    ``items`` is ``data.items``; the padding row is never returned.
    """
    with warnings.catch_warnings():  # pandas warns about groups in a pattern; we only need the match
        warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular expression")
        hits = items[items["title"].str.contains(pattern, case=False, regex=True, na=False)]
    return hits[hits.index != 0][[c for c in ("title", "year") if c in hits]]


def genre_counts(item_genre: torch.Tensor, histories: list[np.ndarray]) -> np.ndarray:
    """How many items of each primary genre every history holds, (U, G); column 0 counts items without one."""
    item_genre = np.asarray(item_genre)
    n_genres = int(item_genre.max()) + 1
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    flat = np.concatenate(histories).astype(np.int64) if len(histories) else np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(histories)), lengths)
    counts = np.zeros((len(histories), n_genres), dtype=np.int64)
    np.add.at(counts, (owner, item_genre[flat]), 1)
    return counts


# ----------------------------------------------------------------------------- memory and results
def sparse_bytes(matrix: torch.Tensor) -> int:
    """Bytes a sparse CSR tensor holds: row pointers, column indices and values."""
    parts = (matrix.crow_indices(), matrix.col_indices(), matrix.values())
    return int(sum(p.numel() * p.element_size() for p in parts))


def results_table(results: Mapping[str, EvaluationResult], metrics: Sequence[str] = HEADLINE_METRICS,
                  reference: Mapping[str, float] | None = None,
                  reference_name: str = "reported HR@10") -> pd.DataFrame:
    """One row per model, one column per metric; with ``reference``, a column of figures reported elsewhere."""
    table = pd.DataFrame({name: {m: r.metrics[m] for m in metrics} for name, r in results.items()}).T
    table.index.name = "model"
    if reference is not None:
        table[reference_name] = [reference.get(name, np.nan) for name in table.index]
    return table


def markdown_table(table: pd.DataFrame, percent: Sequence[str] = (), digits: int = 4) -> str:
    """A DataFrame as a GitHub markdown table (no extra dependency); ``percent`` columns are written as %."""
    def cell(column, value):
        if isinstance(value, (float, np.floating)):
            if np.isnan(value):
                return "–"
            return f"{100 * value:.2f}%" if column in percent else f"{value:.{digits}f}"
        return str(value)

    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in table.iterrows():
        lines.append("| " + " | ".join([str(name)] + [cell(c, row[c]) for c in table.columns]) + " |")
    return "\n".join(lines) + "\n"
