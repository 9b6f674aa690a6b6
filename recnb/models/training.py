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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from recnb import __version__
from recnb.config import MAX_SEED, display_path
from recnb.data.sequences import SequenceData
from recnb.data.split import LeaveOneOutSplit, pad_histories
from recnb.errors import CheckpointError, EmptyDatasetError, InvalidArgumentError
from recnb.evaluation.evaluator import evaluate_split
from recnb.models.checkpoints import (
    AVERAGING_STATE,
    TRAINING_STATE,
    describe_resume,
    load_checkpoint,
    resume_point,
    run_fields,
    save_checkpoint,
)
from recnb.models.devices import autocast_dtype, choose_device, make_scaler, peak_memory_mib
from recnb.models.distributed import (
    agreed,
    current_worker,
    distributed_gradients,
    empty_micro_batch,
    evaluate_split_sharded,
    global_sum,
    rank_seed,
    rank_steps,
    worker_device,
    wrap_model,
)
from recnb.models.history import HistoryWriter, history_path
from recnb.models.losses import (  # noqa: F401 (output_loss, output_weights: importable from here, as before)
    LOSSES,
    NEGATIVES_PER,
    SAMPLERS,
    LossSettings,
    loss_settings,
    output_loss,
    output_weights,
    sequence_loss,
)
from recnb.models.sasrec import SASRec, SASRecConfig

#: The history's wall-clock columns: the only ones a repeated run changes.
TIME_COLUMNS = ("seconds", "train_seconds", "elapsed_minutes")
SCHEDULES = ("constant", "cosine")
AMP_DTYPES = ("float16", "bfloat16")

#: What a value must be, by rule name: (test, how to say it). Used for TrainConfig and the command line alike.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "count": (lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and bool(v >= 1),
              "must be a whole number of at least 1"),
    # comparisons with NaN are all False, so "not (x > 0)" also refuses nan; inf is refused by name
    "positive": (lambda v: _is_number(v) and math.isfinite(v) and v > 0, "must be a number above 0"),
    "non_negative": (lambda v: _is_number(v) and math.isfinite(v) and v >= 0, "must be a number of 0 or more"),
    "fraction": (lambda v: _is_number(v) and bool(0 <= v <= 1), "must be a number from 0 to 1"),
    "below_one": (lambda v: _is_number(v) and bool(0 <= v < 1), "must be a number from 0 up to (not including) 1"),
    "optional_positive": (lambda v: v is None or (_is_number(v) and math.isfinite(v) and v > 0),
                          "must be a number above 0 (leave it out for no limit)"),
    "optional_count": (lambda v: v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                               and bool(v >= 1)),
                       "must be a whole number of at least 1 (leave it out for the default)"),
    "seed": (lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and bool(0 <= v <= MAX_SEED),
             f"must be a whole number from 0 to {MAX_SEED:,} (2**32 - 1)"),
    "flag": (lambda v: isinstance(v, bool), "must be True or False"),
    "text": (lambda v: isinstance(v, str) and bool(v), "must be a non-empty string"),
}


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _setting(default, help: str, rule: str, *, choices: tuple[str | None, ...] | None = None,
             flag: str | None = None, cli: bool = True) -> Any:
    """A :class:`TrainConfig` field and what the command line needs to offer it.

    ``help`` is the option's help text, ``rule`` a key of :data:`RULES` (or
    ``choices``), ``flag`` the option's name when it is not the field's
    (``bucket_by_length`` is offered as ``--bucketing`` / ``--no-bucketing``);
    ``cli=False`` keeps a field off the command line.
    """
    return field(default=default, metadata={"help": help, "rule": rule, "choices": choices, "flag": flag, "cli": cli})


@dataclass
class TrainConfig:
    """How to train (saved in every checkpoint, so a run can be repeated).

    ``python -m recnb train`` offers every field as an option, generated from
    these definitions (:func:`recnb.cli.add_train_arguments`): a new field is a
    new option, with its help text and its check, in one place.
    """

    epochs: int = _setting(200, "most epochs to train", "count")
    batch_size: int = _setting(128, "micro-batch size: the users' histories in memory at once", "count")
    accumulation: int = _setting(1, "micro-batches per optimizer step (effective batch = batch size x this)",
                                 "count")
    lr: float = _setting(1e-3, "learning rate (the peak of the cosine schedule)", "positive")
    weight_decay: float = _setting(0.0, "Adam's L2 weight decay", "non_negative")
    clip_norm: float | None = _setting(1.0, "clip the gradient norm to this value", "optional_positive")
    amp: bool = _setting(False, "mixed precision: fp16 + GradScaler on CUDA, bf16 on the CPU, fp16 on MPS", "flag")
    amp_dtype: str | None = _setting(None, "force the autocast type (default: chosen per device)", "choices",
                                     choices=(None, *AMP_DTYPES))
    patience: int = _setting(10, "epochs without a better validation NDCG@10 before stopping", "count")
    seed: int = _setting(0, "the seed of weights, batches and dropout: one seed, one run", "seed")
    device: str = _setting("auto", "auto, cpu, cuda, cuda:1 or mps", "text")
    eval_batch_size: int = _setting(256, "users scored at once in each validation", "count")
    max_minutes: float | None = _setting(None, "wall-clock budget from the call's start: no epoch is begun that "
                                         "would end past it (judged by the last epoch's time)",
                                         "optional_positive")
    schedule: str = _setting("constant", "learning-rate schedule; cosine warms up, then decays to 0 at the last "
                             "epoch", "choices", choices=SCHEDULES)
    warmup_epochs: float = _setting(1.0, "epochs of linear warm-up (cosine schedule only)", "non_negative")
    bucket_by_length: bool = _setting(True, "batch users of similar length together and trim their shared padding: "
                                      "a faster epoch, but each step then sees one kind of history, and on ML-1M "
                                      "it trained worse than random batches (notebook 07, section 13)", "flag",
                                      flag="--bucketing")
    all_windows: bool = _setting(False, "also train on the part of a history older than max-len, in windows of "
                                 "max-len", "flag")
    loss: str = _setting("ce", "ce: full cross-entropy over every item; ce-chunked: the same loss and gradients "
                         "over chunks of items, so a step's memory does not grow with the catalogue (for large "
                         "ones, e.g. ML-20M, ML-32M); sampled: cross-entropy over the target and --negatives items "
                         "(see --sampler); bce: one sampled negative, as the SASRec paper; gbce: gSASRec's generalised "
                         "binary cross-entropy against --negatives uniform draws (see --gbce-t)", "choices",
                         choices=LOSSES)
    negatives: int = _setting(1000, "the negatives of losses sampled and gbce, drawn for each micro-batch (uniform "
                              "and popularity samplers), or for each history (see --negatives-per)", "count")
    negatives_per: str = _setting("batch", "losses sampled and gbce: one draw of --negatives shared by every position "
                                  "of the micro-batch (batch), or one for each history, shared by its positions "
                                  "(history): the same product, but a step pushes down histories x negatives draws",
                                  "choices", choices=NEGATIVES_PER)
    sampler: str = _setting("uniform", "how the sampled loss draws its negatives: uniform over the items; "
                            "popularity, by training frequency ** --popularity-power; in-batch, the micro-batch's "
                            "own targets", "choices", choices=SAMPLERS)
    logq: bool = _setting(True, "subtract the log of each negative's expected number of draws from its logit, so "
                          "the sampled loss estimates full cross-entropy (popularity and in-batch samplers; a "
                          "uniform draw is never corrected)", "flag")
    popularity_power: float = _setting(1.0, "the popularity sampler draws an item with probability ~ its training "
                                       "count ** this (0: uniform over the trained items)", "non_negative")
    label_smoothing: float = _setting(0.0, "loss ce: move this share of the target's probability evenly onto every "
                                      "item, a regulariser against an overconfident softmax", "below_one")
    average_from: int | None = _setting(None, "from this epoch on, validate, keep and save the running average of "
                                        "the weights at the end of each epoch since then, not the weights "
                                        "themselves (stochastic weight averaging, Izmailov et al. 2018); training "
                                        "goes on from the weights, and the history records their own validation "
                                        "too", "optional_count")
    gbce_t: float = _setting(0.75, "loss gbce: calibration t from 0 (plain binary cross-entropy) to 1 (the positive "
                             "term raised to the power of the sampling rate), gSASRec's default 0.75", "fraction")
    loss_chunk: int | None = _setting(None, "items per chunk of ce-chunked (default: as many as fit in "
                                      "256 MiB of logits)", "optional_count")
    progress: bool = _setting(True, "progress bars", "flag", flag="--progress")
    verbose: bool = _setting(True, "print one line per epoch", "flag", cli=False)

    def __post_init__(self) -> None:
        check_train_settings(asdict(self))
        # the loss fields that only go together (a sampler for loss "sampled", label smoothing for "ce", ...)
        LossSettings(self.loss, self.negatives, self.sampler, self.logq, self.popularity_power,
                     self.loss_chunk, label_smoothing=self.label_smoothing, gbce_t=self.gbce_t,
                     negatives_per=self.negatives_per)


def check_train_settings(settings: dict[str, Any], name: Callable[[str], str] = str) -> None:
    """Raise :class:`InvalidArgumentError` for the first setting its rule refuses; ``name`` says how to call a
    field in the message (the command line passes its flag: ``--epochs must be ...``)."""
    known = {f.name: f.metadata for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise InvalidArgumentError(f"Unknown training settings {unknown}; TrainConfig has {sorted(known)}.")
    for key, value in settings.items():
        meta = known[key]
        if meta["rule"] == "choices":
            if value not in meta["choices"]:
                raise InvalidArgumentError(f"{name(key)} must be one of {list(meta['choices'])}, not {value!r}.")
        elif not RULES[meta["rule"]][0](value):
            raise InvalidArgumentError(f"{name(key)} {RULES[meta['rule']][1]}, not {value!r}.")


#: Named training recipes: fields that differ from :class:`TrainConfig`'s defaults.
RECIPES: dict[str, dict[str, Any]] = {
    # TrainConfig as it stands: constant lr 1e-3, up to 200 epochs, stop after 10 without progress, length buckets
    "plain": {},
    # how the committed checkpoint was trained: random batches, a linear warm-up to lr 2e-3 and a cosine decay to
    # zero at the last of 50 epochs, every training interaction a target; notebook 07 shows what each choice bought
    # (50 epochs beat 40 on validation for each of three seeds: checkpoints/README.md)
    "compact": dict(epochs=50, patience=50, lr=2e-3, schedule="cosine", all_windows=True, bucket_by_length=False),
}


def train_recipe(name: str = "compact", **overrides) -> TrainConfig:
    """The :class:`TrainConfig` of a named recipe (:data:`RECIPES`); keyword arguments change single fields.

    ``python -m recnb train --recipe compact`` trains with the same one.
    """
    if name not in RECIPES:
        raise InvalidArgumentError(f"Unknown recipe {name!r}; choose one of {sorted(RECIPES)}.")
    return TrainConfig(**{**RECIPES[name], **overrides})


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


def accumulate_gradients(model: SASRec, micro_batches: list[tuple[torch.Tensor, torch.Tensor]],
                         scaler: torch.amp.GradScaler, amp_dtype: torch.dtype | None = None,
                         loss: str | LossSettings = "ce", negatives: int = 1000) -> tuple[float, int]:
    """Backpropagate a group of micro-batches as if they were one large batch.

    Each micro-batch's *summed* loss is divided by the number of target
    positions in the whole group, so the accumulated gradient equals the
    gradient of the group's mean loss (micro-batches hold different numbers of
    real positions, so dividing each by its own count, or by K, would not).
    Returns the summed loss and the number of positions, for logging. ``loss`` and ``negatives`` are
    :func:`~recnb.models.losses.sequence_loss`'s (a loss name, or a :class:`~recnb.models.losses.LossSettings`).
    """
    group_positions = sum(int((y != 0).sum()) for _, y in micro_batches)
    total = 0.0
    for x, y in micro_batches:
        with torch.autocast(x.device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            loss_sum, _ = sequence_loss(model, x, y, loss, negatives)
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
        raise InvalidArgumentError(f"schedule must be one of {SCHEDULES}, not {schedule!r}.")
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
                 resume: str | os.PathLike | None = None, command: str | None = None,
                 on_epoch: Callable[[dict], bool | None] | None = None) -> TrainResult:
    """Train SASRec on ``split.train``, validate each epoch, keep the best model.

    Parameters
    ----------
    train_config : TrainConfig, optional
        How to train; ``TrainConfig()`` when not given.
    checkpoint : path, optional
        Its history goes beside it as JSON lines, one line per epoch as it
        ends (``NAME.history.jsonl``, :mod:`recnb.models.history`). It is
        rewritten after every epoch with the best epoch so far (by validation
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
    on_epoch : callable, optional
        Called with each epoch's record (the history row: ``"epoch"``, ``"valid_NDCG@10"``, ...) once the best
        model and the checkpoint are up to date; returning True ends training there, as early stopping would
        (a hyper-parameter search prunes a trial this way: :mod:`recnb.models.tuning`).

    In a process group of several processes (``torchrun``, :mod:`recnb.models.distributed`), every
    process calls this: each trains on its share of every step's batches (a step reads ``batch_size x
    accumulation x processes`` histories), DDP averages the gradients, validation is shared among the
    processes, and rank 0 alone prints and writes the checkpoint and its history.
    """
    began = time.perf_counter()
    tc = train_config if train_config is not None else TrainConfig()
    worker = current_worker()  # one process of a data-parallel run, or None: training in this process alone
    device = choose_device(tc.device) if worker is None else worker_device(choose_device(tc.device), worker)
    main = worker is None or worker.main  # rank 0 alone prints and writes
    verbose, progress = tc.verbose and main, tc.progress and main
    evaluate_users = evaluate_split if worker is None else evaluate_split_sharded
    torch.manual_seed(tc.seed)
    model = build_model(data, model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    dtype = autocast_dtype(device, tc.amp_dtype)
    scaler = make_scaler(device, dtype, tc.amp)
    history: list[dict] = []
    start_epoch, best_ndcg, best_epoch, best_valid, best_training = 1, -1.0, 0, {}, {}
    resumed_average = None   # (the averaged weights, how many epochs they average) of a run that was averaging
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
        # a run that was averaging saved the average as its weights, and the weights it trains on beside them
        model.load_state_dict(payload.get("unaveraged_state", saved_model.state_dict()))
        if "unaveraged_state" in payload:
            resumed_average = (saved_model.state_dict(), payload["averaged_epochs"])
        optimizer.load_state_dict(payload["optimizer_state"])
        if payload.get("scaler_state"):
            scaler.load_state_dict(payload["scaler_state"])
        # the epochs after the stored one are trained again: the history goes on from the stored epoch
        history = [dict(row) for row in payload["history"][:stored]]
        start_epoch, best_epoch, best_valid = stored + 1, stored, payload["metrics"]["valid"]
        best_ndcg = best_valid["NDCG@10"]
        best_training = {key: payload[key] for key in TRAINING_STATE + AVERAGING_STATE if key in payload}
        torch.set_rng_state(payload["rng_state"])
        if verbose:
            print(describe_resume(resume, stored, epochs_run, best_ndcg, old_label, tc), flush=True)

    # the running mean of the weights at the end of each epoch from tc.average_from on (None: no averaging)
    averaged = None if tc.average_from is None else AveragedModel(model)
    if averaged is not None and resumed_average is not None:
        averaged.module.load_state_dict(resumed_average[0])
        averaged.n_averaged.fill_(resumed_average[1])

    inputs, targets = training_tensors(split.train, model_config.max_len, tc.all_windows)
    lengths = (inputs != 0).sum(1).numpy()
    world_size = 1 if worker is None else worker.world_size
    steps_per_epoch = math.ceil(math.ceil(len(inputs) / tc.batch_size) / (tc.accumulation * world_size))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(
        step, steps_per_epoch * tc.epochs, int(steps_per_epoch * tc.warmup_epochs), tc.schedule))
    if resume is not None and payload.get("scheduler_state"):
        scheduler.load_state_dict(payload["scheduler_state"])
        for param_group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
            param_group["lr"] = lr
        position = (start_epoch - 1) * steps_per_epoch
        if scheduler.last_epoch != position:  # resumed on another number of processes: other steps per epoch
            scheduler.last_epoch = position   # the schedule goes on from the end of the stored epoch
            for param_group, base_lr in zip(optimizer.param_groups, scheduler.base_lrs):
                param_group["lr"] = base_lr * scheduler.lr_lambdas[0](position)
    criterion = loss_settings(tc, split.train, model_config.n_items)  # the popularity draw counts the train items
    # the model and its loss in DDP (the loss settings as accumulate_gradients passes them, below)
    wrapped = None if worker is None else wrap_model(
        model, lambda module, x, y: sequence_loss(module, x, y, criterion), device)
    bad_epochs = 0   # a resumed run continues from its best epoch: none bad yet
    # the wall clock of a resumed run goes on from the stored epoch's (older histories did not record it)
    elapsed_before = float(history[-1].get("elapsed_minutes", 0.0)) if history else 0.0
    kept = model.state_dict() if resumed_average is None else resumed_average[0]   # the weights the file holds
    best_state = {k: v.detach().clone() for k, v in kept.items()}

    writer = None
    if checkpoint is not None and main:
        writer = HistoryWriter(history_path(checkpoint))
        writer.start({
            "command": command, "checkpoint": display_path(checkpoint), "dataset": data.name, "data": str(data),
            "model_config": model_config.to_dict(), "train_config": asdict(tc), "device": str(device),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": {"recnb": __version__, "torch": torch.__version__},
            "resumed_from": None if resume is None else {"checkpoint": display_path(resume), "epoch": start_epoch - 1},
            **({} if worker is None else {"processes": world_size}),
        }, history)

    def save_run(path: str | os.PathLike, **fields) -> None:
        """The checkpoint of the run so far: the best epoch's weights and state, and the record of every epoch run."""
        save_checkpoint(path, model, data, weights=best_state, split=split, train_config=asdict(tc),
                        command=command, **run_fields(best_epoch, history, best_training), **fields)

    for epoch in range(start_epoch, tc.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        rng = np.random.default_rng([tc.seed, epoch])  # per-epoch stream: a resumed run sees the same batches
        batches = [torch.from_numpy(rows) for rows in epoch_batches(lengths, tc.batch_size, rng, tc.bucket_by_length)]
        if worker is None:  # the micro-batches of each step; the last group of an epoch may be shorter
            steps: Sequence[Sequence[torch.Tensor | None]] = [
                batches[first:first + tc.accumulation] for first in range(0, len(batches), tc.accumulation)]
        else:  # this process's share of each step (None: an empty micro-batch), and its own dropout
            steps = rank_steps(batches, tc.accumulation, worker)
            torch.manual_seed(rank_seed(tc.seed, epoch, worker.rank))
        total_loss, total_positions, skipped = 0.0, 0, 0
        bar = tqdm(steps, desc=f"epoch {epoch}", disable=not progress, leave=False, unit="step")
        for group in bar:
            micro_batches = [trim_padding(inputs[rows], targets[rows], device) if rows is not None
                             else empty_micro_batch(inputs, targets, device) for rows in group]
            if wrapped is None:
                loss_sum, positions = accumulate_gradients(
                    model, micro_batches, scaler, dtype if tc.amp else None, criterion)
            else:  # DDP exchanges the gradients; the loss settings are wrap_model's, above
                loss_sum, positions = distributed_gradients(wrapped, micro_batches, scaler, dtype if tc.amp else None)
            if math.isfinite(loss_sum):  # a NaN/inf batch is skipped by the optimizer step below
                total_loss += loss_sum
                total_positions += positions
            skipped += optimizer_step(model, optimizer, scaler, tc.clip_norm)
            scheduler.step()
            if progress:
                bar.set_postfix(loss=f"{total_loss / max(total_positions, 1):.3f}")
        if worker is not None:  # the epoch's loss over every process's positions
            total_loss, all_positions = global_sum([total_loss, total_positions])
            total_positions = int(all_positions)
        train_seconds = time.perf_counter() - epoch_start
        # from epoch average_from on, the running mean of the weights (None: the weights themselves are kept)
        average = averaged if averaged is not None and epoch >= (tc.average_from or 0) else None
        if average is not None:
            average.update_parameters(model)
        scored = model if average is None else average.module    # the model validated, kept and saved
        valid = evaluate_users(scored, split, "valid", batch_size=tc.eval_batch_size, device=device).metrics
        own = (None if average is None else   # the weights' own, to see what averaging adds
               evaluate_users(model, split, "valid", batch_size=tc.eval_batch_size, device=device).metrics)
        seconds = time.perf_counter() - epoch_start
        mean_loss = total_loss / total_positions if total_positions else float("nan")
        record = {"epoch": epoch, "loss": mean_loss, "valid_HR@10": valid["HR@10"],
                  "valid_NDCG@10": valid["NDCG@10"], "valid_MRR": valid["MRR"],
                  **({} if own is None else {"unaveraged_valid_HR@10": own["HR@10"],
                                             "unaveraged_valid_NDCG@10": own["NDCG@10"]}),
                  "seconds": seconds,
                  "train_seconds": train_seconds, "skipped_steps": skipped, "lr": optimizer.param_groups[0]["lr"],
                  "elapsed_minutes": elapsed_before + (time.perf_counter() - began) / 60}
        history.append(record)
        if writer is not None:
            writer.epoch(record)
        if verbose:
            print(f"Epoch {epoch} | Loss: {record['loss']:.4f} | Valid NDCG@10: {valid['NDCG@10']:.4f} | "
                  f"Time: {seconds:.1f}s", flush=True)
        if valid["NDCG@10"] > best_ndcg:
            best_ndcg, best_epoch, best_valid, bad_epochs = valid["NDCG@10"], epoch, valid, 0
            best_state = {k: v.detach().clone() for k, v in scored.state_dict().items()}
            best_training = copy.deepcopy({  # state_dict() holds the live tensors: keep this epoch's values
                "optimizer_state": optimizer.state_dict(), "scaler_state": scaler.state_dict(),
                "scheduler_state": scheduler.state_dict(), "rng_state": torch.get_rng_state(),
                # averaging: the file's weights are the average; a resumed run trains on from these
                **({} if average is None else {"unaveraged_state": model.state_dict(),
                                                "averaged_epochs": int(average.n_averaged)})})
        else:
            bad_epochs += 1
        if checkpoint is not None and best_epoch and main:
            save_run(checkpoint, metrics={"valid": best_valid})
        if on_epoch is not None and on_epoch(dict(record)):
            break
        if total_positions == 0:  # the same on every process, as are the decisions below (one validation)
            warnings.warn(f"Epoch {epoch}: every step had a non-finite loss and was skipped; stopping. "
                          "Lower the learning rate or train in fp32.")
            break
        if bad_epochs >= tc.patience:
            break
        # a budget is kept, not overrun: stop if one more epoch as long as this one would pass it
        if tc.max_minutes is not None:
            over_budget = time.perf_counter() - began + seconds > 60 * tc.max_minutes
            if over_budget if worker is None else agreed(over_budget):  # clocks differ: rank 0's decides
                break
    model.load_state_dict(best_state)
    model.eval()
    minutes, peak, test = (time.perf_counter() - began) / 60, peak_memory_mib(device), None
    if checkpoint is not None:
        # the final file: the best epoch as after every epoch, with its test metrics and the run's cost
        test = evaluate_users(model, split, "test", batch_size=tc.eval_batch_size, device=device).metrics
        if main:
            save_run(checkpoint, metrics={"valid": best_valid, "test": test}, train_minutes=minutes,
                     peak_memory_mib=peak)
        if writer is not None:
            writer.end({"best_epoch": best_epoch, "epochs_run": int(history[-1]["epoch"]) if history else 0,
                        "valid": best_valid, "test": test, "minutes": minutes, "peak_memory_mib": peak})
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
