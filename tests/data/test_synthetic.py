"""The synthetic data set: ML-1M layout on disk, planted order that popularity cannot see."""

import numpy as np
import pytest

from recnb.data.split import leave_one_out
from recnb.data.synthetic import write_synthetic_movielens
from recnb.evaluation.evaluator import evaluate_split
from recnb.models.baselines import Popularity


def test_written_in_ml1m_layout_and_read_back(synthetic_dir, synthetic):
    assert {p.name for p in synthetic_dir.iterdir()} >= {"movies.dat", "users.dat", "ratings.dat"}
    first = (synthetic_dir / "ratings.dat").read_text().splitlines()[0].split("::")
    assert len(first) == 4 and all(part.isdigit() for part in first)
    assert synthetic.n_users == 400 and synthetic.raw.has_timestamps


def test_time_order_recovers_the_planted_franchise_order(synthetic):
    titles = synthetic.items["title"]
    for seq in synthetic.sequences[:50]:
        parts = [(t.split(":")[0], int(t.split("Part ")[1].split()[0])) for t in titles[seq] if t.startswith("Saga")]
        for saga in {s for s, _ in parts}:
            numbers = [p for s, p in parts if s == saga]
            assert numbers == sorted(numbers)  # parts in order, as planted


class NextPartOracleFree:
    """A counting model written here, independent of recnb.models.baselines: the most frequent successor."""

    def __init__(self, train, n_items):
        self.counts = np.zeros((n_items + 1, n_items + 1))
        for seq in train:
            np.add.at(self.counts, (seq[:-1], seq[1:]), 1)
        self.pop = np.bincount(np.concatenate(train), minlength=n_items + 1)

    def score(self, histories):
        import torch

        last = histories[:, -1].numpy()
        return torch.as_tensor(self.counts[last] + 1e-6 * self.pop / self.pop.max())


def test_order_aware_model_beats_popularity(synthetic):
    split = leave_one_out(synthetic.sequences)
    pop = evaluate_split(Popularity(synthetic.n_items).fit(split.train), split, "test")
    chain = evaluate_split(NextPartOracleFree(split.train, synthetic.n_items), split, "test")
    assert chain["HR@10"] > pop["HR@10"] + 0.05


def test_reproducible_and_never_overwrites(tmp_path):
    a = write_synthetic_movielens(tmp_path / "a", seed=3)
    b = write_synthetic_movielens(tmp_path / "b", seed=3)
    assert (a / "ratings.dat").read_bytes() == (b / "ratings.dat").read_bytes()
    with pytest.raises(FileExistsError):
        write_synthetic_movielens(a)
    assert (a / "ratings.dat").read_bytes() == (b / "ratings.dat").read_bytes()
