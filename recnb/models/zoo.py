"""Every model of the series, fitted on one split: the baselines (the hybrid's alpha chosen on
validation) and the committed SASRec checkpoint.

>>> sweep = alpha_sweep(data.n_items, split, [0.0, 0.5, 1.0], which="valid")  # choose on validation ...
>>> alpha = choose_alpha(sweep)                                              # ... then test once
>>> models = fit_models(data, split, sasrec=load_checkpoint(default_checkpoint(), data)[0])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recnb.config import repository_root
from recnb.data.split import LeaveOneOutSplit, evaluation_inputs
from recnb.errors import MissingDataError
from recnb.evaluation.analysis import HEADLINE_METRICS
from recnb.evaluation.evaluator import Model, candidate_mask, full_ranks, in_input_order, score_batches
from recnb.evaluation.metrics import metrics_from_ranks
from recnb.models.baselines import BASELINES, MarkovChain, make_baseline

#: The hybrid's weights tried on validation (the same grid as notebook 05).
ALPHA_GRID = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


COMMITTED_CHECKPOINT = Path("checkpoints") / "sasrec_compact_ml1m.pt"


def default_checkpoint() -> Path:
    """The committed SASRec checkpoint of this repository."""
    root = repository_root()
    if root is None:
        raise MissingDataError(
            "recnb is not running from a clone of the repository, so there is no committed checkpoint; "
            "give a checkpoint path, or train one with `python -m recnb train`.")
    return root / COMMITTED_CHECKPOINT


def alpha_sweep(n_items: int, split: LeaveOneOutSplit, alphas: Sequence[float], which: str = "valid",
                metrics: Sequence[str] = HEADLINE_METRICS, batch_size: int = 1024,
                tie_break: bool = True) -> pd.DataFrame:
    """Metrics of ``Hybrid(alpha)`` for every alpha in ``alphas``, from one Markov chain fit on ``split.train``.

    The hybrid's score is ``alpha * markov + (1 - alpha) * popularity`` (see
    :class:`recnb.models.baselines.Hybrid`). Both parts are computed once per batch and
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
        :func:`recnb.data.split.evaluation_inputs`.
    alphas : sequence of float in [0, 1]
        Weights of the Markov chain to try.
    which : ``"valid"`` or ``"test"``
    metrics : names from :func:`recnb.evaluation.metrics.metrics_from_ranks`
        Columns of the result (cut-offs up to 50, and ``"MRR"``).
    tie_break : bool
        ``False`` blends the bare P(next | last) instead of the chain's score, leaving out
        :class:`~recnb.models.baselines.MarkovChain`'s popularity tie-break: what the blend does for a
        chain without one (alpha = 1 is then the bare chain, ties ranked pessimistically).

    Returns
    -------
    DataFrame indexed by ``alpha`` (in the order given), one column per metric.
    """
    alphas = [float(a) for a in alphas]
    if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
        raise ValueError(f"alphas must be a non-empty list of weights in [0, 1]; got {alphas}.")
    markov = MarkovChain(n_items).fit(split.train)

    def chain_scores(padded: torch.Tensor) -> torch.Tensor:
        last = padded[:, -1:]  # (B, 1): the chain reads only the last item
        return markov.score(last) if tie_break else markov.next_item_probabilities(last[:, 0])

    histories, targets = evaluation_inputs(split, which)
    ranks: dict[float, list[tuple[np.ndarray, torch.Tensor]]] = {a: [] for a in alphas}
    for rows, padded, markov_scores in score_batches(chain_scores, histories, batch_size):
        batch_targets = torch.as_tensor(targets[rows])
        allowed = candidate_mask(padded, batch_targets, markov_scores.shape[1])  # seen items: whole history
        for alpha in alphas:  # the same expression as Hybrid._score, so the same floating-point scores
            scores = alpha * markov_scores + (1.0 - alpha) * markov.popularity[None, :]
            ranks[alpha].append((rows, full_ranks(scores, batch_targets, allowed)))
    metrics_by_alpha = [metrics_from_ranks(in_input_order(ranks[a], len(histories)).numpy()) for a in alphas]
    missing = [m for m in metrics if m not in metrics_by_alpha[0]]
    if missing:
        raise ValueError(f"Unknown metrics {missing}; choose from {sorted(metrics_by_alpha[0])}.")
    table = pd.DataFrame([{m: row[m] for m in metrics} for row in metrics_by_alpha],
                         index=pd.Index(alphas, name="alpha"))
    return table


def choose_alpha(sweep: pd.DataFrame, metric: str = "HR@10") -> float:
    """The alpha with the best ``metric`` in a sweep.

    Ties go to the sweep's other columns in turn, then to the alpha that comes first in the sweep.
    """
    order = [metric] + [c for c in sweep.columns if c != metric]
    ranked = sweep.reset_index().sort_values(order, ascending=False, kind="stable")
    return float(ranked["alpha"].iloc[0])


def fit_models(data, split: LeaveOneOutSplit, sasrec: Model | None = None, alpha: float | None = None,
               names: Sequence[str] = tuple(BASELINES)) -> dict[str, Model]:
    """Every baseline fit on ``split.train`` (plus ``sasrec`` if given), keyed by name.

    The hybrid's ``alpha`` is chosen on the validation split from :data:`ALPHA_GRID`
    unless given: never on test.
    """
    models: dict[str, Model] = {}
    for name in names:
        options = {}
        if name == "hybrid":
            options["alpha"] = alpha if alpha is not None else choose_alpha(
                alpha_sweep(data.n_items, split, ALPHA_GRID, which="valid"))
        models[name] = make_baseline(name, data, **options).fit(split.train)
    if sasrec is not None:
        models["sasrec"] = sasrec
    return models
