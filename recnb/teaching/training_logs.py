"""Reading what ``python -m recnb train`` printed, so runs can be compared after the fact.

The CLI prints one line per epoch (``Epoch N | Loss: x | Valid NDCG@10: y | Time: zs``)
and, when a run ends normally, its best epoch and its test metrics. A log saved
with ``> run.log`` is therefore a complete, human-readable record of a run; a
run stopped by hand simply has no closing lines. Lines starting with ``#`` are
notes; ``# command: ...`` is read as the command that produced the run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recnb.errors import DataFormatError

EPOCH_LINE = re.compile(r"^Epoch (\d+) \| Loss: ([\d.naninf+-]+) \| Valid NDCG@10: ([\d.]+) \| Time: ([\d.]+)s")
TEST_LINE = re.compile(r"^Test: Hit Rate @ 10: ([\d.]+) \| NDCG@10: ([\d.]+) \| MRR: ([\d.]+)")
BEST_LINE = re.compile(r"^Best epoch (\d+) .*?; ([\d.]+) min; peak memory (\d+) MiB")


@dataclass
class TrainingLog:
    """One training run as its log tells it."""

    name: str
    command: str | None         # from a leading "# command: ..." line, if the log has one
    header: str                 # the first line: data set and model config
    history: pd.DataFrame       # epoch, loss, valid_NDCG@10, seconds
    test: dict | None           # HR@10, NDCG@10, MRR; None if the run was stopped before its end
    minutes: float | None
    peak_memory_mib: float | None

    @property
    def best(self) -> pd.Series:
        """The epoch with the highest validation NDCG@10 (the one a checkpoint keeps)."""
        return self.history.loc[self.history["valid_NDCG@10"].idxmax()]


def read_training_log(path: str | os.PathLike, name: str | None = None) -> TrainingLog:
    """Parse a saved ``recnb train`` log; lines that are not the CLI's (warnings, notes) are skipped."""
    path = Path(path)
    lines = path.read_text().splitlines()
    rows, test, minutes, memory = [], None, None, None
    for line in lines:
        if match := EPOCH_LINE.match(line):
            epoch, loss, ndcg, seconds = match.groups()
            rows.append({"epoch": int(epoch), "loss": float(loss), "valid_NDCG@10": float(ndcg),
                         "seconds": float(seconds)})
        elif match := TEST_LINE.match(line):
            test = dict(zip(("HR@10", "NDCG@10", "MRR"), map(float, match.groups())))
        elif match := BEST_LINE.match(line):
            minutes, memory = float(match.group(2)), float(match.group(3))
    if not rows:
        raise DataFormatError(f"{path} has no 'Epoch N | Loss: ... | Valid NDCG@10: ...' line; "
                         "is it the output of `python -m recnb train`?")
    header = next((line for line in lines if line.strip() and not line.startswith("#")), "")
    command = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("# command:")), None)
    return TrainingLog(name or path.stem, command, header, pd.DataFrame(rows), test, minutes, memory)


def _option(command: str | None, flag: str) -> str | None:
    """The value after ``flag`` in a recorded command line, or None."""
    match = re.search(rf"{re.escape(flag)}[ =](\S+)", command or "")
    return match.group(1) if match else None


def recipe_table(logs: list[TrainingLog]) -> pd.DataFrame:
    """One row per run: its recipe (dropout from the header; windows, epochs and lr from the command)
    beside what it reached: best validation epoch and NDCG@10, test metrics, minutes. Test figures are
    missing for runs stopped before their end; recipe fields for logs without a ``# command:`` line."""
    rows = []
    for log in logs:
        dropout = re.search(r"\bdropout=([\d.]+)", log.header)
        best, test = log.best, log.test or {}
        rows.append({
            "run": log.name,
            "dropout": float(dropout.group(1)) if dropout else None,
            "all windows": None if log.command is None else "--all-windows" in log.command.split(),
            "lr": _option(log.command, "--lr"),
            "epochs planned": _option(log.command, "--epochs"),
            "epochs run": len(log.history),
            "best epoch": int(best["epoch"]),
            "best valid NDCG@10": float(best["valid_NDCG@10"]),
            "test HR@10": test.get("HR@10"),
            "test NDCG@10": test.get("NDCG@10"),
            "minutes": log.minutes,
        })
    return pd.DataFrame(rows).set_index("run")
