"""Training SASRec: full-softmax cross-entropy, mixed precision, gradient accumulation, early stopping.

One pass over a user's training sequence predicts every next item at once: the
input is ``seq[:-1]``, the target ``seq[1:]``, and the loss is taken at every
position whose target is a real item (padding is ignored). Only the training
part of each sequence is used (``split.train``), never a validation or test item.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from recnb import __version__
from recnb.config import display_path
from recnb.data.sequences import SequenceData
from recnb.data.split import LeaveOneOutSplit, SplitCheck, check_split, pad_histories, select_users, split_fingerprint
from recnb.errors import CheckpointError, EmptyDatasetError, InvalidArgumentError, MissingDataError, SplitMismatchError
from recnb.evaluation.evaluator import evaluate_split
from recnb.files import atomic_file
from recnb.models.sasrec import SASRec, SASRecConfig

CHECKPOINT_FORMAT = "recnb-sasrec/1"


@dataclass
class TrainConfig:
    """How to train (saved in every checkpoint, so a run can be repeated)."""

    epochs: int = 200
    batch_size: int = 128          # micro-batch: what fits in memory at once
    accumulation: int = 1          # micro-batches per optimizer step (effective batch = batch_size x this)
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0
    amp: bool = False              # autocast: fp16 + GradScaler on CUDA, bf16 on the CPU, fp16 on MPS
    amp_dtype: str | None = None   # force "float16" or "bfloat16"
    patience: int = 10             # epochs without a better validation NDCG@10 before stopping
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 1024
    max_minutes: float | None = None  # stop after the epoch that passes this wall-clock budget
    schedule: str = "constant"     # "constant" or "cosine": warm-up, then cosine decay to 0 at the last epoch
    warmup_epochs: float = 1.0     # linear warm-up of the learning rate (cosine schedule only)
    bucket_by_length: bool = True  # batch users of similar length together and trim the shared padding
    all_windows: bool = False      # also train on the older parts of histories longer than max_len
    loss: str = "ce"               # "ce": full softmax over every item; "bce": the SASRec paper's one sampled negative
    progress: bool = True
    verbose: bool = True           # print one line per epoch


def compact_recipe(**overrides) -> TrainConfig:
    """How the committed ``compact`` checkpoint was trained; keyword arguments change single fields.

    A linear warm-up to lr 2e-3 and a cosine decay to zero at the last of 40
    epochs, and every training interaction a target (``all_windows``).
    Notebook 07 shows what each choice bought on ML-1M.
    """
    recipe = dict(epochs=40, patience=40, lr=2e-3, schedule="cosine", all_windows=True)
    return TrainConfig(**{**recipe, **overrides})


# ----------------------------------------------------------------------------- devices and precision
def choose_device(name: str = "auto") -> torch.device:
    """CUDA if available, else Apple's MPS, else the CPU; or the device named, if this machine has it.

    A name that is no device, or a device this machine or torch build lacks,
    is a ValueError that says what to use instead, before any training starts.
    """
    mps_available = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InvalidArgumentError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:1 or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(f"--device {name}: this torch build or machine has no CUDA GPU; "
                                   "use --device cpu or auto.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InvalidArgumentError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices "
                                   "(numbered from 0).")
    if device.type == "mps" and not mps_available:
        raise InvalidArgumentError(f"--device {name}: Apple's MPS is not available here; use --device cpu or auto.")
    if device.type not in ("cpu", "cuda", "mps"):
        raise InvalidArgumentError(f"--device {name}: recnb trains on cpu, cuda or mps.")
    return device


def autocast_dtype(device: torch.device, requested: str | None = None) -> torch.dtype:
    """fp16 on CUDA and MPS (tensor cores, the GradScaler guards its small range); bf16 on the CPU,
    where fp16 matmuls are slow and bf16's fp32-sized exponent needs no scaler."""
    if requested:
        return getattr(torch, requested)
    return torch.bfloat16 if device.type == "cpu" else torch.float16


def make_scaler(device: torch.device, dtype: torch.dtype, amp: bool) -> torch.amp.GradScaler:
    """A GradScaler that is active only for fp16 autocast (bf16 and fp32 do not underflow like fp16)."""
    enabled = amp and dtype == torch.float16
    try:
        return torch.amp.GradScaler(device.type, enabled=enabled)
    except (RuntimeError, ValueError) as error:  # a backend without scaler support
        warnings.warn(f"No GradScaler for {device.type} ({error}); training fp16 without loss scaling.")
        return torch.amp.GradScaler("cpu", enabled=False)


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory: allocated tensors on CUDA, the process's maximum resident size elsewhere."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource  # POSIX only
    except ImportError:  # Windows: not measured
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


# ----------------------------------------------------------------------------- data and loss
def training_tensors(train: list[np.ndarray], max_len: int,
                     all_windows: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of shape (rows, max_len): each sequence shifted by one, left-padded.

    By default each user gives one row, the most recent ``max_len`` targets; a
    longer history's older part is never a target. With ``all_windows`` such a
    history is cut, from its end, into windows of ``max_len`` targets, each
    reading the items just before it, so every training interaction is a
    target once per epoch (on ML-1M with ``max_len`` 200 the newest windows
    hold only 66% of the targets).
    """
    usable = [s for s in train if len(s) >= 2]
    if not usable:
        raise EmptyDatasetError("No training sequence has two items: there is nothing to predict.")
    pieces = []
    for sequence in usable:
        end = len(sequence)
        while True:
            start = max(end - max_len - 1, 0)
            pieces.append(sequence[start:end])        # max_len inputs and their max_len targets
            end -= max_len
            if not all_windows or end < 2:
                break
    inputs = pad_histories([p[:-1] for p in pieces], max_len)
    targets = pad_histories([p[1:] for p in pieces], max_len)
    return inputs, targets


LOSSES = ("ce", "bce")


def sequence_loss(model: SASRec, inputs: torch.Tensor, targets: torch.Tensor,
                  loss: str = "ce") -> tuple[torch.Tensor, int]:
    """Summed loss at every non-padding position, and the number of positions.

    ``"ce"`` (this series' default): cross-entropy over all items. Logits are
    computed only where the target is a real item: with left padding that is
    about half the positions of ML-1M, and the (positions x items) logits are
    the largest tensor in training.
    ``"bce"`` (the SASRec paper's loss): binary cross-entropy of the target
    against one negative item drawn uniformly from the other items, at each
    position. The paper also excludes the user's other items from the draw;
    this one does not (on ML-1M a user's films are on average about 5% of the
    catalogue), which keeps the draw independent of the batch.
    """
    if loss not in LOSSES:
        raise InvalidArgumentError(f"loss must be one of {LOSSES}, not {loss!r}.")
    hidden = model(inputs)                              # (B, L, D)
    real = targets != 0                                 # (B, L)
    positives = targets[real]                           # (M,) target ids, M real positions
    if loss == "ce":
        logits = model.logits(hidden[real])             # (M, N + 1)
        return F.cross_entropy(logits.float(), positives, reduction="sum"), int(real.sum())
    n_items = model.config.n_items
    offset = torch.randint(1, n_items, positives.shape, device=positives.device)  # never 0: never the target
    negatives = (positives - 1 + offset) % n_items + 1  # (M,) uniform over real items other than the target
    h = hidden[real]                                    # (M, D)
    if model.head is None:                              # tied head: a score is h . item embedding
        weight, bias = model.item_embedding.weight, None
    else:
        weight, bias = model.head.weight, model.head.bias
    positive_logit, negative_logit = ((h * weight[ids]).sum(-1) + (0 if bias is None else bias[ids])
                                      for ids in (positives, negatives))   # (M,) each: only two scores a row
    positive_logit, negative_logit = positive_logit.float(), negative_logit.float()
    bce = F.softplus(-positive_logit) + F.softplus(negative_logit)   # -log s(pos) - log(1 - s(neg))
    return bce.sum(), int(real.sum())


def accumulate_gradients(model: SASRec, micro_batches: list[tuple[torch.Tensor, torch.Tensor]],
                         scaler: torch.amp.GradScaler, amp_dtype: torch.dtype | None = None,
                         loss: str = "ce") -> tuple[float, int]:
    """Backpropagate a group of micro-batches as if they were one large batch.

    Each micro-batch's *summed* loss is divided by the number of target
    positions in the whole group, so the accumulated gradient equals the
    gradient of the group's mean loss (micro-batches hold different numbers of
    real positions, so dividing each by its own count, or by K, would not).
    Returns the summed loss and the number of positions, for logging.
    """
    group_positions = sum(int((y != 0).sum()) for _, y in micro_batches)
    total = 0.0
    for x, y in micro_batches:
        with torch.autocast(x.device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            loss_sum, _ = sequence_loss(model, x, y, loss)
        scaler.scale(loss_sum / group_positions).backward()
        total += float(loss_sum.detach())
    return total, group_positions


def epoch_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                  bucket_by_length: bool = True) -> list[np.ndarray]:
    """The rows of each batch of one epoch, in random order.

    With ``bucket_by_length``, rows are sorted by length (plus a little noise,
    so batches differ between epochs) before being cut into batches, and the
    batches are then shuffled. Each batch can then drop the columns that are
    padding in all its rows: the Transformer's cost falls with the length it
    reads, while the loss, computed at real positions only, is unchanged.
    """
    n = len(lengths)
    if bucket_by_length:
        order = np.argsort(lengths + rng.uniform(0, 0.25 * max(int(lengths.max()), 1), n), kind="stable")
    else:
        order = rng.permutation(n)
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def learning_rate_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise InvalidArgumentError(f"schedule must be 'constant' or 'cosine', not {schedule!r}.")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | os.PathLike, model: SASRec, data: SequenceData,
                    split: LeaveOneOutSplit | None = None, weights: dict[str, torch.Tensor] | None = None,
                    **extra) -> Path:
    """Save the model, its config, the item-id mapping and ``extra`` (metrics, history...) atomically.

    ``weights`` stores those weights instead of the model's current ones (the
    best epoch's, while training goes on). With ``split``, its fingerprint
    (:func:`recnb.data.split.split_fingerprint`) is saved too, so that loading on a
    split whose held-out films moved can be refused.

    What the fields of a training checkpoint mean (:func:`train_sasrec` and
    ``python -m recnb train`` write them through :func:`run_fields`):

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


TRAINING_STATE = ("optimizer_state", "scaler_state", "scheduler_state", "rng_state")


def export_checkpoint(source: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Copy a checkpoint without its training state (optimizer, scaler, schedule, random state).

    The result loads and scores exactly like the source but cannot be resumed;
    it is about a third of the size, which is what the repository ships.
    """
    source, output = Path(source), Path(output)
    if output.resolve() == source.resolve():
        raise InvalidArgumentError("Give export a new output path; it never overwrites its source.")
    payload = read_checkpoint_file(source)
    return _save_atomically({key: value for key, value in payload.items() if key not in TRAINING_STATE}, output)


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


# ----------------------------------------------------------------------------- the loop
@dataclass
class TrainResult:
    model: SASRec               # the best epoch's weights
    history: pd.DataFrame       # every epoch run
    best_epoch: int
    best_valid: dict
    checkpoint: Path | None
    peak_memory_mib: float
    training_state: dict = field(default_factory=dict)  # optimizer, scaler, schedule and RNG at the best epoch

    def run_fields(self) -> dict:
        """What a checkpoint of this run records about its epochs (see :func:`save_checkpoint`)."""
        return run_fields(self.best_epoch, self.history.to_dict("records"), self.training_state)


def build_model(data: SequenceData, config: SASRecConfig) -> SASRec:
    return SASRec(config, data.item_genre, data.item_year_bucket)


def train_sasrec(data: SequenceData, split: LeaveOneOutSplit, model_config: SASRecConfig,
                 train_config: TrainConfig = TrainConfig(), checkpoint: str | os.PathLike | None = None,
                 resume: str | os.PathLike | None = None) -> TrainResult:
    """Train SASRec on ``split.train``, validate each epoch, keep the best model.

    Parameters
    ----------
    checkpoint : path, optional
        Rewritten after every epoch with the best epoch so far (by validation
        NDCG@10): its weights, optimizer, scaler, schedule and random state,
        labelled with that epoch, beside the history of every epoch run (see
        :func:`save_checkpoint`), so an interrupted run can be resumed.
    resume : path, optional
        A checkpoint to continue from. Training goes on from its stored epoch
        + 1 with that epoch's state (on the CPU it repeats an uninterrupted run
        exactly); epochs that the earlier run trained after its best one are
        discarded and trained again, and a line says so.
    """
    tc = train_config
    device = choose_device(tc.device)
    torch.manual_seed(tc.seed)
    model = build_model(data, model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    dtype = autocast_dtype(device, tc.amp_dtype)
    scaler = make_scaler(device, dtype, tc.amp)
    history: list[dict] = []
    start_epoch, best_ndcg, best_epoch, best_valid, best_training = 1, -1.0, 0, {}, {}
    if resume is not None:
        saved_model, payload = load_checkpoint(resume, data, device)
        if "optimizer_state" not in payload:
            raise CheckpointError(f"{display_path(resume)} holds no training state (an exported checkpoint): it scores "
                             "but cannot be resumed. Resume from the checkpoint that `train` wrote.")
        changed = {key: (value, payload["config"].get(key)) for key, value in model_config.to_dict().items()
                   if payload["config"].get(key) != value}
        if changed:
            raise CheckpointError(f"{display_path(resume)} was trained with another model: "
                             + ", ".join(f"{key} {saved!r} there, {now!r} now" for key, (now, saved) in changed.items())
                             + ". Resume with the same preset and options, or train a new checkpoint.")
        stored, epochs_run, old_label = resume_point(payload, resume)
        model.load_state_dict(saved_model.state_dict())
        optimizer.load_state_dict(payload["optimizer_state"])
        if payload.get("scaler_state"):
            scaler.load_state_dict(payload["scaler_state"])
        # the epochs after the stored one are trained again: the history goes on from the stored epoch
        history = [dict(row) for row in payload["history"][:stored]]
        start_epoch, best_epoch, best_valid = stored + 1, stored, payload["metrics"]["valid"]
        best_ndcg = best_valid["NDCG@10"]
        best_training = {key: payload[key] for key in TRAINING_STATE if key in payload}
        torch.set_rng_state(payload["rng_state"])
        if tc.verbose:
            print(describe_resume(resume, stored, epochs_run, best_ndcg, old_label, tc), flush=True)

    inputs, targets = training_tensors(split.train, model_config.max_len, tc.all_windows)
    lengths = (inputs != 0).sum(1).numpy()
    steps_per_epoch = math.ceil(math.ceil(len(inputs) / tc.batch_size) / tc.accumulation)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(
        step, steps_per_epoch * tc.epochs, int(steps_per_epoch * tc.warmup_epochs), tc.schedule))
    if resume is not None and payload.get("scheduler_state"):
        scheduler.load_state_dict(payload["scheduler_state"])
        for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
            group["lr"] = lr
    started, bad_epochs = time.perf_counter(), 0   # a resumed run continues from its best epoch: none bad yet
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for epoch in range(start_epoch, tc.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        rng = np.random.default_rng([tc.seed, epoch])  # per-epoch stream: a resumed run sees the same batches
        batches = [torch.from_numpy(rows) for rows in epoch_batches(lengths, tc.batch_size, rng, tc.bucket_by_length)]
        total_loss, total_positions, skipped = 0.0, 0, 0
        bar = tqdm(range(0, len(batches), tc.accumulation), desc=f"epoch {epoch}", disable=not tc.progress,
                   leave=False, unit="step")
        for first in bar:
            group = batches[first:first + tc.accumulation]  # the last group of an epoch may be shorter
            loss_sum, positions = accumulate_gradients(
                model, [trim_padding(inputs[rows], targets[rows], device) for rows in group],
                scaler, dtype if tc.amp else None, tc.loss)
            if math.isfinite(loss_sum):  # a NaN/inf batch is skipped by the optimizer step below
                total_loss += loss_sum
                total_positions += positions
            skipped += optimizer_step(model, optimizer, scaler, tc.clip_norm)
            scheduler.step()
            if tc.progress:
                bar.set_postfix(loss=f"{total_loss / max(total_positions, 1):.3f}")
        valid = evaluate_split(model, split, "valid", batch_size=tc.eval_batch_size, device=device).metrics
        seconds = time.perf_counter() - epoch_start
        mean_loss = total_loss / total_positions if total_positions else float("nan")
        record = {"epoch": epoch, "loss": mean_loss, "valid_HR@10": valid["HR@10"],
                  "valid_NDCG@10": valid["NDCG@10"], "valid_MRR": valid["MRR"], "seconds": seconds,
                  "skipped_steps": skipped, "lr": optimizer.param_groups[0]["lr"]}
        history.append(record)
        if tc.verbose:
            print(f"Epoch {epoch} | Loss: {record['loss']:.4f} | Valid NDCG@10: {valid['NDCG@10']:.4f} | "
                  f"Time: {seconds:.1f}s", flush=True)
        if valid["NDCG@10"] > best_ndcg:
            best_ndcg, best_epoch, best_valid, bad_epochs = valid["NDCG@10"], epoch, valid, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_training = copy.deepcopy({  # state_dict() holds the live tensors: keep this epoch's values
                "optimizer_state": optimizer.state_dict(), "scaler_state": scaler.state_dict(),
                "scheduler_state": scheduler.state_dict(), "rng_state": torch.get_rng_state()})
        else:
            bad_epochs += 1
        if checkpoint is not None and best_epoch:
            # every epoch: the best epoch's weights and state, and the record of every epoch run so far
            save_checkpoint(checkpoint, model, data, weights=best_state, split=split,
                            metrics={"valid": best_valid}, train_config=asdict(tc),
                            **run_fields(best_epoch, history, best_training))
        if total_positions == 0:
            warnings.warn(f"Epoch {epoch}: every step had a non-finite loss and was skipped; stopping. "
                          "Lower the learning rate or train in fp32.")
            break
        if bad_epochs >= tc.patience:
            break
        if tc.max_minutes is not None and time.perf_counter() - started > 60 * tc.max_minutes:
            break
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, pd.DataFrame(history), best_epoch, best_valid,
                       Path(checkpoint) if checkpoint is not None else None, peak_memory_mib(device), best_training)


def trim_padding(x: torch.Tensor, y: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the leading columns that are padding in every row (positions count from the right)."""
    width = max(int((x != 0).sum(1).max()), 1)
    return x[:, -width:].to(device), y[:, -width:].to(device)


def optimizer_step(model, optimizer, scaler, clip_norm) -> int:
    """Unscale, clip, step and zero the gradients; return 1 if the step was skipped.

    With fp16 the GradScaler skips a step whose gradients hold inf or NaN and
    lowers its scale. Without a scaler, a non-finite gradient is skipped here,
    so one bad batch never writes NaN into the weights.
    """
    scaler.unscale_(optimizer)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm if clip_norm else float("inf"))
    skipped = 0
    if scaler.is_enabled():
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        skipped = int(scaler.get_scale() < scale)
    elif torch.isfinite(norm):
        optimizer.step()
    else:
        skipped = 1
    optimizer.zero_grad(set_to_none=True)
    return skipped
