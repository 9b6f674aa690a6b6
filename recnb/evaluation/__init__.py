"""Measuring models: one evaluator for every model, its metrics, and the analyses built on them.

- ``metrics``: HR@K, NDCG@K and MRR from ranks;
- ``evaluator``: the scorer interface (anything with ``score(histories)``), full ranking with seen
  items masked and ties counted against the model, and the labelled sampled-negatives protocol;
- ``analysis``: tables from evaluation results (ranks by group, tie bounds, top items);
- ``comparison``: every model side by side (the table of ``python -m recnb compare``).

Import rule: ``recnb.evaluation`` uses only ``recnb.data`` (and ``recnb.errors``, ``recnb.config``);
a model reaches it through the scorer interface, never by import.
"""

from recnb.evaluation.evaluator import EvaluationResult, evaluate, evaluate_split
from recnb.evaluation.metrics import metrics_from_ranks

__all__ = ["EvaluationResult", "evaluate", "evaluate_split", "metrics_from_ranks"]
