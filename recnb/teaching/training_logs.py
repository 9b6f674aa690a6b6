"""Training runs read back from their histories, so runs can be compared after the fact.

``python -m recnb train`` writes each run's history beside its checkpoint as JSON lines
(``run.history.jsonl``, :mod:`recnb.models.history`): the command, the model and training configs, one line
per epoch as it ends, and, when the run finished, its best epoch and test metrics. A run stopped by hand
simply has no end line. :func:`read_training_log` turns one into a :class:`TrainingLog`;
:func:`recipe_table` lines several up by recipe;
:func:`against_seeds` reads each against the spread of runs that differ only in their seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from recnb.errors import InvalidArgumentError
from recnb.models.history import HISTORY_SUFFIX, history_path, read_history


@dataclass
class TrainingLog:
    """One training run as its history tells it."""

    name: str
    command: str | None          # the command line, when the run recorded it (--record-command)
    model_config: dict           # SASRecConfig fields
    train_config: dict           # TrainConfig fields
    history: pd.DataFrame        # one row per epoch: epoch, loss, valid_NDCG@10, seconds (and more when recorded)
    test: dict | None            # HR@10, NDCG@10, MRR; None if the run was stopped before its end
    minutes: float | None
    peak_memory_mib: float | None
    notes: list[str] = field(default_factory=list)  # how and where the run was made, when its history says

    @property
    def best(self) -> pd.Series:
        """The epoch with the highest validation NDCG@10 (the one a checkpoint keeps)."""
        return self.history.loc[self.history["valid_NDCG@10"].idxmax()]


def read_training_log(path: str | os.PathLike, name: str | None = None) -> TrainingLog:
    """A run's history, from its ``NAME.history.jsonl`` file or from the checkpoint it sits beside."""
    history = read_history(path)
    end = history.end or {}
    default_name = history_path(path).name.removesuffix(HISTORY_SUFFIX)
    return TrainingLog(name or default_name, history.run.get("command"), history.run.get("model_config", {}),
                       history.run.get("train_config", {}), history.epochs, end.get("test"), end.get("minutes"),
                       end.get("peak_memory_mib"), list(history.run.get("notes", [])))


def recipe_table(logs: list[TrainingLog]) -> pd.DataFrame:
    """One row per run: its recipe (heads, feed-forward width as a multiple of d_model, dropout and attention
    dropout, loss, label smoothing, weight decay, the epoch weight averaging began (None: none), schedule, every
    window or the newest, length-bucketed or random batches, peak lr, epochs planned, seed) beside what it
    reached: best validation epoch and NDCG@10, test metrics, minutes. Test figures and minutes are missing for
    runs stopped before their end."""
    rows = []
    for log in logs:
        best, test = log.best, log.test or {}
        loss = log.train_config.get("loss", "ce")
        rows.append({
            "run": log.name,
            "heads": log.model_config.get("n_heads"),
            "feed-forward": log.model_config.get("ffn_multiplier"),
            "dropout": log.model_config.get("dropout"),
            "attention dropout": log.model_config.get("attention_dropout", 0.0),   # 0 before the field existed
            "loss": (f"{loss} ({log.train_config.get('negatives')}"
                     f"{' per history' if log.train_config.get('negatives_per') == 'history' else ''})"
                     if loss in ("sampled", "gbce") else loss),
            "label smoothing": log.train_config.get("label_smoothing", 0.0),   # 0 before the field existed
            "weight decay": log.train_config.get("weight_decay", 0.0),
            "averaged from": log.train_config.get("average_from"),   # None: the weights themselves were kept
            "schedule": log.train_config.get("schedule"),
            "all windows": log.train_config.get("all_windows"),
            "batches": {True: "length buckets", False: "random"}.get(log.train_config.get("bucket_by_length")),
            "lr": log.train_config.get("lr"),
            "epochs planned": log.train_config.get("epochs"),
            "seed": log.train_config.get("seed"),
            "epochs run": len(log.history),
            "best epoch": int(best["epoch"]),
            "best valid NDCG@10": float(best["valid_NDCG@10"]),
            "test HR@10": test.get("HR@10"),
            "test NDCG@10": test.get("NDCG@10"),
            "minutes": log.minutes,
        })
    return pd.DataFrame(rows).set_index("run")


def seed_band(logs: list[TrainingLog], metric: str = "valid_NDCG@10") -> pd.DataFrame:
    """Per epoch, the lowest, mean and highest ``metric`` of runs that differ only in their seed: how far chance
    alone moves a recipe, the range a single change has to leave before it tells anything. Indexed by epoch;
    only the epochs every run reached are kept."""
    if not logs:
        raise InvalidArgumentError("seed_band needs at least one run.")
    by_epoch = pd.concat([log.history.set_index("epoch")[metric] for log in logs], axis=1).dropna()
    return pd.DataFrame({"low": by_epoch.min(axis=1), "mean": by_epoch.mean(axis=1), "high": by_epoch.max(axis=1),
                         "runs": len(logs)}).rename_axis("epoch")


def against_seeds(logs: list[TrainingLog], seed_logs: list[TrainingLog],
                  metric: str = "valid_NDCG@10") -> pd.DataFrame:
    """Each run of ``logs`` read against the runs of ``seed_logs``, which differ only in their seed: one row per
    run, with the epoch read, its ``metric``, the seeds' range there and the verdict ("above", "inside" or
    "below"), then the run's test HR@10 and NDCG@10 (missing if stopped).

    A finished run is read at its best epoch against the seeds' best epochs (the epochs their checkpoints keep);
    a run stopped by hand, at its last epoch against the seeds at that same epoch, since its best lies ahead.
    Its verdict is missing where no seed ran that long. ``still rising`` marks a finished run whose best epoch
    was its last: more epochs might have helped it.
    """
    band, seeds_best = seed_band(seed_logs, metric), [float(log.history[metric].max()) for log in seed_logs]
    rows = []
    for log in logs:
        finished = log.test is not None
        at = log.history[metric].idxmax() if finished else log.history.index[-1]
        epoch, value = int(log.history.loc[at, "epoch"]), float(log.history.loc[at, metric])
        if finished:
            low, high = min(seeds_best), max(seeds_best)
        elif epoch in band.index:
            low, high = float(band.loc[epoch, "low"]), float(band.loc[epoch, "high"])
        else:
            low = high = float("nan")
        verdict = None if low != low else "above" if value > high else "below" if value < low else "inside"
        test = log.test or {}
        rows.append({"run": log.name, "read at": "best epoch" if finished else "stopped", "epoch": epoch,
                     metric: value, "seeds low": low, "seeds high": high, "verdict": verdict,
                     "still rising": finished and epoch == int(log.history["epoch"].iloc[-1]),
                     "test HR@10": test.get("HR@10"), "test NDCG@10": test.get("NDCG@10")})
    return pd.DataFrame(rows).set_index("run")


def verdict_lines(table: pd.DataFrame, metric: str = "valid_NDCG@10") -> str:
    """:func:`against_seeds`'s table as a Markdown list, one sentence a run, for a notebook to display."""
    lines = []
    for name, row in table.iterrows():
        value = f"{row[metric]:.4f}"
        if row["read at"] == "stopped":
            where = ("no seed ran so long" if pd.isna(row["verdict"]) else
                     f"{row['verdict']} the seeds' {row['seeds low']:.4f} to {row['seeds high']:.4f} at that epoch")
            lines.append(f"- `{name}`, stopped after epoch {row['epoch']}: {value}, {where}.")
        else:
            lines.append(f"- `{name}`: best {value} at epoch {row['epoch']}, {row['verdict']} the seeds' best "
                         f"({row['seeds low']:.4f} to {row['seeds high']:.4f}); test HR@10 {row['test HR@10']:.4f} / "
                         f"NDCG@10 {row['test NDCG@10']:.4f}" + (", still rising at its last epoch." if
                                                                 row["still rising"] else "."))
    return "\n".join(lines)


def time_to_reach(log: TrainingLog, threshold: float, metric: str = "valid_HR@10") -> float | None:
    """Wall-clock minutes from the start of the run to the end of the first epoch whose ``metric`` reached
    ``threshold`` (validation included), or None if no epoch did or the history has no clock.

    Histories written before ``elapsed_minutes`` existed (the converted printed logs) have only each epoch's
    ``seconds``: their clock is the running sum of those, which leaves out loading the data.
    """
    history = log.history
    if metric not in history or not (history[metric] >= threshold).any():
        return None
    if "elapsed_minutes" in history:
        clock = history["elapsed_minutes"]
    elif "seconds" in history:
        clock = history["seconds"].cumsum() / 60
    else:
        return None
    return float(clock[history[metric] >= threshold].iloc[0])


def quality_over_time(logs: list[TrainingLog], metric: str = "valid_HR@10") -> pd.DataFrame:
    """One row per epoch of every run that recorded ``metric``: its name, the minutes since the run started,
    and ``metric``."""
    frames = [pd.DataFrame(columns=["run", "minutes", metric])]
    for log in logs:
        history = log.history
        if metric not in history:
            continue
        minutes = history["elapsed_minutes"] if "elapsed_minutes" in history else history["seconds"].cumsum() / 60
        frames.append(pd.DataFrame({"run": log.name, "minutes": minutes.to_numpy(), metric: history[metric]}))
    return pd.concat(frames, ignore_index=True)
