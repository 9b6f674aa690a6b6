"""Measuring models: one evaluator for every model, its metrics, and the analyses built on them.

- ``metrics``: HR@K, NDCG@K and MRR from ranks;
- ``evaluator``: the scorer interface (anything with ``score(histories)``, made a function by
  ``as_scorer``), the one batch loop (``score_batches``), full ranking with seen items masked and ties
  counted against the model, the labelled sampled-negatives protocol, and the one top K (``top_k``:
  higher score first, equal scores by the lower item id);
- ``analysis``: tables from evaluation results (the results table, HR@K curves, ranks by group, tie bounds);
- ``comparison``: every model side by side (display names, groups of users, what models recommend).

Import rule: ``recnb.evaluation`` uses only ``recnb.data`` (and ``recnb.errors``, ``recnb.config``);
a model reaches it through the scorer interface, never by import.
"""

from recnb.evaluation.evaluator import EvaluationResult, as_scorer, evaluate, evaluate_split, score_batches, top_k
from recnb.evaluation.metrics import metrics_from_ranks

__all__ = ["EvaluationResult", "as_scorer", "evaluate", "evaluate_split", "metrics_from_ranks", "score_batches",
           "top_k"]
