"""Tables from evaluation results: tie bounds, metrics by group of users, the results table, HR@K curves.

The pictures are in :mod:`recnb.viz`. Every function here returns plain numbers,
arrays or DataFrames, so it can be tested without drawing and reused in any notebook.

>>> results_table({"popularity": popularity, "markov": markov}, relative_to="popularity")
>>> hit_rate_at_k({"popularity": popularity, "markov": markov})       # HR@K for every K, one column each
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from recnb.evaluation.evaluator import EvaluationResult, candidate_mask, full_ranks, in_input_order, score_batches
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
    targets = np.asarray(targets, dtype=np.int64)
    pessimistic, optimistic = [], []
    for rows, padded, scores in score_batches(scorer, histories, batch_size):
        batch_targets = torch.as_tensor(targets[rows], device=scores.device)
        allowed = candidate_mask(padded, batch_targets, scores.shape[1], mask_seen)
        target_scores = scores.gather(1, batch_targets[:, None])
        pessimistic.append((rows, full_ranks(scores, batch_targets, allowed).cpu()))
        optimistic.append((rows, 1 + ((scores > target_scores) & allowed).sum(1).cpu()))
    return (in_input_order(pessimistic, len(histories)).numpy(),
            in_input_order(optimistic, len(histories)).numpy())


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


def _integer_log_bins(largest: int, k: int, n_bins: int = 40) -> np.ndarray:
    """Bin starts (whole ranks) spaced about evenly on a log scale, with one at ``k + 1``, and ``largest + 1``.

    Every bin holds whole ranks, and none holds ranks on both sides of the cut-off.
    """
    starts = np.round(np.logspace(0, np.log10(largest + 1), n_bins)).astype(np.int64)
    edges = np.unique(np.concatenate([starts, [k + 1, largest + 1]]))
    return edges[edges <= largest + 1]


def rank_histogram(ranks, k: int = 10, n_candidates: int | None = None) -> pd.DataFrame:
    """How many users ranked the held-out item in each bin of ranks; bins about even on a log scale.

    One row per bin of whole ranks, ``first rank`` to ``last rank``; the bins
    run from rank 1 to ``n_candidates`` (the most a rank can be, e.g. the number
    of items; default the largest rank given), and ``top K`` marks the bins
    within the top ``k``: no bin straddles the cut-off, so HR@K is the users of
    those bins over all users. Ranks beyond ``n_candidates`` are in no bin.
    """
    ranks = np.asarray(ranks)
    largest = int(n_candidates or ranks.max())
    edges = _integer_log_bins(largest, k)
    users, _ = np.histogram(ranks, bins=edges - 0.5)
    return pd.DataFrame({"first rank": edges[:-1], "last rank": edges[1:] - 1, "users": users,
                         "top K": edges[1:] - 1 <= k})


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
    genre_of = np.asarray(item_genre)
    n_genres = int(genre_of.max()) + 1
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    flat = np.concatenate(histories).astype(np.int64) if len(histories) else np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(histories)), lengths)
    counts = np.zeros((len(histories), n_genres), dtype=np.int64)
    np.add.at(counts, (owner, genre_of[flat]), 1)
    return counts


# ----------------------------------------------------------------------------- memory and results
def sparse_bytes(matrix: torch.Tensor) -> int:
    """Bytes a sparse CSR tensor holds: row pointers, column indices and values."""
    parts = (matrix.crow_indices(), matrix.col_indices(), matrix.values())
    return int(sum(p.numel() * p.element_size() for p in parts))


def results_table(results: Mapping[str, EvaluationResult], metrics: Sequence[str] = HEADLINE_METRICS, *,
                  names: Mapping[str, str] | None = None, relative_to: str | None = None,
                  reference: Mapping[str, float] | None = None,
                  reference_name: str = "reported HR@10") -> pd.DataFrame:
    """The one results table: a row per model (or protocol), a column per metric.

    Parameters
    ----------
    names : mapping, optional
        Row labels for the keys of ``results`` (keys it lacks keep their own), e.g.
        :data:`recnb.evaluation.comparison.MODEL_NAMES`.
    relative_to : key of ``results``, optional
        Adds ``HR@10 vs <its label, lower case>``: ``HR@10 / HR@10(relative_to) - 1``, so 3.0 means
        four times as many users find their next film in the top 10 (NaN when its HR@10 is 0).
    reference : mapping of key of ``results`` -> figure, optional
        Adds a column ``reference_name`` of figures reported elsewhere (NaN where none).
    """
    label = {key: (names or {}).get(key, key) for key in results}
    table = pd.DataFrame({label[key]: {m: r.metrics[m] for m in metrics} for key, r in results.items()}).T
    table.index.name = "model"
    if relative_to is not None and relative_to in results:
        base = results[relative_to].metrics["HR@10"]
        table[f"HR@10 vs {label[relative_to].lower()}"] = table["HR@10"] / base - 1 if base > 0 else np.nan
    if reference is not None:
        table[reference_name] = [reference.get(key, np.nan) for key in results]
    return table


def hit_rate_at_k(results: Mapping[str, EvaluationResult | np.ndarray], max_k: int | None = None, *,
                  names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """HR@K for every K = 1..``max_k``: one column per entry of ``results`` (evaluation results, or ranks).

    ``max_k`` defaults to the largest rank of any entry, where every curve has reached 1.
    ``names`` relabels the columns as in :func:`results_table`.
    """
    ranks = {(names or {}).get(key, key): np.asarray(getattr(r, "ranks", r)) for key, r in results.items()}
    largest = max_k if max_k is not None else max(int(r.max()) for r in ranks.values())
    cutoffs = np.arange(1, largest + 1)
    return pd.DataFrame({label: np.searchsorted(np.sort(r), cutoffs, side="right") / len(r)
                         for label, r in ranks.items()}, index=pd.Index(cutoffs, name="K"))


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
