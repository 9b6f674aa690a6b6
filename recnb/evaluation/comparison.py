"""Every model on the same test: the table of ``python -m recnb compare`` and the analyses of notebook 08.

Numbers only; the pictures are in :mod:`recnb.viz.comparison_plots`. Models reach this module only
through the scorer interface; fitting them is :func:`recnb.models.zoo.fit_models`'s job.

>>> models = fit_models(data, split, sasrec=load_checkpoint(default_checkpoint(), data)[0])  # recnb.models
>>> results = evaluate_models(models, split)          # one evaluator, full ranking, test split
>>> results_table(results, names=MODEL_NAMES, relative_to="popularity")   # recnb.evaluation.analysis
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recnb.config import repository_root
from recnb.data.sequences import item_counts
from recnb.data.split import LeaveOneOutSplit, evaluation_inputs
from recnb.evaluation.analysis import metrics_by_group
from recnb.evaluation.evaluator import EvaluationResult, Model, evaluate_split, top_k
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
        top = top_k(model, histories, k)
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


def identical_columns(table: pd.DataFrame) -> dict[str, str]:
    """Columns equal, value for value, to an earlier column: ``{later: earlier}``.

    Two models with identical results draw one line over the other; the comparison's
    figures draw the later one dashed and say so in its label.
    """
    same: dict[str, str] = {}
    columns = list(table.columns)
    for i, later in enumerate(columns):
        for earlier in columns[:i]:
            if earlier not in same and table[later].equals(table[earlier]):
                same[later] = earlier
                break
    return same


def protocol_comparison(results_full: Mapping[str, EvaluationResult],
                        results_sampled: Mapping[str, EvaluationResult], metric: str = "HR@10") -> pd.DataFrame:
    """``metric`` of each model under full ranking and under sampled negatives, side by side."""
    return pd.DataFrame({
        "full ranking": {display_name(n): r.metrics[metric] for n, r in results_full.items()},
        "sampled (100 negatives)": {display_name(n): r.metrics[metric] for n, r in results_sampled.items()},
    }).rename_axis("model")

