"""The ``python -m recnb`` command line.

Each sub-command is a function ``run_<name>(args) -> int`` registered with its
arguments in :func:`build_parser`; later chapters add ``train``, ``evaluate``
and ``compare`` the same way. Expected failures (bad input, missing data) print
one clear ``error:`` line and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from . import __version__
from .releases import RELEASES


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments every command that reads a data set shares."""
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default="ml-1m", choices=[*RELEASES, "synthetic"],
                       help="MovieLens release, or the generated 'synthetic' set (default: ml-1m)")
    group.add_argument("--data-dir", default=None,
                       help="cache folder (default: $RECNB_DATA_DIR, else data/ in the repository)")
    group.add_argument("--min-user", type=int, default=5, help="k-core: minimum items per user (default 5)")
    group.add_argument("--min-item", type=int, default=5, help="k-core: minimum users per item (default 5)")
    group.add_argument("--no-download", action="store_true", help="fail instead of downloading")


def run_stats(args: argparse.Namespace) -> int:
    """Print users, items and interactions before and after the k-core filter."""
    from .data import build_sequences, read_dataset

    raw = read_dataset(args.dataset, args.data_dir, download=not args.no_download)
    data = build_sequences(raw, args.min_user, args.min_item, args.dataset)
    lengths = np.array([len(s) for s in data.sequences])
    summary = data.summary()
    if args.json:
        print(json.dumps({
            "dataset": args.dataset, "source": str(raw.source),
            **{f"{row}_{col.split()[0]}": int(summary.loc[row, col]) for col in summary for row in summary.index},
            "kcore_passes": len(data.filter_steps) - 1, "dropped_while_reading": raw.dropped,
            "has_timestamps": raw.has_timestamps,
        }))
        return 0
    print(f"{args.dataset}  (read from {raw.source})")
    print(f"{'':28}{'users':>10}{'items':>10}{'interactions':>15}")
    for column, label in [("before filtering", "before filtering"),
                          ("after filtering", f"after {args.min_user}/{args.min_item}-core filter")]:
        users, items, inter = (int(summary.loc[row, column]) for row in ("users", "items", "interactions"))
        print(f"{label:28}{users:>10,}{items:>10,}{inter:>15,}")
    print(f"k-core passes: {len(data.filter_steps) - 1}; "
          f"items per user after filtering: min {lengths.min()}, median {int(np.median(lengths))}, max {lengths.max()}")
    order = "timestamps" if raw.has_timestamps else "file order (no timestamps in this copy)"
    print(f"time order from: {order}")
    if raw.dropped:
        print(f"rows dropped while reading: {raw.dropped}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recnb", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"recnb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stats = commands.add_parser("stats", help="users, items and interactions before and after filtering")
    add_data_arguments(stats)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(run=run_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .download import ArchiveError, DownloadError
    from .readers import DataFormatError

    try:
        return args.run(args)
    except (DownloadError, ArchiveError, DataFormatError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
