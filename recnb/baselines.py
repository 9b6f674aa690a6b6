"""Baseline scorers. Each is fit on training sequences and scores every item for a batch of histories."""

from __future__ import annotations

import numpy as np
import torch


def item_counts(sequences: list[np.ndarray], n_items: int) -> torch.Tensor:
    """How often each item id 0..N occurs in ``sequences`` (padding, id 0, is never counted)."""
    flat = np.concatenate(sequences) if len(sequences) else np.zeros(0, dtype=np.int64)
    counts = np.bincount(flat, minlength=n_items + 1).astype(np.float32)
    counts[0] = 0.0
    return torch.from_numpy(counts)


class Popularity:
    """Global popularity: every user gets the items ranked by their count in the training data.

    Fit it on ``split.train`` (never on validation or test items).
    """

    def __init__(self, n_items: int):
        self.n_items = n_items
        self.counts: torch.Tensor | None = None

    def fit(self, sequences: list[np.ndarray]) -> "Popularity":
        self.counts = item_counts(sequences, self.n_items)
        return self

    def score(self, histories: torch.Tensor) -> torch.Tensor:
        if self.counts is None:
            raise RuntimeError("Call fit(training_sequences) before score().")
        return self.counts.to(histories.device).expand(len(histories), -1)
