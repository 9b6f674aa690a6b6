"""Checkpoint labels: the epoch, the state and the history saved together describe one epoch, and a resumed run
says which epoch it starts from and repeats the uninterrupted run from there.

Every run here stops early after its best epoch (patience 1 at a learning rate where validation NDCG@10 falls
after a few epochs on the synthetic set); each test asserts that precondition, so none can pass without it.
"""

import pandas as pd
import pytest
import torch

from recnb.cli import main
from recnb.data.split import leave_one_out
from recnb.errors import CheckpointError
from recnb.models.checkpoints import TRAINING_STATE
from recnb.models.sasrec import config_from_preset
from recnb.models.training import TIME_COLUMNS, TrainConfig, train_sasrec

EARLY_STOP = {"epochs": 8, "batch_size": 64, "lr": 1e-2, "patience": 1, "progress": False, "verbose": False}
# the plain recipe's constant learning rate: a run cut short at epoch k is then the same run as one planned for k
CLI_TRAIN = ["train", "--dataset", "synthetic", "--preset", "quick", "--recipe", "plain", "--max-len", "20",
             "--batch-size", "64", "--lr", "1e-2", "--no-progress"]


def small_config(data):
    return config_from_preset("quick", data.n_items, len(data.genre_names), len(data.year_bucket_labels), max_len=20)


def same(a, b) -> bool:
    """Exact equality of nested state: tensors bit for bit, everything else with ==."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def without_time(history) -> pd.DataFrame:
    """A history without its wall-clock columns, the one thing a repeated run changes."""
    history = pd.DataFrame(history)
    return history.drop(columns=[column for column in TIME_COLUMNS if column in history])


@pytest.fixture(scope="module")
def early_stopped(synthetic, tmp_path_factory):
    """A run that stopped early, after its best epoch: (split, its checkpoint, its result, its last epoch)."""
    split = leave_one_out(synthetic.sequences)
    path = tmp_path_factory.mktemp("labels") / "run.pt"
    result = train_sasrec(synthetic, split, small_config(synthetic), TrainConfig(**EARLY_STOP), checkpoint=path)
    last = int(result.history["epoch"].iloc[-1])
    assert result.best_epoch < last < EARLY_STOP["epochs"]  # stopped early, and the last epoch is not the best
    return split, path, result, last


def test_an_early_stopped_run_stores_its_best_epoch_under_that_label(synthetic, early_stopped, tmp_path):
    split, path, result, last = early_stopped
    best = result.best_epoch
    payload = torch.load(path, weights_only=True)
    assert payload["epoch"] == payload["best_epoch"] == best and payload["epochs_run"] == last
    assert [row["epoch"] for row in payload["history"]] == list(range(1, last + 1))  # the whole record
    assert without_time(payload["history"]).equals(without_time(result.history))
    assert payload["metrics"]["valid"]["NDCG@10"] == payload["history"][best - 1]["valid_NDCG@10"]

    # weights, optimizer, scaler, schedule and random state are those of a run that ends at the best epoch
    reference_path = tmp_path / "reference.pt"
    reference = train_sasrec(synthetic, split, small_config(synthetic),
                             TrainConfig(**{**EARLY_STOP, "epochs": best}), checkpoint=reference_path)
    assert reference.best_epoch == best
    stored = torch.load(reference_path, weights_only=True)
    assert same(payload["model_state"], stored["model_state"])
    assert same(payload["model_state"], {k: v.cpu() for k, v in result.model.state_dict().items()})
    for key in TRAINING_STATE:
        assert same(payload[key], stored[key]), key
    assert same(payload["metrics"], stored["metrics"])


def test_resuming_says_where_it_starts_and_repeats_the_uninterrupted_run(synthetic, early_stopped, tmp_path,
                                                                        capsys):
    split, path, result, last = early_stopped
    best, ndcg = result.best_epoch, result.best_valid["NDCG@10"]
    longer = TrainConfig(**{**EARLY_STOP, "epochs": last + 2, "patience": 3, "verbose": True})
    capsys.readouterr()
    resumed = train_sasrec(synthetic, split, small_config(synthetic), longer, checkpoint=tmp_path / "resumed.pt",
                           resume=path)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"Resuming run.pt from epoch {best}, the best so far (validation NDCG@10 {ndcg:.4f})")
    assert f"the run had gone on to epoch {last} without improving" in lines[0]
    assert [int(line.split()[1]) for line in lines[1:]] == list(range(best + 1, last + 3))  # its "Epoch N |" lines

    uninterrupted = train_sasrec(synthetic, split, small_config(synthetic),
                                 TrainConfig(**{**EARLY_STOP, "epochs": last + 2, "patience": 3}))
    assert without_time(resumed.history).equals(without_time(uninterrupted.history))  # bit for bit
    assert resumed.best_epoch == uninterrupted.best_epoch
    assert same(resumed.model.state_dict(), uninterrupted.model.state_dict())
    # the epochs after the best one were trained again, exactly as the first time
    again = without_time(resumed.history).iloc[best:last].reset_index(drop=True)
    assert again.equals(without_time(result.history).iloc[best:last].reset_index(drop=True))

    saved = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert saved["epoch"] == saved["best_epoch"] == resumed.best_epoch and saved["epochs_run"] == last + 2
    assert [row["epoch"] for row in saved["history"]] == list(range(1, last + 3))


def test_patience_counts_from_the_stored_epoch(synthetic, early_stopped, tmp_path, capsys):
    split, path, result, _ = early_stopped
    capsys.readouterr()
    again = train_sasrec(synthetic, split, small_config(synthetic), TrainConfig(**{**EARLY_STOP, "verbose": True}),
                         checkpoint=tmp_path / "again.pt", resume=path)
    first = capsys.readouterr().out.splitlines()[0]
    # the same settings from the best epoch: the same epochs again, and the same stop
    assert f"Patience 1: it stops after epoch {result.best_epoch + 1} unless an epoch beats" in first
    assert without_time(again.history).equals(without_time(result.history))
    assert again.best_epoch == result.best_epoch


def test_an_old_label_is_read_by_its_best_epoch_and_a_false_one_is_refused(synthetic, early_stopped, tmp_path,
                                                                           capsys):
    split, path, result, last = early_stopped
    best = result.best_epoch
    payload = torch.load(path, weights_only=True)
    old = {key: (last if key == "epoch" else value) for key, value in payload.items() if key != "epochs_run"}
    torch.save(old, tmp_path / "old.pt")  # as recnb labelled an early-stopped run before epochs_run
    capsys.readouterr()
    resumed = train_sasrec(synthetic, split, small_config(synthetic), TrainConfig(**{**EARLY_STOP, "verbose": True}),
                           resume=tmp_path / "old.pt")
    lines = capsys.readouterr().out.splitlines()
    assert f"from epoch {best}," in lines[0] and f"labelled epoch {last} by an older recnb" in lines[0]
    assert lines[1].startswith(f"Epoch {best + 1} |")
    assert without_time(resumed.history).equals(without_time(result.history))

    false_labels = {
        "says it holds epoch": {**payload, "epoch": last},
        "label does not match its weights": {**payload, "metrics": {"valid": {**payload["metrics"]["valid"],
                                                                              "NDCG@10": -1.0}}},
        "does not run from epoch 1": {**payload, "history": payload["history"][1:]},
    }
    for message, bad in false_labels.items():
        torch.save(bad, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=message):
            train_sasrec(synthetic, split, small_config(synthetic), TrainConfig(**EARLY_STOP),
                         resume=tmp_path / "bad.pt")


def test_the_cli_saves_a_consistent_final_checkpoint_and_resumes_from_it(tmp_path, capsys):
    common = [*CLI_TRAIN, "--data-dir", str(tmp_path)]
    run = tmp_path / "run.pt"
    assert main([*common, "--epochs", "8", "--patience", "1", "--checkpoint", str(run)]) == 0
    printed = capsys.readouterr().out
    payload = torch.load(run, weights_only=True)
    best, last = payload["best_epoch"], payload["epochs_run"]
    assert best < last < 8  # the precondition: stopped early, after its best epoch
    assert payload["epoch"] == best and f"Best epoch {best} " in printed
    assert [row["epoch"] for row in payload["history"]] == list(range(1, last + 1))
    assert set(TRAINING_STATE) <= payload.keys() and "test" in payload["metrics"]

    reference = tmp_path / "reference.pt"   # the same run, ending at the best epoch
    assert main([*common, "--epochs", str(best), "--patience", "1", "--checkpoint", str(reference)]) == 0
    stored = torch.load(reference, weights_only=True)
    for key in ("model_state", "metrics", *TRAINING_STATE):
        assert same(payload[key], stored[key]), key

    capsys.readouterr()
    assert main([*common, "--epochs", str(last + 1), "--patience", "3", "--checkpoint", str(run),
                 "--resume", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    resuming = next(line for line in lines if line.startswith("Resuming"))
    assert f"from epoch {best}," in resuming and f"had gone on to epoch {last} without improving" in resuming
    assert [int(line.split()[1]) for line in lines if line.startswith("Epoch ")] == list(range(best + 1, last + 2))
    resumed = torch.load(run, weights_only=True)
    assert resumed["epoch"] == resumed["best_epoch"] and resumed["epochs_run"] == last + 1
    assert [row["epoch"] for row in resumed["history"]] == list(range(1, last + 2))

    torch.save({**payload, "epoch": last}, tmp_path / "false.pt")   # a label that contradicts the state
    assert main([*common, "--epochs", "8", "--checkpoint", str(tmp_path / "out.pt"),
                 "--resume", str(tmp_path / "false.pt")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "says it holds epoch" in error and not (tmp_path / "out.pt").exists()


def test_the_committed_checkpoint_is_labelled_with_the_epoch_it_holds():
    from recnb.models.checkpoints import read_checkpoint_file, resume_point
    from recnb.models.zoo import default_checkpoint

    payload = read_checkpoint_file(default_checkpoint())
    assert payload["epoch"] == payload["best_epoch"] and payload["epochs_run"] == len(payload["history"])
    assert resume_point(payload, default_checkpoint()) == (payload["epoch"], payload["epochs_run"], False)
    best = max(payload["history"], key=lambda row: row["valid_NDCG@10"])
    assert best["epoch"] == payload["epoch"] and best["valid_NDCG@10"] == payload["metrics"]["valid"]["NDCG@10"]


@pytest.mark.parametrize("epochs, patience, says", [
    (40, 10, "the run had gone on to epoch 40 without improving: epochs 31-40 are discarded and trained again."),
    (60, 10, "trained again. Patience 10: it stops after epoch 40 unless an epoch beats 0.1729."),
    (35, 10, "epochs 31-40 are discarded; the run is set to 35 epochs, so 31-35 are trained again."),
    (30, 10, "epochs 31-40 are discarded. The run is set to 30 epochs: none is left to train."),
])
def test_the_resume_line_says_what_becomes_of_the_epochs_after_the_stored_one(epochs, patience, says):
    from recnb.models.checkpoints import describe_resume

    line = describe_resume("run.pt", 30, 40, 0.17286, False, TrainConfig(epochs=epochs, patience=patience))
    assert line.startswith("Resuming run.pt from epoch 30, the best so far (validation NDCG@10 0.1729)")
    assert line.endswith(says)
