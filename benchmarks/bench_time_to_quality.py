"""Benchmark: validation quality against wall-clock time, and what a fixed budget leaves, for several recipes.

Prints figures and draws a chart; it is not a test. Run with nothing else busy on the machine:

    RECNB_DATA_DIR=path/to/data python benchmarks/bench_time_to_quality.py --minutes 15 \\
        --run compact "--recipe compact" --run sampled "--recipe compact --loss sampled --negatives 1000"

Each ``--run NAME OPTIONS`` trains ``python -m recnb train OPTIONS --max-minutes MINUTES`` from a cold start
(the data read from disk) into ``--out``; the checkpoint a run leaves is the epoch with the best validation
NDCG@10 within the budget, and its test figures are measured once, at the end. ``--history FILE`` adds a run
already trained (its history file) to the table and the chart, without test figures at the budget.
Printed per run: the time at which validation HR@10 first reached ``--target``, the epochs run, and the test
HR@10 / NDCG@10 of the checkpoint kept.
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from recnb.cli import main as recnb_main  # noqa: E402
from recnb.evaluation.comparison import save_figure  # noqa: E402
from recnb.teaching.training_logs import quality_over_time, read_training_log, time_to_reach  # noqa: E402
from recnb.viz.training_plots import plot_quality_over_time  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=2, action="append", default=[], metavar=("NAME", "OPTIONS"))
    parser.add_argument("--history", action="append", default=[], help="a history file of a run already trained")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--target", type=float, default=0.30, help="validation HR@10 to reach")
    parser.add_argument("--out", default="benchmark-runs", help="folder for the checkpoints and histories")
    parser.add_argument("--chart", default=None, help="where to draw the chart (default: OUT/time_to_quality.png)")
    args = parser.parse_args()
    out = Path(args.out)
    logs, walls = [], {}
    for name, options in args.run:
        start = time.perf_counter()
        code = recnb_main(["train", "--dataset", "ml-1m", *shlex.split(options), "--max-minutes", str(args.minutes),
                           "--checkpoint", str(out / f"{name}.pt"), "--overwrite", "--no-progress",
                           "--record-command"])
        if code:
            raise SystemExit(code)
        walls[name] = (time.perf_counter() - start) / 60
        logs.append(read_training_log(out / f"{name}.pt"))
    logs += [read_training_log(path) for path in args.history]
    print(f"\nbudget {args.minutes:g} minutes; target validation HR@10 {args.target:g}")
    for log in logs:
        reached = time_to_reach(log, args.target)
        best, test = log.best, log.test or {}
        kept = (f"test HR@10 {test['HR@10']:.4f}, NDCG@10 {test['NDCG@10']:.4f}" if log.name in walls and test
                else "test at the budget: not trained here")
        wall = f"; whole command {walls[log.name]:.1f} min" if log.name in walls else ""
        hit_rate = f"HR@10 {best['valid_HR@10']:.4f}, " if "valid_HR@10" in best else ""
        print(f"{log.name}: {len(log.history)} epochs; best valid {hit_rate}NDCG@10 {best['valid_NDCG@10']:.4f} at "
              f"epoch {int(best['epoch'])}; reached {args.target:g} "
              + (f"after {reached:.1f} min" if reached is not None else "never" if hit_rate else "not recorded")
              + f"; {kept}{wall}")
    curves = quality_over_time(logs)
    ax = plot_quality_over_time(curves, target=args.target, budget_minutes=args.minutes)
    chart = Path(args.chart) if args.chart else out / "time_to_quality.png"
    save_figure(ax.figure, chart)
    print(f"chart: {chart}")


if __name__ == "__main__":
    main()
