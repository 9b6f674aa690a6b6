"""Benchmark: seconds per training epoch of SASRec on ML-1M, fp32 against bf16 autocast, and peak memory.

Prints figures; it is not a test. Each variant runs in its own process
(``recnb.teaching.benchmark``) so that its peak memory is its own. Run with nothing else
busy on the machine:

    RECNB_DATA_DIR=path/to/data python benchmarks/bench_sasrec.py --presets compact seed --steps 12 [--all-windows]

Steps are timed after 2 warm-up steps on length-bucketed batches, as training
uses them, and scaled to one epoch by the number of real positions: the newest
window of every user, or with ``--all-windows`` every training interaction (how
the committed compact model was trained, about 1.5 times the positions). Each process
keeps freed memory for reuse, as ``python -m recnb train`` does (``keep_freed_memory``).
"""

from __future__ import annotations

import argparse

from recnb.teaching.benchmark import compare_precisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["compact", "seed"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--all-windows", action="store_true", help="an epoch of every training interaction")
    args = parser.parse_args()
    table = compare_precisions(args.presets, args.steps, all_windows=args.all_windows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
