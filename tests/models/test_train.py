"""Training: overfitting a tiny set, gradient accumulation, mixed precision, checkpoints and resume."""

import platform
import re
import sys

import numpy as np
import pytest
import torch

from recnb.data import build_sequences
from recnb.data.readers import MovieLens, interactions_table, items_table
from recnb.data.split import leave_one_out
from recnb.errors import InvalidArgumentError
from recnb.evaluation.evaluator import evaluate_split
from recnb.models.checkpoints import load_checkpoint
from recnb.models.devices import make_scaler
from recnb.models.sasrec import SASRec, config_from_preset
from recnb.models.training import (
    TrainConfig,
    accumulate_gradients,
    learning_rate_curve,
    learning_rate_factor,
    optimizer_step,
    sequence_loss,
    train_recipe,
    train_sasrec,
    training_tensors,
)


def tiny_data(n_users=24, n_items=12, seed=0):
    """Every user walks a fixed cycle of items from a random start: fully predictable."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for user in range(1, n_users + 1):
        start = int(rng.integers(n_items))
        for step in range(8):
            users.append(user)
            items.append(10 + (start + step) % n_items)
    ids = list(range(10, 10 + n_items))
    raw = MovieLens("tiny", interactions_table(users, items, timestamp=list(range(len(users)))),
                    items_table(ids, [f"Film {i} (1990)" for i in ids], [1990] * n_items, [("Drama",)] * n_items),
                    source=None)
    return build_sequences(raw, 1, 1)


def quick_config(data, **overrides):
    return config_from_preset("quick", data.n_items, len(data.genre_names), len(data.year_bucket_labels),
                              **{"max_len": 10, **overrides})


def test_overfits_a_tiny_dataset_to_a_perfect_hit_rate():
    data = tiny_data()
    split = leave_one_out(data.sequences)
    result = train_sasrec(data, split, quick_config(data, dropout=0.0),
                          TrainConfig(epochs=60, batch_size=8, lr=1e-2, patience=60, progress=False, verbose=False))
    assert evaluate_split(result.model, split, "test")["HR@10"] == 1.0
    assert result.history["loss"].iloc[-1] < result.history["loss"].iloc[0] / 3


def test_accumulation_gives_the_large_batch_gradient():
    data = tiny_data()
    inputs, targets = training_tensors(leave_one_out(data.sequences).train, 10)
    targets[:4, :3] = 0  # micro-batches with different numbers of real positions
    model = SASRec(quick_config(data, dropout=0.0), data.item_genre, data.item_year_bucket)
    scaler = make_scaler(torch.device("cpu"), torch.float32, amp=False)

    def grads(micro_batches):
        model.zero_grad()
        accumulate_gradients(model, micro_batches, scaler)
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    large = grads([(inputs[:12], targets[:12])])
    accumulated = grads([(inputs[:4], targets[:4]), (inputs[4:8], targets[4:8]), (inputs[8:12], targets[8:12])])
    uneven = grads([(inputs[:7], targets[:7]), (inputs[7:12], targets[7:12])])  # a short last micro-batch
    for a, b, c in zip(large, accumulated, uneven):
        assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_precision_steps_reduce_the_loss(dtype):
    data = tiny_data()
    inputs, targets = training_tensors(leave_one_out(data.sequences).train, 10)
    torch.manual_seed(0)
    model = SASRec(quick_config(data, dropout=0.0), data.item_genre, data.item_year_bucket)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scaler = make_scaler(torch.device("cpu"), dtype, amp=True)
    assert scaler.is_enabled() == (dtype == torch.float16)  # bf16 needs no loss scaling
    losses = []
    for _ in range(5):
        loss, positions = accumulate_gradients(model, [(inputs, targets)], scaler, dtype)
        optimizer_step(model, optimizer, scaler, 1.0)
        losses.append(loss / positions)
    assert losses[-1] < losses[0]


def test_nan_gradients_are_skipped_not_applied():
    data = tiny_data()
    model = SASRec(quick_config(data), data.item_genre, data.item_year_bucket)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    inputs, targets = training_tensors(leave_one_out(data.sequences).train, 10)
    for scaler in (make_scaler(torch.device("cpu"), torch.float16, amp=True),
                   make_scaler(torch.device("cpu"), torch.float32, amp=False)):
        loss, _ = sequence_loss(model, inputs, targets)
        scaler.scale(loss * float("nan")).backward()  # a NaN loss gives NaN gradients
        assert optimizer_step(model, optimizer, scaler, 1.0) == 1  # skipped
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # and training carries on: a real step afterwards changes the weights
    scaler = make_scaler(torch.device("cpu"), torch.float32, amp=False)
    accumulate_gradients(model, [(inputs, targets)], scaler)
    assert optimizer_step(model, optimizer, scaler, 1.0) == 0
    assert not torch.equal(model.item_embedding.weight, before["item_embedding.weight"])


def test_fp16_nan_loss_mid_training_is_skipped_and_training_continues(monkeypatch):
    data = tiny_data()
    split = leave_one_out(data.sequences)
    import recnb.models.training as train_module

    calls = {"n": 0}
    real_loss = train_module.sequence_loss

    def sometimes_nan(model, x, y, loss="ce", negatives=1000):
        calls["n"] += 1
        loss, n = real_loss(model, x, y, loss, negatives)
        return (loss * float("nan"), n) if calls["n"] == 2 else (loss, n)

    monkeypatch.setattr(train_module, "sequence_loss", sometimes_nan)
    result = train_sasrec(data, split, quick_config(data), TrainConfig(
        epochs=2, batch_size=8, amp=True, amp_dtype="float16", progress=False, verbose=False, patience=5))
    assert result.history["skipped_steps"].sum() >= 1
    assert len(result.history) == 2 and result.history["loss"].notna().all()  # training went on
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_checkpoint_round_trip_resume_and_mismatch(tmp_path):
    data = tiny_data()
    split = leave_one_out(data.sequences)
    config = TrainConfig(epochs=2, batch_size=8, progress=False, verbose=False, patience=10)
    path = tmp_path / "run" / "best.pt"
    first = train_sasrec(data, split, quick_config(data), config, checkpoint=path)
    model, payload = load_checkpoint(path, data)
    assert payload["epoch"] == first.best_epoch
    assert payload["dataset"]["item_ids"].tolist() == data.item_ids.tolist()
    histories = torch.tensor([[0, 1, 2, 3]])
    with torch.no_grad():
        assert torch.allclose(model.score(histories), first.model.score(histories)) or first.best_epoch != 2
    resumed = train_sasrec(data, split, quick_config(data), TrainConfig(**{**config.__dict__, "epochs": 4}),
                           checkpoint=path, resume=path)
    assert resumed.history["epoch"].tolist()[: payload["epoch"]] == list(range(1, payload["epoch"] + 1))
    assert resumed.history["epoch"].iloc[-1] == 4
    assert not list(tmp_path.glob("run/.*.tmp"))  # atomic save leaves no temporary file

    other = tiny_data(n_items=9)
    with pytest.raises(ValueError, match="trained on 'tiny' with 12 items"):
        load_checkpoint(path, other)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_the_final_checkpoint_holds_the_test_metrics_and_the_command(tmp_path):
    data = tiny_data()
    split = leave_one_out(data.sequences)
    config = TrainConfig(epochs=2, batch_size=8, progress=False, verbose=False)
    path = tmp_path / "run.pt"
    result = train_sasrec(data, split, quick_config(data), config, checkpoint=path,
                          command="python -m recnb train --epochs 2")
    _, payload = load_checkpoint(path, data)
    assert result.test == payload["metrics"]["test"] == evaluate_split(result.model, split, "test").metrics
    assert payload["metrics"]["valid"] == result.best_valid
    assert payload["command"] == "python -m recnb train --epochs 2"
    assert payload["train_minutes"] == result.minutes > 0
    assert payload["peak_memory_mib"] == result.peak_memory_mib
    assert payload["epoch"] == result.best_epoch and payload["epochs_run"] == 2
    # without a checkpoint nothing is written, and the test split is not looked at
    assert train_sasrec(data, split, quick_config(data), config).test is None


def test_repeatable_with_one_seed():
    data = tiny_data()
    split = leave_one_out(data.sequences)
    config = TrainConfig(epochs=2, batch_size=8, progress=False, verbose=False, seed=3)
    a = train_sasrec(data, split, quick_config(data), config)
    b = train_sasrec(data, split, quick_config(data), config)
    assert a.history["loss"].tolist() == b.history["loss"].tolist()


def test_sequence_loss_ignores_padding():
    data = tiny_data()
    model = SASRec(quick_config(data, dropout=0.0), data.item_genre, data.item_year_bucket).eval()
    x = torch.tensor([[1, 2, 3, 4]])
    y = torch.tensor([[2, 3, 4, 5]])
    loss, n = sequence_loss(model, x, y)
    padded_loss, padded_n = sequence_loss(model, torch.tensor([[0, 0, 1, 2, 3, 4]]),
                                          torch.tensor([[0, 0, 2, 3, 4, 5]]))
    assert n == padded_n == 4 and torch.allclose(loss, padded_loss, atol=1e-5)


def test_length_buckets_cover_every_row_once_and_vary_by_epoch():
    from recnb.models.training import epoch_batches

    lengths = np.random.default_rng(0).integers(1, 200, size=1000)
    a = epoch_batches(lengths, 64, np.random.default_rng([0, 1]))
    b = epoch_batches(lengths, 64, np.random.default_rng([0, 2]))
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    assert [len(x) for x in a].count(64) == 15
    # rows in a batch have similar lengths: the spread is far below that of a random batch
    spread = np.median([np.ptp(lengths[rows]) for rows in a])
    assert spread < 0.5 * np.ptp(lengths)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b))
    plain = epoch_batches(lengths, 64, np.random.default_rng(0), bucket_by_length=False)
    assert sorted(np.concatenate(plain).tolist()) == list(range(1000))


def test_cosine_schedule_warms_up_and_decays_to_zero():
    factors = [learning_rate_factor(step, 100, 10, "cosine") for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(x >= y for x, y in zip(factors[9:], factors[10:]))
    assert factors[-1] < 0.01 and learning_rate_factor(5, 100, 10, "constant") == 1.0
    with pytest.raises(ValueError, match="schedule"):
        learning_rate_factor(0, 10, 1, "linear")


def test_learning_rate_curve_is_the_base_rate_times_the_factor_at_every_step():
    # 4 epochs of 10 steps, a quarter epoch of warm-up: int(2.5) = 2 steps, as train_sasrec rounds it
    cosine = learning_rate_curve(4, 10, 0.25, 2e-3, "cosine")
    assert cosine.shape == (40,)
    assert cosine.tolist() == [2e-3 * learning_rate_factor(step, 40, 2, "cosine") for step in range(40)]
    assert cosine[0] == pytest.approx(1e-3) and cosine[1] == cosine[2] == pytest.approx(2e-3)   # warm-up
    assert (np.diff(cosine[2:]) < 0).all()                                                    # then decays
    assert cosine[-1] == pytest.approx(2e-3 * 0.5 * (1 + np.cos(np.pi * 37 / 38))) and cosine[-1] < 2e-5
    assert learning_rate_curve(4, 10, 0.25, 2e-3, "constant").tolist() == [2e-3] * 40


def test_cosine_run_resumes_on_the_same_schedule(tmp_path):
    data = tiny_data()
    split = leave_one_out(data.sequences)
    config = TrainConfig(epochs=4, batch_size=8, progress=False, verbose=False, schedule="cosine", patience=10)
    full = train_sasrec(data, split, quick_config(data), config)
    path = tmp_path / "ck.pt"
    train_sasrec(data, split, quick_config(data), TrainConfig(**{**config.__dict__, "epochs": 4, "max_minutes": 1e-9}),
                 checkpoint=path)
    resumed = train_sasrec(data, split, quick_config(data), config, checkpoint=path, resume=path)
    assert resumed.history["lr"].tolist() == pytest.approx(full.history["lr"].tolist())
    assert full.history["lr"].iloc[-1] < 1e-9


def test_export_drops_training_state_and_scores_the_same(tmp_path):
    from recnb.cli import main
    from recnb.models.checkpoints import export_checkpoint

    data = tiny_data()
    split = leave_one_out(data.sequences)
    path = tmp_path / "full.pt"
    train_sasrec(data, split, quick_config(data), TrainConfig(epochs=1, batch_size=8, progress=False, verbose=False),
                 checkpoint=path)
    slim = export_checkpoint(path, tmp_path / "slim.pt")
    assert slim.stat().st_size < path.stat().st_size
    full_model, _ = load_checkpoint(path, data)
    slim_model, payload = load_checkpoint(slim, data)
    assert "optimizer_state" not in payload
    histories = torch.tensor([[0, 1, 2, 3]])
    assert torch.equal(full_model.score(histories), slim_model.score(histories))
    with pytest.raises(ValueError, match="never overwrites"):
        export_checkpoint(path, path)
    assert main(["export", "--checkpoint", str(path), "--output", str(slim)]) == 2  # exists: refused


@pytest.mark.parametrize("length,max_len", [(12, 5), (11, 5), (6, 5), (2, 5), (201, 10)])
def test_all_windows_make_every_training_item_a_target_once(length, max_len):
    sequence = np.arange(1, length + 1)
    inputs, targets = training_tensors([sequence], max_len, all_windows=True)
    real = targets[targets != 0]
    assert sorted(real.tolist()) == list(range(2, length + 1))          # every item but the first, once
    # each target's input is the item just before it, in the same row and column
    assert torch.equal(inputs[targets != 0], real - 1)
    newest_inputs, newest_targets = training_tensors([sequence], max_len)
    assert torch.equal(newest_inputs[0], inputs[0]) and torch.equal(newest_targets[0], targets[0])
    assert len(inputs) == -(-(length - 1) // max_len)                    # ceil(targets / max_len) rows


def test_all_windows_on_ml1m_use_the_older_part_of_long_histories(ml1m):
    train = leave_one_out(ml1m.sequences).train
    inputs, targets = training_tensors(train, 200)
    windowed_inputs, windowed_targets = training_tensors(train, 200, all_windows=True)
    all_targets = sum(len(s) - 1 for s in train)
    long_users = sum(len(s) > 201 for s in train)
    assert len(inputs) == len(train) and long_users > 0
    assert len(windowed_inputs) > len(train) + long_users - 1           # every long history adds rows
    assert int((targets != 0).sum()) < all_targets == int((windowed_targets != 0).sum())
    rows_per_user = [-(-(len(s) - 1) // 200) for s in train]
    newest = np.concatenate([[0], np.cumsum(rows_per_user)[:-1]])        # each user's first row is the newest window
    assert torch.equal(windowed_inputs[newest], inputs) and torch.equal(windowed_targets[newest], targets)


def test_bce_loss_is_one_positive_and_one_negative_per_position():
    """The SASRec paper's loss, recomputed from the full logits with the same random negatives."""
    data = tiny_data()
    for tied in (True, False):
        model = SASRec(quick_config(data, dropout=0.0, tied_head=tied), data.item_genre, data.item_year_bucket).eval()
        x = torch.tensor([[0, 0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]])
        y = torch.tensor([[0, 0, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
        torch.manual_seed(5)
        loss, positions = sequence_loss(model, x, y, loss="bce")
        torch.manual_seed(5)
        real = y != 0
        positives = y[real]
        negatives = (positives - 1 + torch.randint(1, data.n_items, positives.shape)) % data.n_items + 1
        logits = model.logits(model(x)[real])
        expected = -(torch.nn.functional.logsigmoid(logits.gather(1, positives[:, None])).sum()
                     + torch.nn.functional.logsigmoid(-logits.gather(1, negatives[:, None])).sum())
        assert positions == 10
        assert torch.allclose(loss, expected, atol=1e-5)
        assert not (negatives == positives).any() and negatives.min() >= 1 and negatives.max() <= data.n_items
    with pytest.raises(ValueError, match="loss must be one of"):
        sequence_loss(model, x, y, loss="hinge")


def test_sampled_loss_is_a_softmax_over_the_target_and_the_shared_draws():
    """The sampled softmax, recomputed from the full logits with the same draw; a draw of the target is left out."""
    data = tiny_data()
    x = torch.tensor([[0, 0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]])
    y = torch.tensor([[0, 0, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    for tied, draws in ((True, 5), (False, 5), (True, 200)):   # 200 draws of 12 items: every target drawn too
        model = SASRec(quick_config(data, dropout=0.0, tied_head=tied), data.item_genre, data.item_year_bucket).eval()
        torch.manual_seed(3)
        loss, positions = sequence_loss(model, x, y, loss="sampled", negatives=draws)
        torch.manual_seed(3)
        drawn = torch.randint(1, data.n_items + 1, (draws,))
        real = y != 0
        logits = model.logits(model(x)[real])                           # (10, N + 1)
        expected = 0.0
        for row, target in zip(logits, y[real]):
            others = row[drawn[drawn != target]]                        # the draws that are not this target
            expected -= torch.log_softmax(torch.cat([row[target].view(1), others]), 0)[0]
        assert positions == 10 and torch.isfinite(loss)
        assert torch.allclose(loss, expected, atol=1e-4)
    # with every item drawn many times, the sampled loss is full cross-entropy plus a known constant
    assert (drawn == 1).any() and set(drawn.tolist()) == set(range(1, data.n_items + 1))


def test_sampled_training_learns_the_tiny_cycle():
    data = tiny_data()
    split = leave_one_out(data.sequences)
    result = train_sasrec(data, split, quick_config(data, dropout=0.0),
                          TrainConfig(epochs=40, batch_size=8, lr=1e-2, patience=40, loss="sampled", negatives=4,
                                      progress=False, verbose=False))
    assert result.history["loss"].iloc[-1] < result.history["loss"].iloc[0] / 2
    assert evaluate_split(result.model, split, "test")["HR@10"] >= 0.9


def test_bce_training_learns_the_tiny_cycle():
    data = tiny_data()
    split = leave_one_out(data.sequences)
    result = train_sasrec(data, split, quick_config(data, dropout=0.0),
                          TrainConfig(epochs=40, batch_size=8, lr=1e-2, patience=40, loss="bce",
                                      progress=False, verbose=False))
    assert result.history["loss"].iloc[-1] < result.history["loss"].iloc[0] / 2
    assert evaluate_split(result.model, split, "test")["HR@10"] >= 0.9


def test_checkpoints_are_ordinary_readable_files(tmp_path):
    import os
    import stat

    data = tiny_data()
    model = SASRec(quick_config(data), data.item_genre, data.item_year_bucket)
    from recnb.models.checkpoints import save_checkpoint

    umask = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "m.pt", model, data)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    with pytest.raises(ValueError) as error:
        load_checkpoint(path, tiny_data(n_items=9))
    assert str(tmp_path) not in str(error.value) and "m.pt" in str(error.value)  # no absolute path shown


def test_damaged_or_foreign_checkpoint_files_give_one_clear_error(tmp_path):
    data = tiny_data()
    model = SASRec(quick_config(data), data.item_genre, data.item_year_bucket)
    from recnb.models.checkpoints import export_checkpoint, save_checkpoint

    good = save_checkpoint(tmp_path / "good.pt", model, data)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    text = tmp_path / "text.pt"
    text.write_text("this is not a checkpoint\n")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    for path, message in ((empty, "is empty"), (text, "cannot be read"), (truncated, "cannot be read"),
                          (foreign, "not a recnb SASRec checkpoint")):
        with pytest.raises(ValueError, match=message):
            load_checkpoint(path, data)
        with pytest.raises(ValueError, match=message):
            export_checkpoint(path, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_resume_refuses_an_export_and_another_model(tmp_path):
    data = tiny_data()
    split = leave_one_out(data.sequences)
    config = TrainConfig(epochs=1, batch_size=8, progress=False, verbose=False)
    path = tmp_path / "run.pt"
    train_sasrec(data, split, quick_config(data), config, checkpoint=path)
    from recnb.models.checkpoints import export_checkpoint

    exported = export_checkpoint(path, tmp_path / "exported.pt")
    with pytest.raises(ValueError, match="holds no training state"):
        train_sasrec(data, split, quick_config(data), config, resume=exported)
    with pytest.raises(ValueError, match="d_model 32 there, 16 now"):
        train_sasrec(data, split, quick_config(data, d_model=16), config, resume=path)


def test_choose_device_names_what_to_use_instead():
    from recnb.models.devices import choose_device

    assert choose_device("cpu").type == "cpu" and choose_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="is not a device"):
        choose_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            choose_device("cuda:0")


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be a whole number of at least 1, not 0"),
    ("lr", float("nan"), "lr must be a number above 0"),
    ("schedule", "linear", "schedule must be one of ['constant', 'cosine']"),
    ("seed", -1, "seed must be a whole number from 0"),
    ("max_minutes", 0, "max_minutes must be a number above 0"),
])
def test_a_train_config_refuses_what_cannot_train(field, value, message):
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        TrainConfig(**{field: value})
    with pytest.raises(InvalidArgumentError, match="Unknown recipe 'fast'"):
        train_recipe("fast")



@pytest.mark.skipif(sys.platform == "win32", reason="no page-fault count on Windows")
def test_minor_page_faults_count_memory_touched_for_the_first_time():
    import mmap

    from recnb.models.devices import minor_page_faults

    size = 64 * 2**20
    block = mmap.mmap(-1, size)           # fresh memory from the kernel, whatever the allocator has kept
    before = minor_page_faults()
    for offset in range(0, size, 4096):   # a byte in every 4 KiB page: each page is mapped in when first written
        block[offset] = 1
    after = minor_page_faults()
    block.close()
    # 16,384 pages of 4 KiB, or 32 of the 2 MiB huge pages Linux may use for a block this large: 32 at the least
    assert after - before >= 32


def _page_faults_of_ten_steps(keep: bool) -> int:
    """Minor page faults during ten scoring steps (56 MB of logits and their softmax, allocated and freed each
    time), after three to warm up, in a fresh one-thread interpreter: the allocator setting is per process.

    Each tensor is above glibc's largest dynamic mmap threshold (32 MiB on 64-bit): below it, glibc may raise
    its threshold after the first free and keep such blocks anyway, which made the default's count depend on
    the heap's layout."""
    import subprocess

    code = f"""
import resource, torch
from recnb.models.devices import keep_freed_memory
torch.set_num_threads(1)
assert keep_freed_memory() if {keep} else True
hidden, items = torch.randn(4096, 64), torch.randn(3417, 64)
def step():
    return float((hidden @ items.T).softmax(-1)[:, 0].sum())
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc's allocator only")
def test_keep_freed_memory_spares_page_faults_of_repeated_steps():
    default, kept = _page_faults_of_ten_steps(False), _page_faults_of_ten_steps(True)
    # each step's two 56 MB tensors are 27,336 pages: by default they are faulted in again at every step
    assert default > 100_000
    assert kept < default / 2

