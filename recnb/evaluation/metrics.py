"""Ranking metrics from the rank of each user's held-out item (1 = ranked first).

With one relevant item per user, the usual metrics have closed forms:

- HR@K (hit rate): 1 if rank <= K else 0;
- NDCG@K: 1 / log2(rank + 1) if rank <= K else 0 (the ideal DCG is 1);
- MRR: 1 / rank; MRR@K: 1 / rank if rank <= K else 0.

Each is averaged over users.
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_KS = (1, 5, 10, 20, 50)


def _as_ranks(ranks) -> torch.Tensor:
    ranks = torch.as_tensor(ranks, dtype=torch.float64)
    if ranks.numel() and bool((ranks < 1).any()):
        raise ValueError("Ranks start at 1 (the held-out item ranked first); got a rank below 1.")
    return ranks


def hit_rate(ranks, k: int) -> float:
    """Share of users whose held-out item is in the top ``k``."""
    ranks = _as_ranks(ranks)
    return float((ranks <= k).double().mean()) if ranks.numel() else float("nan")


def ndcg(ranks, k: int) -> float:
    """Normalized discounted cumulative gain at ``k`` with one relevant item per user."""
    ranks = _as_ranks(ranks)
    gains = torch.where(ranks <= k, 1.0 / torch.log2(ranks + 1.0), torch.zeros_like(ranks))
    return float(gains.mean()) if ranks.numel() else float("nan")


def mrr(ranks, k: int | None = None) -> float:
    """Mean reciprocal rank; with ``k``, reciprocal ranks beyond ``k`` count as 0."""
    ranks = _as_ranks(ranks)
    reciprocal = 1.0 / ranks
    if k is not None:
        reciprocal = torch.where(ranks <= k, reciprocal, torch.zeros_like(ranks))
    return float(reciprocal.mean()) if ranks.numel() else float("nan")


def metrics_from_ranks(ranks, ks=DEFAULT_KS) -> dict[str, float]:
    """All metrics as one dict: ``HR@K``, ``NDCG@K``, ``MRR@K`` for each K, then ``MRR``."""
    ranks = _as_ranks(np.asarray(ranks))
    out: dict[str, float] = {}
    for k in ks:
        out[f"HR@{k}"] = hit_rate(ranks, k)
        out[f"NDCG@{k}"] = ndcg(ranks, k)
        out[f"MRR@{k}"] = mrr(ranks, k)
    out["MRR"] = mrr(ranks)
    return out
