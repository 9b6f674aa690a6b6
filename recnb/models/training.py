"""Training SASRec: full-softmax cross-entropy, mixed precision, gradient accumulation, early stopping.

One pass over a user's training sequence predicts every next item at once: the
input is ``seq[:-1]``, the target ``seq[1:]``, and the loss is taken at every
position whose target is a real item (padding is ignored). Only the training
part of each sequence is used (``split.train``), never a validation or test item.

Devices and precision are :mod:`recnb.models.devices`; checkpoint files (writing, loading, exporting,
resuming) are :mod:`recnb.models.checkpoints`.
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from recnb.config import display_path
from recnb.data.sequences import SequenceData
from recnb.data.split import LeaveOneOutSplit, pad_histories
from recnb.errors import CheckpointError, EmptyDatasetError, InvalidArgumentError
from recnb.evaluation.evaluator import evaluate_split
from recnb.models.checkpoints import (
    TRAINING_STATE,
    describe_resume,
    load_checkpoint,
    resume_point,
    run_fields,
    save_checkpoint,
)
from recnb.models.devices import autocast_dtype, choose_device, make_scaler, peak_memory_mib
from recnb.models.sasrec import SASRec, SASRecConfig


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


def padding_share(lengths: np.ndarray, batch_size: int, bucket_by_length: bool, max_len: int, seed: int = 0) -> float:
    """Share of the cells the Transformer reads that are padding, for one epoch of batches."""
    batches = epoch_batches(lengths, batch_size, np.random.default_rng(seed), bucket_by_length)
    width = [int(lengths[rows].max()) if bucket_by_length else max_len for rows in batches]
    cells = sum(w * len(rows) for w, rows in zip(width, batches))
    return 1.0 - float(lengths.sum()) / cells


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


def learning_rate_curve(epochs: int, steps_per_epoch: int, warmup_epochs: float, base_lr: float,
                        schedule: str) -> np.ndarray:
    """The learning rate at every optimizer step of a run, ``epochs * steps_per_epoch`` values.

    The warm-up is rounded down to whole steps, as :func:`train_sasrec` does, so this
    is the schedule a run with these settings follows.
    """
    total = epochs * steps_per_epoch
    warmup = int(warmup_epochs * steps_per_epoch)
    return np.array([base_lr * learning_rate_factor(step, total, warmup, schedule) for step in range(total)])


# ----------------------------------------------------------------------------- the loop
@dataclass
class TrainResult:
    """What :func:`train_sasrec` returns: the best epoch's model and the record of the run."""

    model: SASRec               # the best epoch's weights
    history: pd.DataFrame       # every epoch run
    best_epoch: int
    best_valid: dict
    checkpoint: Path | None
    peak_memory_mib: float
    training_state: dict = field(default_factory=dict)  # optimizer, scaler, schedule and RNG at the best epoch
    minutes: float = 0.0        # wall-clock minutes of this call, up to the end of training
    test: dict | None = None    # the best epoch's test metrics, measured once at the end when a checkpoint is written


def build_model(data: SequenceData, config: SASRecConfig) -> SASRec:
    return SASRec(config, data.item_genre, data.item_year_bucket)


def train_sasrec(data: SequenceData, split: LeaveOneOutSplit, model_config: SASRecConfig,
                 train_config: TrainConfig | None = None, checkpoint: str | os.PathLike | None = None,
                 resume: str | os.PathLike | None = None, command: str | None = None) -> TrainResult:
    """Train SASRec on ``split.train``, validate each epoch, keep the best model.

    Parameters
    ----------
    train_config : TrainConfig, optional
        How to train; ``TrainConfig()`` when not given.
    checkpoint : path, optional
        Rewritten after every epoch with the best epoch so far (by validation
        NDCG@10): its weights, optimizer, scaler, schedule and random state,
        labelled with that epoch, beside the history of every epoch run (see
        :func:`recnb.models.checkpoints.save_checkpoint`), so an interrupted run
        can be resumed. When training ends it is written a last time with what
        only the end knows: the best epoch's test metrics (measured here, once,
        by the evaluator), the minutes, the peak memory and ``command``.
    resume : path, optional
        A checkpoint to continue from. Training goes on from its stored epoch
        + 1 with that epoch's state (on the CPU it repeats an uninterrupted run
        exactly); epochs that the earlier run trained after its best one are
        discarded and trained again, and a line says so.
    command : str, optional
        The command line that started the run, recorded in the checkpoint so the
        run can be repeated (``python -m recnb train --record-command``).
    """
    began = time.perf_counter()
    tc = train_config if train_config is not None else TrainConfig()
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

    def save_run(**fields) -> None:
        """The checkpoint of the run so far: the best epoch's weights and state, and the record of every epoch run."""
        save_checkpoint(checkpoint, model, data, weights=best_state, split=split, train_config=asdict(tc),
                        command=command, **run_fields(best_epoch, history, best_training), **fields)

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
            save_run(metrics={"valid": best_valid})
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
    minutes, peak, test = (time.perf_counter() - began) / 60, peak_memory_mib(device), None
    if checkpoint is not None:
        # the final file: the best epoch as after every epoch, with its test metrics and the run's cost
        test = evaluate_split(model, split, "test", batch_size=tc.eval_batch_size, device=device).metrics
        save_run(metrics={"valid": best_valid, "test": test}, train_minutes=minutes, peak_memory_mib=peak)
    return TrainResult(model, pd.DataFrame(history), best_epoch, best_valid,
                       Path(checkpoint) if checkpoint is not None else None, peak, best_training, minutes, test)


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
