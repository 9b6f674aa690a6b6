"""Every model on the same test: the table of ``python -m recnb compare`` and the analyses of notebook 08.

Numbers only; the pictures are in :mod:`recnb.viz.comparison_plots`. Models reach this module only
through the scorer interface; fitting them is :func:`recnb.models.zoo.fit_models`'s job.

>>> models = fit_models(data, split, sasrec=load_checkpoint(default_checkpoint(), data)[0])  # recnb.models
>>> results = evaluate_models(models, split)          # one evaluator, full ranking, test split
>>> comparison_table(results)                          # HR@10, NDCG@10, MRR, change against popularity
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from recnb.config import repository_root
from recnb.data.sequences import item_counts
from recnb.data.split import LeaveOneOutSplit, evaluation_inputs, pad_histories
from recnb.evaluation.analysis import HEADLINE_METRICS, metrics_by_group
from recnb.evaluation.evaluator import EvaluationResult, Model, _score_function, evaluate_split
from recnb.files import atomic_file

#: Display names, in the order the series introduces the models.
MODEL_NAMES = {
    "popularity": "Popularity",
    "genre": "Favourite genre",
    "markov": "Markov chain",
    "hybrid": "Markov + popularity",
    "ar2": "AR(2) chain",
    "sasrec": "SASRec",
}


#: Published full-ranking results on ML-1M (5-core, leave-one-out, seen items masked):
#: Klenitskiy and Vasilev, RecSys 2023.
PUBLISHED = {
    "SASRec, full cross-entropy (RecSys 2023)": {"HR@10": 0.3152, "NDCG@10": 0.1821},
    "BERT4Rec (RecSys 2023)": {"HR@10": 0.2843, "NDCG@10": 0.1537},
}

#: The SASRec paper's own ML-1M figures (Kang and McAuley, ICDM 2018, table III): the held-out item
#: ranked among 100 randomly sampled unseen items, a model trained with binary cross-entropy and one
#: sampled negative per position. Comparable with ``protocol="sampled", n_negatives=100`` only.
PUBLISHED_SAMPLED = {
    "SASRec paper (ICDM 2018)": {"HR@10": 0.8245, "NDCG@10": 0.5905},
}


def default_output_dir() -> Path:
    """Where ``compare`` writes its table and chart: the repository's ``assets/`` (else ./assets)."""
    root = repository_root()
    return (root if root is not None else Path.cwd()) / "assets"


def evaluate_models(models: Mapping[str, Model], split: LeaveOneOutSplit, which: str = "test",
                    progress: bool = True, **options) -> dict[str, EvaluationResult]:
    """Each model through the one evaluator (:func:`~recnb.evaluation.evaluator.evaluate_split`): same users, rule."""
    return {name: evaluate_split(model, split, which, **options)
            for name, model in tqdm(models.items(), desc="Evaluating models", disable=not progress, leave=False)}


def display_name(name: str) -> str:
    return MODEL_NAMES.get(name, name)


def comparison_table(results: Mapping[str, EvaluationResult], reference: str = "popularity",
                     metrics: Sequence[str] = HEADLINE_METRICS) -> pd.DataFrame:
    """One row per model: the metrics, and HR@10's relative change against ``reference``.

    ``HR@10 vs popularity`` is ``HR@10 / HR@10(popularity) - 1``: 3.0 means four times
    as many users find their next film in the top 10.
    """
    table = pd.DataFrame({display_name(n): {m: r.metrics[m] for m in metrics} for n, r in results.items()}).T
    table.index.name = "model"
    if reference in results:
        base = results[reference].metrics["HR@10"]
        table[f"HR@10 vs {display_name(reference).lower()}"] = table["HR@10"] / base - 1 if base > 0 else np.nan
    return table


def format_table(table: pd.DataFrame) -> str:
    """The table as fixed-width text for a terminal: metrics with 4 decimals, changes as signed percentages."""
    shown = table.copy().astype(object)
    for column in table.columns:
        if column.startswith("HR@10 vs"):
            shown[column] = [f"{v:+.0%}" if np.isfinite(v) else "–" for v in table[column]]
        else:
            shown[column] = [f"{v:.4f}" for v in table[column]]
    return shown.to_string()


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``table`` to ``path`` atomically (:func:`recnb.files.atomic_file`): a failure never leaves half a file."""
    path = Path(path)
    with atomic_file(path) as temporary:
        table.to_csv(temporary, float_format="%.6f")
    return path


def save_figure(figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a matplotlib figure to ``path`` atomically, in the format its suffix names (``.png``, ``.pdf``)."""
    path = Path(path)
    kind = path.suffix[1:] or figure.canvas.get_default_filetype()  # the temporary file is named .tmp
    with atomic_file(path) as temporary:
        figure.savefig(temporary, dpi=dpi, bbox_inches="tight", format=kind)
    return path


# ----------------------------------------------------------------------------- beyond one number
def hit_rate_at_k(results: Mapping[str, EvaluationResult], max_k: int = 50) -> pd.DataFrame:
    """HR@K for K = 1..``max_k``: one column per model (display names), indexed by K."""
    cutoffs = np.arange(1, max_k + 1)
    return pd.DataFrame({display_name(n): [(r.ranks <= k).mean() for k in cutoffs] for n, r in results.items()},
                        index=pd.Index(cutoffs, name="K"))


#: Bins of history length (items before the test target) and their labels.
LENGTH_BINS = (0, 50, 100, 200, 400, np.inf)


def history_length_groups(split: LeaveOneOutSplit, which: str = "test",
                          bins: Sequence[float] = LENGTH_BINS) -> tuple[np.ndarray, list[str]]:
    """A label per user for the length of the history the model is given, and the labels in order."""
    histories, _ = evaluation_inputs(split, which)
    lengths = np.array([len(h) for h in histories])
    labels = [f"{int(lo)}–{int(hi) - 1}" if np.isfinite(hi) else f"{int(lo)}+" for lo, hi in zip(bins[:-1], bins[1:])]
    index = np.digitize(lengths, bins[1:-1], right=False)
    return np.array(labels, dtype=object)[index], labels


def target_popularity_groups(split: LeaveOneOutSplit, n_items: int, which: str = "test",
                             shares: Sequence[float] = (0.01, 0.1, 0.5)) -> tuple[np.ndarray, list[str]]:
    """A label per user for how popular the held-out item is: in the top 1 %, 1–10 %, 10–50 % or the rest
    of items ranked by training interactions."""
    _, targets = evaluation_inputs(split, which)
    counts = item_counts(split.train, n_items).numpy()[1:]
    order = np.argsort(-counts, kind="stable")
    rank = np.empty(n_items, dtype=np.int64)
    rank[order] = np.arange(n_items)
    position = rank[np.asarray(targets) - 1] / n_items           # 0 = most popular item
    edges = [0.0, *shares, 1.0]
    labels = [f"top {edges[1]:.0%}"] + [f"{lo:.0%}–{hi:.0%}" for lo, hi in zip(edges[1:-2], edges[2:-1])] \
        + [f"bottom {1 - edges[-2]:.0%}"]
    index = np.digitize(position, np.asarray(shares), right=False)
    return np.array(labels, dtype=object)[index], labels


def metrics_by(results: Mapping[str, EvaluationResult], groups: np.ndarray, labels: Sequence[str],
               metric: str = "HR@10") -> pd.DataFrame:
    """``metric`` per group of users (rows) and model (columns), plus each group's size."""
    return metrics_by_group({display_name(n): r.ranks for n, r in results.items()}, groups, metric, order=labels)


def top_k_items(model: Model, histories: list[np.ndarray], k: int = 10, batch_size: int = 1024) -> np.ndarray:
    """(U, k) item ids each model would show: highest scores, seen items and padding left out."""
    score = _score_function(model)
    if getattr(model, "training", False):
        model.eval()
    rows = []
    with torch.inference_mode():
        for begin in range(0, len(histories), batch_size):
            full = pad_histories(histories[begin:begin + batch_size])
            scores = score(full).double()
            scores[:, 0] = -np.inf
            scores.scatter_(1, full, -np.inf)  # seen items (and padding again, harmlessly)
            rows.append(scores.topk(k, dim=1).indices)
    return torch.cat(rows).numpy()


def recommendation_profile(models: Mapping[str, Model], split: LeaveOneOutSplit, n_items: int, k: int = 10,
                           which: str = "test", head_share: float = 0.1) -> pd.DataFrame:
    """What each model shows its users, beyond accuracy.

    Columns: ``coverage`` (share of the catalogue that appears in at least one user's top ``k``),
    ``distinct items``, ``mean popularity`` (training interactions of a recommended item, averaged
    over all recommendations) and ``from top 10% items`` (share of recommendations among the
    ``head_share`` most popular items).
    """
    histories, _ = evaluation_inputs(split, which)
    counts = item_counts(split.train, n_items).numpy()   # the popularity every model may know
    head = set(np.argsort(-counts[1:], kind="stable")[: max(1, int(round(head_share * n_items)))] + 1)
    is_head = np.zeros(n_items + 1, dtype=bool)
    is_head[list(head)] = True
    rows = {}
    for name, model in models.items():
        top = top_k_items(model, histories, k)
        distinct = np.unique(top)
        rows[display_name(name)] = {
            "coverage": len(distinct) / n_items,
            "distinct items": len(distinct),
            "mean popularity": float(counts[top].mean()),
            f"from top {head_share:.0%} items": float(is_head[top].mean()),
        }
    table = pd.DataFrame(rows).T
    table["distinct items"] = table["distinct items"].astype(int)
    table.index.name = "model"
    return table


def protocol_comparison(results_full: Mapping[str, EvaluationResult],
                        results_sampled: Mapping[str, EvaluationResult], metric: str = "HR@10") -> pd.DataFrame:
    """``metric`` of each model under full ranking and under sampled negatives, side by side."""
    return pd.DataFrame({
        "full ranking": {display_name(n): r.metrics[metric] for n, r in results_full.items()},
        "sampled (100 negatives)": {display_name(n): r.metrics[metric] for n, r in results_sampled.items()},
    }).rename_axis("model")

