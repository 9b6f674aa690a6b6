"""Data-parallel training: two CPU processes (gloo) step, evaluate, write and resume as one process does."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from recnb.data.split import leave_one_out
from recnb.errors import InvalidArgumentError
from recnb.evaluation.evaluator import evaluate_split
from recnb.models.checkpoints import load_checkpoint
from recnb.models.devices import make_scaler
from recnb.models.distributed import (
    Worker,
    current_worker,
    distributed_gradients,
    empty_micro_batch,
    evaluate_split_sharded,
    rank_steps,
    torchrun_worker,
    wrap_model,
)
from recnb.models.history import read_history
from recnb.models.sasrec import SASRec
from recnb.models.training import (
    TIME_COLUMNS,
    TrainConfig,
    accumulate_gradients,
    optimizer_step,
    sequence_loss,
    train_sasrec,
    training_tensors,
    trim_padding,
)
from tests.helpers import REPO
from tests.models.test_train import quick_config, tiny_data

CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- two processes
def _join_group(rank: int, worker, rendezvous: str, *args) -> None:
    """What each spawned process runs: join a gloo group of two through a file, run ``worker``, leave."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    try:
        worker(rank, *args)
        dist.barrier()  # as recnb.models.distributed.process_group: no process leaves while the other talks to it
    finally:
        dist.destroy_process_group()


def on_two_processes(tmp_path, worker, *args, timeout: float = 180) -> None:
    """Run ``worker(rank, *args)`` in two new processes joined in a process group; a process's error fails the
    test, and a group that hangs (a process waiting for the other forever) is stopped after ``timeout``."""
    context = mp.spawn(_join_group, args=(worker, str(tmp_path / "rendezvous"), *args), nprocs=2, join=False)
    deadline = time.monotonic() + timeout
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the two processes did not finish within {timeout} s: one waits for the other")


@pytest.fixture
def one_thread(monkeypatch):
    """Children inherit the environment: one thread each, as the two share the machine's cores."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def uneven_batches():
    """Tiny data, its training tensors with some targets removed (micro-batches then hold different numbers of
    positions), and five batches of rows: two steps of 2 x 2 micro-batches, the second one short."""
    data = tiny_data()
    split = leave_one_out(data.sequences)
    inputs, targets = training_tensors(split.train, 10)
    targets[:7, :4] = 0
    batches = [torch.arange(first, min(first + 5, len(inputs))) for first in range(0, len(inputs), 5)]
    return data, split, inputs, targets, batches


def fresh_model(data) -> SASRec:
    torch.manual_seed(0)
    return SASRec(quick_config(data, dropout=0.0), data.item_genre, data.item_year_bucket)


def _steps_and_evaluation(rank: int, folder) -> None:
    data, split, inputs, targets, batches = uneven_batches()
    model = fresh_model(data)
    wrapped = wrap_model(model, lambda module, x, y: sequence_loss(module, x, y), CPU)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scaler = make_scaler(CPU, torch.float32, amp=False)
    worker = current_worker()
    for epoch in range(3):  # the first epoch as given, then two shuffled: 6 steps, every second one padded
        order = batches if epoch == 0 else [batches[i] for i in np.random.default_rng(epoch).permutation(5)]
        for step, group in enumerate(rank_steps(order, 2, worker)):
            micro_batches = [trim_padding(inputs[rows], targets[rows], CPU) if rows is not None
                             else empty_micro_batch(inputs, targets, CPU) for rows in group]
            distributed_gradients(wrapped, micro_batches, scaler)
            if epoch == step == 0:
                torch.save([p.grad.clone() for p in model.parameters()], folder / f"grads_{rank}.pt")
            optimizer_step(model, optimizer, scaler, 1.0)
            if epoch == step == 0:
                torch.save(model.state_dict(), folder / f"first_step_{rank}.pt")
    torch.save(model.state_dict(), folder / f"last_step_{rank}.pt")
    result = evaluate_split_sharded(model, split, "valid", batch_size=4)
    torch.save({"ranks": result.ranks, "metrics": result.metrics}, folder / f"valid_{rank}.pt")


def test_two_processes_step_as_one_process_on_the_same_batches_and_evaluate_as_one(tmp_path, one_thread):
    on_two_processes(tmp_path, _steps_and_evaluation, tmp_path)
    data, split, inputs, targets, batches = uneven_batches()
    # one process, accumulating the first step's four micro-batches: the same gradient and the same step
    model = fresh_model(data)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scaler = make_scaler(CPU, torch.float32, amp=False)
    accumulate_gradients(model, [(inputs[rows], targets[rows]) for rows in batches[:4]], scaler)
    for alone, rank0, rank1 in zip(model.parameters(), *(torch.load(tmp_path / f"grads_{r}.pt") for r in (0, 1))):
        assert torch.equal(rank0, rank1)
        assert torch.allclose(alone.grad, rank0, atol=1e-6), (alone.grad - rank0).abs().max()
    optimizer_step(model, optimizer, scaler, 1.0)
    first = torch.load(tmp_path / "first_step_0.pt")
    # Adam's first step is about lr x g / |g|: on gradients near 0 it magnifies their rounding (1e-8) to 1e-6
    assert all(torch.allclose(value, first[key], atol=1e-5) for key, value in model.state_dict().items())
    # after six steps, two of them padded with an empty micro-batch, the two copies are still one model
    last = [torch.load(tmp_path / f"last_step_{r}.pt") for r in (0, 1)]
    assert all(torch.equal(value, last[1][key]) for key, value in last[0].items())
    assert not torch.equal(last[0]["item_embedding.weight"], first["item_embedding.weight"])
    # validation shared among the processes: every user ranked once, the figures of one process, on both
    model.load_state_dict(last[0])
    alone = evaluate_split(model, split, "valid", batch_size=4)
    for rank in (0, 1):
        shared = torch.load(tmp_path / f"valid_{rank}.pt", weights_only=False)
        assert np.array_equal(shared["ranks"], alone.ranks)
        assert shared["metrics"] == alone.metrics


def _train_and_resume(rank: int, folder) -> None:
    data = tiny_data()
    split = leave_one_out(data.sequences)
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-2, patience=10, progress=False, verbose=True)
    three = TrainConfig(**{**config.__dict__, "epochs": 3, "verbose": False})
    trained = train_sasrec(data, split, quick_config(data), config, checkpoint=folder / "ddp.pt")
    resumed = train_sasrec(data, split, quick_config(data), three, checkpoint=folder / "ddp_resumed.pt",
                           resume=folder / "ddp.pt")
    uninterrupted = train_sasrec(data, split, quick_config(data), three)
    from_one = train_sasrec(data, split, quick_config(data), three, checkpoint=folder / "one_resumed.pt",
                            resume=folder / "one.pt")
    torch.save({name: result.history.drop(columns=list(TIME_COLUMNS)).to_dict("list")
                for name, result in [("trained", trained), ("resumed", resumed), ("uninterrupted", uninterrupted),
                                     ("from_one", from_one)]}, folder / f"histories_{rank}.pt")


def test_a_checkpoint_of_two_processes_resumes_in_one_and_in_two(tmp_path, one_thread, capfd):
    data = tiny_data()
    split = leave_one_out(data.sequences)
    quiet = dict(batch_size=4, lr=1e-2, patience=10, progress=False, verbose=False)
    one = train_sasrec(data, split, quick_config(data), TrainConfig(epochs=1, **quiet), checkpoint=tmp_path / "one.pt")
    capfd.readouterr()
    on_two_processes(tmp_path, _train_and_resume, tmp_path)
    printed = capfd.readouterr().out
    assert printed.count("Epoch 1 |") == 1 and printed.count("Epoch 2 |") == 1  # rank 0 alone prints
    histories = [torch.load(tmp_path / f"histories_{r}.pt", weights_only=False) for r in (0, 1)]
    assert histories[0] == histories[1]  # the same losses, validations and decisions on both processes
    runs = histories[0]
    # rank 0 wrote the checkpoint: the model's own keys (no "module." prefix), loaded by one process
    model, payload = load_checkpoint(tmp_path / "ddp.pt", data)
    assert set(payload["model_state"]) == set(one.model.state_dict())
    assert payload["history"][-1]["loss"] == runs["trained"]["loss"][-1]
    assert read_history(tmp_path / "ddp.pt").run["processes"] == 2
    # resumed by two processes: what an uninterrupted run of two gives
    for column, values in runs["uninterrupted"].items():
        assert runs["resumed"][column] == pytest.approx(values, rel=1e-5), column
    # resumed by one process, from where the two stopped
    alone = train_sasrec(data, split, quick_config(data), TrainConfig(epochs=3, **quiet), resume=tmp_path / "ddp.pt")
    assert alone.history["epoch"].tolist() == [1, 2, 3]
    kept = payload["epoch"]  # the stored (best) epoch: those after it are trained again
    assert alone.history["loss"].tolist()[:kept] == runs["trained"]["loss"][:kept]
    assert all(torch.isfinite(p).all() for p in alone.model.parameters())
    # and the other way round: one process's checkpoint resumed by two
    assert runs["from_one"]["epoch"] == [1, 2, 3]
    assert runs["from_one"]["loss"][0] == one.history["loss"].iloc[0]
    assert load_checkpoint(tmp_path / "one_resumed.pt", data)[1]["epochs_run"] == 3


def test_torchrun_trains_with_two_processes_from_the_command_line(tmp_path, synthetic_dir, synthetic):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "recnb",
         "train", "--dataset", "synthetic", "--data-dir", str(synthetic_dir.parent), "--preset", "quick",
         "--epochs", "2", "--batch-size", "64", "--average-from", "2", "--no-progress",
         "--checkpoint", str(tmp_path / "run.pt")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("Epoch 1 |") == 1 and run.stdout.count("Test: Hit Rate") == 1, run.stdout
    _, payload = load_checkpoint(tmp_path / "run.pt", synthetic, split=leave_one_out(synthetic.sequences))
    assert payload["epochs_run"] == 2 and "test" in payload["metrics"]
    history = read_history(tmp_path / "run.pt")
    assert history.run["processes"] == 2 and history.epochs["epoch"].tolist() == [1, 2]
    # weight averaging from epoch 2: the processes' one average is validated, beside the weights' own figure
    assert history.epochs["unaveraged_valid_NDCG@10"].isna().tolist() == [True, False]


# ----------------------------------------------------------------------------- one process
@pytest.mark.parametrize("n_batches, accumulation, world_size", [(5, 2, 2), (7, 1, 3), (4, 2, 2), (1, 1, 2)])
def test_every_batch_is_read_once_in_the_same_number_of_steps_on_every_process(n_batches, accumulation, world_size):
    batches = [np.array([i]) for i in range(n_batches)]
    shares = [rank_steps(batches, accumulation, Worker(rank, world_size)) for rank in range(world_size)]
    assert len({len(steps) for steps in shares}) == 1  # no process waits for a step the others never make
    read = []
    for step in range(len(shares[0])):
        assert len({len(steps[step]) for steps in shares}) == 1  # the same passes in each step
        group = [rows for steps in shares for rows in steps[step] if rows is not None]
        assert len(group) <= accumulation * world_size
        read += [int(rows[0]) for rows in group]
    assert sorted(read) == list(range(n_batches))


def test_an_empty_micro_batch_has_no_target_and_no_gradient():
    data, _, inputs, targets, _ = uneven_batches()
    model = fresh_model(data)
    x, y = empty_micro_batch(inputs, targets, CPU)
    loss, positions = sequence_loss(model, x, y)
    loss.backward()
    assert positions == 0 and float(loss.detach()) == 0.0
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_torchrun_is_found_in_the_environment():
    assert torchrun_worker({}) is None and current_worker() is None
    worker = torchrun_worker({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "node0"})
    assert worker == Worker(3, 4, 1) and not worker.main
    with pytest.raises(InvalidArgumentError, match="RANK 4 is not below WORLD_SIZE 4"):
        torchrun_worker({"RANK": "4", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})


def test_outside_a_process_group_sharded_evaluation_is_the_evaluation():
    data, split, *_ = uneven_batches()
    model = fresh_model(data)
    shared, alone = evaluate_split_sharded(model, split, "valid"), evaluate_split(model, split, "valid")
    assert shared.metrics == alone.metrics and np.array_equal(shared.ranks, alone.ranks)

