"""Data-parallel training on several processes: ``torchrun``, ``torch.distributed`` and DistributedDataParallel.

``torchrun --nproc_per_node=N -m recnb train ...`` starts N copies of the command. Each finds its place in the
environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``):
:func:`process_group` joins the group (gloo on the CPU, nccl on CUDA, one GPU per process), and
:func:`recnb.models.training.train_sasrec` then trains the same model on every process, each on its share of
every epoch's batches (:func:`rank_steps`), DDP averaging the gradients before every optimizer step. Started
without torchrun, nothing here is used and training is the one-process run it always was.

Only what DDP does not do is here: which batches a process reads, the loss scale that makes one step of N
processes the step of one process on the same batches (:func:`distributed_gradients`), validation over a share
of the users (:func:`evaluate_split_sharded`), and agreeing on when to stop (:func:`agreed`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, redirect_stdout
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from recnb.data.split import LeaveOneOutSplit, evaluation_inputs
from recnb.errors import InvalidArgumentError
from recnb.evaluation.evaluator import EvaluationResult, Model, evaluate
from recnb.evaluation.metrics import metrics_from_ranks
from recnb.models.devices import choose_device

#: The variables torchrun sets in every process it starts (``MASTER_ADDR`` and ``MASTER_PORT`` too).
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
Batch = TypeVar("Batch")  # the rows of one micro-batch: an array or a tensor of indices


@dataclass(frozen=True)
class Worker:
    """One process of a data-parallel run: its rank among ``world_size`` and on its machine (``local_rank``)."""

    rank: int
    world_size: int
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 alone writes checkpoints, histories and printouts."""
        return self.rank == 0


def torchrun_worker(environ: Mapping[str, str] | None = None) -> Worker | None:
    """This process's place in a torchrun launch, read from the environment; None when not launched so."""
    environ = os.environ if environ is None else environ
    if not all(name in environ for name in TORCHRUN_VARIABLES):
        return None
    try:
        rank, world_size, local_rank = (int(environ[name]) for name in TORCHRUN_VARIABLES)
    except ValueError:
        raise InvalidArgumentError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers, as torchrun sets them; "
                                   f"found {[environ[name] for name in TORCHRUN_VARIABLES]}.") from None
    if not 0 <= rank < world_size:
        raise InvalidArgumentError(f"RANK {rank} is not below WORLD_SIZE {world_size}; start the run with torchrun.")
    return Worker(rank, world_size, local_rank)


def current_worker() -> Worker | None:
    """This process's place in the process group it has joined; None without one, or in a group of one process
    (which trains exactly as a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    rank = dist.get_rank()
    return Worker(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))


def worker_device(device: torch.device, worker: Worker) -> torch.device:
    """The device of one process: its own GPU (``cuda:LOCAL_RANK``) on CUDA, else ``device``."""
    if device.type == "mps":
        raise InvalidArgumentError("Data-parallel training needs the CPU (gloo) or CUDA GPUs (nccl); MPS has no "
                                   "process-group backend. Train with --device cpu, or without torchrun.")
    if device.type != "cuda":
        return device
    if worker.local_rank >= torch.cuda.device_count():
        raise InvalidArgumentError(f"Process {worker.local_rank} of this machine has no GPU: it has "
                                   f"{torch.cuda.device_count()}. Start at most that many processes per machine "
                                   "(torchrun --nproc_per_node), or train on the CPU with --device cpu.")
    return torch.device("cuda", worker.local_rank)


def backend_for(device: torch.device) -> str:
    """nccl between GPUs, gloo between CPUs."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextmanager
def process_group(device: str = "auto") -> Iterator[Worker | None]:
    """Under torchrun, join the process group for ``device`` (a ``--device`` name) and leave it at the end,
    whatever happens; yields this process's :class:`Worker`. Without torchrun, yields None and does nothing."""
    worker = torchrun_worker()
    if worker is None:
        yield None
        return
    own = worker_device(choose_device(device), worker)
    if own.type == "cuda":
        torch.cuda.set_device(own)  # nccl uses the current device: one GPU per process
    dist.init_process_group(backend_for(own), init_method="env://")
    try:
        yield worker
        dist.barrier()  # no process leaves while another still talks to it
    finally:
        dist.destroy_process_group()


@contextmanager
def local_main_first(worker: Worker | None) -> Iterator[None]:
    """Run the block on the first process of each machine (``LOCAL_RANK`` 0) before the others run it: the
    first use of a data set writes (or downloads) it, and processes writing one folder at once collide."""
    first = worker is None or worker.local_rank == 0
    if not first:
        dist.barrier()  # waits for the first processes to finish the block (they call it below)
    yield
    if first and worker is not None:
        dist.barrier()


@contextmanager
def silent_unless_main(worker: Worker | None) -> Iterator[None]:
    """Printouts of rank 0 only: the other processes' standard output goes nowhere (errors still show)."""
    if worker is None or worker.main:
        yield
        return
    with open(os.devnull, "w") as nowhere, redirect_stdout(nowhere):
        yield


def rank_steps(batches: Sequence[Batch], accumulation: int, worker: Worker) -> list[list[Batch | None]]:
    """This process's micro-batches of every optimizer step of an epoch.

    Every process draws the same ``batches`` (the same seed); optimizer step ``j`` reads
    ``batches[j * A * W:(j + 1) * A * W]`` (A = ``accumulation``, W processes) and process ``r`` takes every W-th
    of them from the r-th, so together the processes read each batch once, and one step reads what a single
    process with accumulation A * W reads. When an epoch's last step has fewer batches than A * W, some
    processes get fewer: they are *padded* with None, an empty micro-batch (no target, no gradient), so every
    process makes the same number of passes and steps and none waits forever for the others; no batch is
    dropped or read twice.
    """
    per_step = accumulation * worker.world_size
    steps: list[list[Batch | None]] = []
    for first in range(0, len(batches), per_step):
        group = batches[first:first + per_step]
        mine: list[Batch | None] = list(group[worker.rank::worker.world_size])
        steps.append(mine + [None] * (math.ceil(len(group) / worker.world_size) - len(mine)))
    return steps


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of one process in one epoch: its dropout (and sampled negatives) differ from the other
    processes', and a resumed run draws them again the same."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


class LossModule(torch.nn.Module):
    """The model and its loss as one module: what DDP wraps.

    DDP all-reduces the gradients of what its forward computes; the loss uses the output layer
    (``model.logits``) after the Transformer, so both must run inside one forward. ``loss_of(model, inputs,
    targets)`` returns (summed loss, positions), as :func:`recnb.models.training.sequence_loss` does.
    """

    def __init__(self, model: torch.nn.Module, loss_of: Callable[..., tuple[torch.Tensor, int]]):
        super().__init__()
        self.model = model
        self.loss_of = loss_of

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.loss_of(self.model, inputs, targets)[0]


def wrap_model(model: torch.nn.Module, loss_of: Callable[..., tuple[torch.Tensor, int]],
               device: torch.device) -> DistributedDataParallel:
    """``model`` and its loss in DDP; the weights of rank 0 are copied to every process here.

    Checkpoints save ``model`` itself: its keys have no ``module.`` prefix, and a file from a data-parallel
    run loads in one process, and the other way round.
    """
    return DistributedDataParallel(LossModule(model, loss_of), device_ids=[device] if device.type == "cuda" else None)


def empty_micro_batch(inputs: torch.Tensor, targets: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """A one-row micro-batch without a target: the padding of :func:`rank_steps` (its loss and gradient are 0)."""
    return inputs[:1, -1:].to(device), torch.zeros_like(targets[:1, -1:]).to(device)


def _collective_device() -> torch.device:
    """Where tensors for collectives live: the current GPU for nccl, the CPU for gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def global_sum(values: list[float]) -> list[float]:
    """The sums of ``values`` over all processes (float64), the same on every process."""
    total = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(total)
    return total.tolist()


def agreed(decision: bool) -> bool:
    """Rank 0's ``decision``, on every process: a choice taken from a clock (the time budget) must be one
    choice, or one process would stop while the others wait for it."""
    flag = torch.tensor([int(decision)], device=_collective_device())
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def distributed_gradients(wrapped: DistributedDataParallel, micro_batches: list[tuple[torch.Tensor, torch.Tensor]],
                          scaler: torch.amp.GradScaler, amp_dtype: torch.dtype | None = None) -> tuple[float, int]:
    """Backpropagate this process's micro-batches of one optimizer step; DDP sums them with the others'.

    The step must be that of one process on all the step's micro-batches, whose gradient is that of the summed
    loss over the *global* number of target positions G. Processes hold different numbers of positions, so G
    is all-reduced first, and each process's summed loss is scaled by ``world_size / G``: DDP averages the
    gradients over the processes (divides by ``world_size``), which leaves sum / G. Gradients are exchanged
    once, at the last micro-batch (``no_sync`` on the others). Returns this process's summed loss and
    positions, for logging.
    """
    world_size = dist.get_world_size()
    local = sum(int((y != 0).sum()) for _, y in micro_batches)
    counts = torch.tensor([local], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(counts)
    scale = world_size / max(int(counts.item()), 1)
    total = 0.0
    for number, (x, y) in enumerate(micro_batches, 1):
        with nullcontext() if number == len(micro_batches) else wrapped.no_sync():
            with torch.autocast(x.device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                loss_sum = wrapped(x, y)
            scaler.scale(loss_sum * scale).backward()
        total += float(loss_sum.detach())
    return total, local


def evaluate_split_sharded(model: Model, split: LeaveOneOutSplit, which: str = "test", **options) -> EvaluationResult:
    """:func:`recnb.evaluation.evaluator.evaluate_split` with the users shared among the processes.

    Process r ranks users r, r + W, ...; the ranks are summed into one array on every process (each user's
    place is filled by one process, zero elsewhere), so every process gets the figures of one process over
    all users, and takes the same best-epoch and stopping decisions. Outside a process group, it is
    ``evaluate_split``. Full ranking only: the sampled protocol draws negatives by a user's place in the list.
    """
    from recnb.evaluation.evaluator import evaluate_split

    worker = current_worker()
    if worker is None:
        return evaluate_split(model, split, which, **options)
    if options.get("protocol", "full") != "full":
        raise InvalidArgumentError("Sharded evaluation ranks among all items only (protocol 'full'); evaluate the "
                                   "sampled protocol in one process.")
    histories, targets = evaluation_inputs(split, which)
    mine = np.arange(worker.rank, len(targets), worker.world_size)
    part = evaluate(model, [histories[i] for i in mine], np.asarray(targets)[mine], **options)
    every = torch.zeros(len(targets), dtype=torch.int64, device=_collective_device())
    every[torch.as_tensor(mine, device=every.device)] = torch.as_tensor(part.ranks, device=every.device)
    dist.all_reduce(every)
    ranks = every.cpu().numpy()
    # the seconds are this process's share, which the others score at the same time
    return EvaluationResult(metrics_from_ranks(ranks, part.details["ks"]), ranks, part.protocol,
                            part.seconds, part.details)
