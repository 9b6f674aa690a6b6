"""Small analyses the baseline notebooks (02 to 05) run on evaluation results: tables, not pictures.

The pictures of the same notebooks are in :mod:`recnb.viz.baseline_plots`. Every
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

from recnb.data.split import pad_histories
from recnb.evaluation.evaluator import EvaluationResult, candidate_mask, full_ranks
from recnb.evaluation.metrics import metrics_from_ranks

#: The three figures the series reports for every model.
HEADLINE_METRICS = ("HR@10", "NDCG@10", "MRR")


# ----------------------------------------------------------------------------- ranks and ties
def tie_rank_bounds(scorer, histories: list[np.ndarray], targets, batch_size: int = 512,
                    mask_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Each target's rank with ties counted against it (the evaluator's rule) and for it.

    ``pessimistic`` places the target after every candidate with an equal score,
    as :func:`recnb.evaluation.evaluator.full_ranks` does; ``optimistic`` places it before
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
