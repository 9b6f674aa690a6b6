"""Benchmark: seconds to rank every ML-1M user's validation and test film with a SASRec checkpoint (full ranking).

Prints figures; it is not a test. Run with nothing else busy on the machine (freed memory is kept in the
process, as ``python -m recnb evaluate`` keeps it; ``--default-allocator`` measures glibc's default):

    RECNB_DATA_DIR=path/to/data python benchmarks/bench_evaluation.py [--checkpoint PATH] [--repeats 5]

Each repeat evaluates the validation split, then the test split, through the same
``evaluate_split`` that training and ``compare`` use; the best and the median of the
repeats are printed with the metrics, which must not move between batch sizes. The
positions the model reads (each history cut to ``max_len``) and the matrix-product work
they take give the floor: the seconds that work would need at the multiply rate
measured here on a (16,384 x 64) by (64 x 3,417) product.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from recnb import evaluate_split, leave_one_out, load_dataset
from recnb.data.split import evaluation_inputs
from recnb.models.checkpoints import load_checkpoint
from recnb.models.zoo import default_checkpoint
from recnb.teaching.benchmark import choose_allocator, matmul_gflops


def forward_gflop(model, split) -> float:
    """Multiply-adds x 2 of the scoring path over both splits: every block on every position read, except the
    last block, which reads keys and values everywhere but computes the last position only."""
    c = model.config
    D, F = c.d_model, c.ffn_multiplier * c.d_model
    per_position = 2 * (3 * D * D + D * D + 2 * D * F)       # qkv, out, feed-forward
    kv_only = 2 * (2 * D * D)
    flop = 0.0
    for which in ("valid", "test"):
        histories, _ = evaluation_inputs(split, which)
        lengths = torch.tensor([min(len(h), c.max_len) for h in histories], dtype=torch.float64)
        positions = float(lengths.sum())
        attention = float((2 * 2 * D * lengths**2).sum())   # q.k and weights.v, every query of a row
        flop += (c.n_layers - 1) * (positions * per_position + attention) + positions * kv_only
        flop += len(histories) * (per_position + 2 * 2 * D * c.max_len + 2 * D * (c.n_items + 1))
    return flop / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the committed checkpoint")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256, 1024])
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as it is, to measure what keeping freed memory saves")
    args = parser.parse_args()
    print(choose_allocator(args.default_allocator))
    data = load_dataset("ml-1m", progress=False)
    split = leave_one_out(data.sequences)
    model, _ = load_checkpoint(args.checkpoint or default_checkpoint(), data, split=split)
    rate, work = matmul_gflops(), forward_gflop(model, split)
    print(f"{data.n_users:,} users, {data.n_items:,} items; torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads; matrix products at {rate:.0f} GFLOP/s; the scoring path does {work:.0f} GFLOP for both "
          f"splits, a floor of {work / rate:.2f} s")
    for batch_size in args.batch_sizes:
        times, results = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            results = [evaluate_split(model, split, which, batch_size=batch_size) for which in ("valid", "test")]
            times.append(time.perf_counter() - start)
        valid, test = results
        print(f"batch {batch_size:>5}: valid + test best {min(times):.2f} s, median {statistics.median(times):.2f} s "
              f"({args.repeats} repeats) | valid NDCG@10 {valid['NDCG@10']:.4f} | test HR@10 {test['HR@10']:.4f} "
              f"NDCG@10 {test['NDCG@10']:.4f} MRR {test['MRR']:.4f}")


if __name__ == "__main__":
    main()
