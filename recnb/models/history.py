"""A training run's history as JSON lines beside its checkpoint: ``run.pt`` -> ``run.history.jsonl``.

One JSON object a line, each with a ``record`` field saying what it is:

- ``run`` (first line): the command, the data set, the model and training configs, when it started, and for a
  resumed run the checkpoint and epoch it continued from;
- ``epoch`` (one per epoch, appended as soon as the epoch ends): the loss, the validation metrics, the seconds,
  the learning rate and the skipped optimizer steps;
- ``end`` (last line, only when training finished): the best epoch, its validation and test metrics, the
  minutes and the peak memory.

The file is read by :func:`read_history`, so nothing ever parses printed text; a run stopped by hand has no
``end`` line. Appending a line per epoch keeps every finished epoch on disk even if the process is killed;
a line cut short by that is skipped on reading, with a warning.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recnb.config import display_path
from recnb.errors import DataFormatError, MissingDataError
from recnb.files import atomic_file

HISTORY_SUFFIX = ".history.jsonl"


def history_path(checkpoint: str | os.PathLike) -> Path:
    """Where the history of the run that writes ``checkpoint`` lives: beside it, ``NAME.history.jsonl``."""
    checkpoint = Path(checkpoint)
    if checkpoint.name.endswith(HISTORY_SUFFIX):
        return checkpoint
    return checkpoint.with_name(checkpoint.stem + HISTORY_SUFFIX)


def _line(record: str, fields: dict[str, Any]) -> str:
    # NaN and inf are not JSON: a non-finite loss is written as null
    clean = {key: None if isinstance(value, float) and not math.isfinite(value) else value
             for key, value in fields.items()}
    return json.dumps({"record": record, **clean}, allow_nan=False) + "\n"


class HistoryWriter:
    """Writes one run's history: :meth:`start` with the run and the epochs kept, :meth:`epoch`, :meth:`end`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def start(self, run: dict[str, Any], epochs: Iterable[dict[str, Any]] = ()) -> None:
        """A new file (atomically, replacing any old one): the ``run`` line and the ``epochs`` kept from a run
        this one resumes."""
        with atomic_file(self.path) as temporary:
            temporary.write_text(_line("run", run) + "".join(_line("epoch", row) for row in epochs))

    def epoch(self, row: dict[str, Any]) -> None:
        self._append(_line("epoch", row))

    def end(self, summary: dict[str, Any]) -> None:
        self._append(_line("end", summary))

    def _append(self, line: str) -> None:
        with self.path.open("a") as handle:
            handle.write(line)
            handle.flush()


@dataclass
class RunHistory:
    """What a history file holds: the ``run`` record, one row per epoch, and the ``end`` record (None when the
    run was stopped before its end)."""

    path: Path
    run: dict[str, Any]
    epochs: pd.DataFrame
    end: dict[str, Any] | None


def read_history(path: str | os.PathLike) -> RunHistory:
    """Read a history file, or the one beside a checkpoint (``run.pt`` reads ``run.history.jsonl``)."""
    path = history_path(path)
    if not path.is_file():
        raise MissingDataError(f"No training history at {display_path(path)}: `python -m recnb train` writes "
                               f"one beside each checkpoint (NAME{HISTORY_SUFFIX}).")
    lines = path.read_text().splitlines()
    records = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            if number == len(lines):  # the process was killed while writing it
                warnings.warn(f"{display_path(path)}: line {number} is cut short and was skipped.", stacklevel=2)
                continue
            raise DataFormatError(f"{display_path(path)}, line {number}, is not JSON: it is not a training "
                                  "history written by recnb.") from None
        if not isinstance(record, dict) or "record" not in record:
            raise DataFormatError(f"{display_path(path)}, line {number}, has no 'record' field: it is not a "
                                  "training history written by recnb.")
        records.append(record)
    if not records or records[0]["record"] != "run":
        raise DataFormatError(f"{display_path(path)} does not start with a 'run' line: it is not a training "
                              "history written by recnb.")
    epochs = [{k: v for k, v in r.items() if k != "record"} for r in records if r["record"] == "epoch"]
    ends = [r for r in records if r["record"] == "end"]
    run = {k: v for k, v in records[0].items() if k != "record"}
    end = {k: v for k, v in ends[-1].items() if k != "record"} if ends else None
    frame = pd.DataFrame(epochs, columns=None if epochs else ["epoch", "loss", "valid_NDCG@10", "seconds"])
    if "loss" in frame:
        frame["loss"] = frame["loss"].astype(float)  # null (a non-finite loss) reads back as NaN
    return RunHistory(path, run, frame, end)
