"""SASRec checkpoint files: writing, reading, checking against the data and the split, exporting, resuming.

A checkpoint is one ``torch.save`` dict (format ``recnb-sasrec/1``): the weights, the model config, the item-id
mapping, the fingerprint of the split trained on, the metrics and, when ``train`` wrote it, the training state
and the history of every epoch (what its epoch fields mean: :func:`save_checkpoint`, ``checkpoints/README.md``).
Files are written atomically (:func:`recnb.files.atomic_file`) and read with ``weights_only=True``: data, never
code. Training itself is :mod:`recnb.models.training`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from recnb import __version__
from recnb.config import display_path
from recnb.data.sequences import SequenceData
from recnb.data.split import LeaveOneOutSplit, SplitCheck, check_split, select_users, split_fingerprint
from recnb.errors import CheckpointError, InvalidArgumentError, MissingDataError, SplitMismatchError
from recnb.files import atomic_file
from recnb.models.sasrec import SASRec, SASRecConfig

if TYPE_CHECKING:  # only for the annotation: training imports this module
    from recnb.models.training import TrainConfig

CHECKPOINT_FORMAT = "recnb-sasrec/1"
#: What a checkpoint needs to be resumed, beyond the weights; ``export`` drops these.
TRAINING_STATE = ("optimizer_state", "scaler_state", "scheduler_state", "rng_state")
#: What a run that averages its weights (``average_from``) adds, its file's weights being the average: the weights
#: it trains on and how many epochs the average holds. ``export`` drops these too.
AVERAGING_STATE = ("unaveraged_state", "averaged_epochs")


def save_checkpoint(path: str | os.PathLike, model: SASRec, data: SequenceData,
                    split: LeaveOneOutSplit | None = None, weights: dict[str, torch.Tensor] | None = None,
                    **extra) -> Path:
    """Save the model, its config, the item-id mapping and ``extra`` (metrics, history...) atomically.

    ``weights`` stores those weights instead of the model's current ones (the
    best epoch's, while training goes on). With ``split``, its fingerprint
    (:func:`recnb.data.split.split_fingerprint`) is saved too, so that loading on a
    split whose held-out films moved can be refused.

    What the fields of a training checkpoint mean (:func:`recnb.models.training.train_sasrec`,
    and so ``python -m recnb train``, writes them through :func:`run_fields`):

    - ``epoch``: the epoch at whose end ``model_state``, ``optimizer_state``,
      ``scaler_state``, ``scheduler_state`` (the schedule's position) and
      ``rng_state`` were taken, all of them together; ``metrics["valid"]`` is
      that epoch's. recnb keeps the best epoch, so ``epoch == best_epoch``.
    - ``epochs_run``: how many epochs the run had trained when the file was
      written; the ones after ``epoch`` did not beat it, and their weights are
      not kept. A resumed run trains them again.
    - ``history``: one row per epoch run, 1 to ``epochs_run``: the whole record,
      for plots and logs, including the epochs after ``epoch``.

    The file is written beside its destination and renamed over it only when
    complete, so a crash never leaves a half-written checkpoint in its place.
    """
    state = model.state_dict() if weights is None else weights
    payload = {
        "format": CHECKPOINT_FORMAT,
        "recnb_version": __version__,
        "config": model.config.to_dict(),
        "model_state": {k: v.detach().cpu() for k, v in state.items()},
        "dataset": {"name": data.name, "n_items": data.n_items, "n_users": data.n_users,
                    "item_ids": torch.as_tensor(data.item_ids)},
        **({"split": split_fingerprint(data, split)} if split is not None else {}),
        **extra,
    }
    return _save_atomically(payload, Path(path))


def run_fields(best_epoch: int, history: list[dict], training_state: dict) -> dict:
    """The fields that say which epoch a training checkpoint holds and what the run did (see
    :func:`save_checkpoint`): the stored epoch is the best one, the history every epoch run."""
    return {"epoch": best_epoch, "best_epoch": best_epoch,
            "epochs_run": int(history[-1]["epoch"]) if history else best_epoch,
            "history": [dict(row) for row in history], **training_state}


def _save_atomically(payload: dict, path: Path) -> Path:
    """torch.save through :func:`recnb.files.atomic_file`: a crash never leaves half a checkpoint."""
    with atomic_file(path) as temporary:
        torch.save(payload, temporary)
    return path


def read_checkpoint_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """The payload of a recnb checkpoint file, or one clear error for a missing, damaged or foreign file.

    ``weights_only=True``: a checkpoint is data, never code to run.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"No checkpoint at {display_path(path)}.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{display_path(path)} is empty: it is not a checkpoint. Train or download it again.")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except (PermissionError, IsADirectoryError):
        raise  # unreadable (permissions, a folder): the CLI reports the path and the reason
    except Exception as error:  # the unpickler fails in many ways (EOFError, IndexError, ...) on a damaged file
        raise CheckpointError(f"{display_path(path)} cannot be read as a PyTorch checkpoint ({type(error).__name__}); "
                         "it may be truncated or another kind of file. Train or download it again.") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{display_path(path)} is not a recnb SASRec checkpoint (format {found!r}); "
                              "give a file written by `python -m recnb train` or `export`.")
    return payload


def load_checkpoint(path: str | os.PathLike, data: SequenceData | None = None,
                    device: str | torch.device = "cpu",
                    split: LeaveOneOutSplit | None = None) -> tuple[SASRec, dict]:
    """Load a checkpoint; with ``data``, check that it was trained on the same items.

    With ``split`` too, refuse (:class:`SplitMismatchError`) when the checkpoint's
    saved split fingerprint says its held-out films or training sequences differ:
    its figures on that split would not be comparable, or would be leaked.
    The model returned holds the weights of the payload's ``epoch`` (the best
    one); ``payload["history"]`` may go on beyond it (see :func:`save_checkpoint`).
    """
    path = Path(path)
    payload = read_checkpoint_file(path, device)
    if data is not None:
        saved = payload["dataset"]
        same = saved["n_items"] == data.n_items and np.array_equal(saved["item_ids"].numpy(), data.item_ids)
        if not same:
            raise CheckpointError(
                f"{display_path(path)} was trained on {saved['name']!r} with {saved['n_items']:,} items, "
                f"but the data given "
                f"is {data.name!r} with {data.n_items:,} items (or other item ids). Load the data set and "
                "filter settings it was trained with, or train a new model."
            )
    if split is not None and data is not None and "split" in payload:
        check = check_split(payload["split"], data, split)
        if not check.same:
            raise SplitMismatchError(
                f"{display_path(path)} cannot be evaluated on this split: {check.describe()}. Train a model on this "
                f"data instead: python -m recnb train --dataset {data.name} --checkpoint checkpoints/my_sasrec.pt")
    config = SASRecConfig(**payload["config"])
    state = payload["model_state"]
    model = SASRec(config, state.get("item_genre"), state.get("item_year_bucket"))
    model.load_state_dict(state)
    return model.to(device).eval(), payload


class CheckedCheckpoint(NamedTuple):
    """A checkpoint loaded for one split: what :func:`load_checkpoint_for_split` returns."""

    model: SASRec
    payload: dict
    split: LeaveOneOutSplit      # the users the model may be evaluated on: all of them when the split is unchanged
    check: SplitCheck | None     # None when the checkpoint records no split


def load_checkpoint_for_split(path, data, split: LeaveOneOutSplit, device="cpu", verbose: bool = True
                              ) -> CheckedCheckpoint:
    """Load a checkpoint to evaluate on ``split``, keeping only the users whose held-out films it held out too.

    The same release read in another order of ties in time (GroupLens' ``ratings.dat``
    against an order-only copy) moves some users' validation and test films; the
    model trained on some of the new ones. Those users are left out of the returned
    split, and one printed paragraph (``verbose``) says how many were kept and why.
    With the split the model was trained on, nothing is left out and the returned
    split is ``split`` itself. Evaluate every model on the returned split, so a
    comparison stays fair. When no user is left, :class:`SplitMismatchError`.
    """
    model, payload = load_checkpoint(path, data, device)
    say = print if verbose else (lambda *_: None)
    train_command = f"python -m recnb train --dataset {data.name} --checkpoint checkpoints/my_sasrec.pt"
    if "split" not in payload:
        say(f"split check: not possible, {display_path(path)} records no split (an older checkpoint); its figures "
            "are comparable only if it was trained on this data, read in the same order")
        return CheckedCheckpoint(model, payload, split, None)
    check = check_split(payload["split"], data, split)
    if check.changed == 0:
        say(f"split check: {check.describe()}")
        return CheckedCheckpoint(model, payload, split, check)
    if check.changed == check.users:
        raise SplitMismatchError(f"{display_path(path)} cannot be evaluated on this split: {check.describe()}; "
                                 "no user's held-out films are unchanged, so no user can be evaluated fairly. "
                                 f"Train a model on this data instead: {train_command}")
    kept = select_users(split, ~check.changed_users)
    say(f"split check: {check.describe()}.\n"
        f"Evaluating only the {kept.n_users:,} users whose validation and test films are the ones the model held "
        f"out ({check.changed:,} left out); evaluate every model you compare on these users. Their figures are "
        "honest, but over other users than the figures stored at training time, so not comparable with those. "
        f"To evaluate all {split.n_users:,} users, train a model on this data: {train_command}")
    return CheckedCheckpoint(model, payload, kept, check)


def export_checkpoint(source: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Copy a checkpoint without its training state (optimizer, scaler, schedule, random state, and the weights
    a run that averages trains on).

    The result loads and scores exactly like the source but cannot be resumed;
    it is about a third of the size, which is what the repository ships.
    """
    source, output = Path(source), Path(output)
    if output.resolve() == source.resolve():
        raise InvalidArgumentError("Give export a new output path; it never overwrites its source.")
    payload = read_checkpoint_file(source)
    dropped = TRAINING_STATE + AVERAGING_STATE
    return _save_atomically({key: value for key, value in payload.items() if key not in dropped}, output)


def resume_point(payload: dict, path: str | os.PathLike) -> tuple[int, int, bool]:
    """(stored epoch, epochs run, whether the file carries the old label) of a checkpoint to resume.

    Before ``epochs_run`` existed, the file that ``train`` finished with named
    the last epoch run as its ``epoch`` while holding the best epoch's weights
    and training state (recnb has only ever stored the best epoch), so for such
    files ``best_epoch`` is the stored epoch. A label that contradicts the
    history or the metrics is refused.
    """
    missing = [key for key in ("epoch", "best_epoch", "history", "metrics") if key not in payload]
    if missing:
        raise CheckpointError(f"{display_path(path)} has no {', '.join(missing)}: it cannot be resumed. "
                              "Resume from a checkpoint that `train` wrote.")
    old_label = "epochs_run" not in payload
    stored = int(payload["best_epoch"])
    if not old_label and int(payload["epoch"]) != stored:
        raise CheckpointError(f"{display_path(path)} says it holds epoch {payload['epoch']} but its best epoch is "
                              f"{stored}: recnb never writes that. Resume from a checkpoint that `train` wrote.")
    epochs = [int(row["epoch"]) for row in payload["history"]]
    if stored < 1 or epochs[:stored] != list(range(1, stored + 1)):
        raise CheckpointError(f"{display_path(path)}: its history does not run from epoch 1 to its stored epoch "
                              f"{stored}, so it cannot be resumed. Resume from a checkpoint that `train` wrote.")
    recorded, valid = payload["history"][stored - 1]["valid_NDCG@10"], payload["metrics"]["valid"]["NDCG@10"]
    if recorded != valid:
        raise CheckpointError(f"{display_path(path)}: its validation NDCG@10 {valid:.4f} is not that of epoch {stored} "
                              f"in its history ({recorded:.4f}), so its label does not match its weights. "
                              "Resume from a checkpoint that `train` wrote.")
    epochs_run = max(int(payload["epoch"]) if old_label else int(payload["epochs_run"]), stored)
    return stored, epochs_run, old_label


def describe_resume(path: str | os.PathLike, stored: int, epochs_run: int, best_ndcg: float, old_label: bool,
                    train_config: TrainConfig) -> str:
    """The line a resumed run prints: which epoch it continues from, and what happens to the epochs after it."""
    text = f"Resuming {display_path(path)} from epoch {stored}, the best so far (validation NDCG@10 {best_ndcg:.4f})"
    if old_label and epochs_run > stored:
        text += (f" (labelled epoch {epochs_run} by an older recnb, which stored the best epoch's state "
                 "under that label)")
    epochs = train_config.epochs
    if epochs_run > stored:
        discarded = (f"epoch {epochs_run} is" if epochs_run == stored + 1 else f"epochs {stored + 1}-{epochs_run} are")
        text += f"; the run had gone on to epoch {epochs_run} without improving: {discarded} discarded"
        if stored < epochs < epochs_run:
            text += f"; the run is set to {epochs} epochs, so {stored + 1}-{epochs} are trained again"
        elif epochs >= epochs_run:
            text += " and trained again"
    else:
        text += "; it is the last epoch run"
    if stored >= epochs:
        return text + f". The run is set to {epochs} epochs: none is left to train."
    if stored + train_config.patience < epochs:
        text += (f". Patience {train_config.patience}: it stops after epoch {stored + train_config.patience} "
                 f"unless an epoch beats {best_ndcg:.4f}")
    return text + "."
