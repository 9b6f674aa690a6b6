"""Benchmark: load, filter and split ML-1M from the data folder, then one full evaluation.

Prints figures; it is not a test. Run with nothing else busy on the machine:

    RECNB_DATA_DIR=path/to/data python benchmarks/bench_data.py [--repeats 3]

Aims: under 5 s for load + filter + split, under 2 s for one
full-ranking evaluation of a scorer over all 6,040 users.
"""

from __future__ import annotations

import argparse
import resource
import time

from recnb.data import build_sequences, read_dataset
from recnb.data.split import leave_one_out
from recnb.evaluation.evaluator import evaluate_split
from recnb.models.baselines import Popularity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()

    prepare, scoring = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        raw = read_dataset(args.dataset, download=False, progress=False)
        read_done = time.perf_counter()
        data = build_sequences(raw)
        split = leave_one_out(data.sequences)
        prepared = time.perf_counter()
        prepare.append((read_done - start, prepared - read_done, prepared - start))

        model = Popularity(data.n_items).fit(split.train)
        result = evaluate_split(model, split, "test", batch_size=args.batch_size)
        scoring.append(result.seconds)

    print(f"{data}  (from {raw.source})")
    for i, ((read_s, build_s, total_s), eval_s) in enumerate(zip(prepare, scoring), start=1):
        print(f"run {i}: read {read_s:.2f} s + filter/order/split {build_s:.2f} s = {total_s:.2f} s | "
              f"full evaluation of {split.n_users:,} users: {eval_s:.2f} s")
    best_prepare = min(p[2] for p in prepare)
    print(f"best load+filter+split: {best_prepare:.2f} s (aim < 5 s)")
    print(f"best full evaluation (popularity, batch {args.batch_size}): {min(scoring):.2f} s (aim < 2 s); "
          f"{result}")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
