"""Fit and evaluate every baseline on ML-1M (leave-one-out test split, full ranking) and print the figures.

Run: ``RECNB_DATA_DIR=path/to/data python benchmarks/bench_baselines.py``
(aim: under 15 s in all on a laptop CPU).
"""

from __future__ import annotations

import resource
import sys
import time

from recnb.data import load_dataset
from recnb.data.split import leave_one_out
from recnb.evaluation.evaluator import evaluate_split
from recnb.models.baselines import BASELINES, make_baseline


def peak_memory_mib() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main() -> None:
    start = time.perf_counter()
    data = load_dataset("ml-1m", download=False, progress=False)
    split = leave_one_out(data.sequences)
    load_seconds = time.perf_counter() - start
    print(f"{data}; {split.n_users:,} test users; loaded and split in {load_seconds:.2f} s")
    print(f"{'model':<12}{'fit s':>8}{'eval s':>8}{'HR@10':>9}{'NDCG@10':>9}{'MRR':>9}  notes")
    for name in BASELINES:
        fit_start = time.perf_counter()
        model = make_baseline(name, data).fit(split.train)
        fit_seconds = time.perf_counter() - fit_start
        result = evaluate_split(model, split, "test")
        notes = ""
        if name == "markov":
            notes = f"{model.n_transitions:,} transitions"
        elif name == "hybrid":
            notes = f"alpha {model.alpha}"
        elif name == "ar2":
            notes = f"{model.n_pair_states:,} pair states; {model.backoff_share:.1%} of histories backed off"
        print(f"{name:<12}{fit_seconds:>8.2f}{result.seconds:>8.2f}{result['HR@10']:>9.4f}"
              f"{result['NDCG@10']:>9.4f}{result['MRR']:>9.4f}  {notes}")
    print(f"total {time.perf_counter() - start:.2f} s; peak memory {peak_memory_mib():.0f} MiB")


if __name__ == "__main__":
    main()
