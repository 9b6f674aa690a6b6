"""Weight averaging (``average_from``): the kept model is the mean of the epoch-end weights, training is untouched,
and a run that was averaging resumes exactly."""

import pandas as pd
import pytest
import torch

import recnb.models.training as training
from recnb.cli import main
from recnb.data.split import leave_one_out
from recnb.errors import InvalidArgumentError
from recnb.evaluation.evaluator import evaluate_split
from recnb.models.checkpoints import export_checkpoint, load_checkpoint
from recnb.models.training import TrainConfig, train_sasrec
from recnb.teaching.training_logs import read_training_log, recipe_table
from tests.models.test_train import quick_config, tiny_data


def epoch_weights(monkeypatch, data, split, config) -> tuple[training.TrainResult, dict[int, dict]]:
    """Train, keeping the weights the optimizer left at the end of each epoch (what averaging reads)."""
    built, build = {}, training.build_model

    def keep_model(data, model_config):
        built["model"] = build(data, model_config)
        return built["model"]

    monkeypatch.setattr(training, "build_model", keep_model)
    weights = {}

    def keep(record):
        weights[record["epoch"]] = {k: v.detach().clone() for k, v in built["model"].state_dict().items()}

    result = train_sasrec(data, split, quick_config(data), config, on_epoch=keep)
    return result, weights


def test_the_kept_model_is_the_mean_of_the_weights_since_average_from(monkeypatch):
    data = tiny_data()
    split = leave_one_out(data.sequences)
    plain = TrainConfig(epochs=5, batch_size=8, lr=2e-3, patience=10, progress=False, verbose=False)
    averaging = TrainConfig(**{**plain.__dict__, "average_from": 2})
    plain_result, plain_weights = epoch_weights(monkeypatch, data, split, plain)
    result, weights = epoch_weights(monkeypatch, data, split, averaging)

    # averaging only reads the weights: training follows the same path, epoch by epoch
    assert result.history["loss"].tolist() == plain_result.history["loss"].tolist()
    for epoch in weights:
        assert all(torch.equal(weights[epoch][k], plain_weights[epoch][k]) for k in weights[epoch])
    # at epoch 1 the weights themselves are validated; from epoch 2 on, their mean since epoch 2
    history = result.history.set_index("epoch")
    assert history.loc[1, "valid_NDCG@10"] == plain_result.history["valid_NDCG@10"].iloc[0]
    assert pd.isna(history.loc[1, "unaveraged_valid_NDCG@10"])
    assert history.loc[2:, "unaveraged_valid_NDCG@10"].tolist() == \
        plain_result.history["valid_NDCG@10"].iloc[1:].tolist()
    assert history.loc[2, "valid_NDCG@10"] == history.loc[2, "unaveraged_valid_NDCG@10"]   # a mean of one
    assert (history.loc[3:, "valid_NDCG@10"] != history.loc[3:, "unaveraged_valid_NDCG@10"]).any()
    assert result.best_epoch >= 3, "the test needs a best epoch that averages several"
    since = range(2, result.best_epoch + 1)
    mean = {k: sum(weights[e][k] for e in since) / len(since) for k in weights[2]}
    kept = result.model.state_dict()
    assert all(torch.allclose(kept[k].float(), mean[k].float(), atol=1e-6) for k in mean)
    assert not all(torch.equal(kept[k], weights[result.best_epoch][k]) for k in kept)
    assert result.best_valid == evaluate_split(result.model, split, "valid").metrics


def test_a_run_that_was_averaging_resumes_exactly_and_exports_without_its_training_weights(tmp_path):
    data = tiny_data()
    split = leave_one_out(data.sequences)
    config = TrainConfig(epochs=5, batch_size=8, lr=2e-3, patience=10, progress=False, verbose=False, average_from=2)
    whole = train_sasrec(data, split, quick_config(data), config)
    path = tmp_path / "run.pt"
    train_sasrec(data, split, quick_config(data), config, checkpoint=path,
                 on_epoch=lambda record: record["epoch"] == 3)           # interrupted after epoch 3
    _, payload = load_checkpoint(path, data)
    assert payload["epoch"] >= 2 and payload["averaged_epochs"] == payload["epoch"] - 1
    resumed = train_sasrec(data, split, quick_config(data), config, checkpoint=path, resume=path)
    columns = ["epoch", "loss", "valid_NDCG@10", "unaveraged_valid_NDCG@10"]
    assert resumed.history[columns].equals(whole.history[columns])
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.state_dict().values(),
                                                 whole.model.state_dict().values()))
    _, exported = load_checkpoint(export_checkpoint(path, tmp_path / "slim.pt"), data)
    assert "unaveraged_state" not in exported and "averaged_epochs" not in exported


def test_the_command_line_averages_and_its_history_says_from_when(tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    assert main(["train", "--dataset", "synthetic", "--data-dir", str(tmp_path), "--preset", "quick",
                 "--epochs", "3", "--max-len", "20", "--lr", "3e-3", "--checkpoint", str(checkpoint),
                 "--average-from", "2", "--no-progress"]) == 0
    log = read_training_log(checkpoint)
    assert recipe_table([log]).loc["run", "averaged from"] == log.train_config["average_from"] == 2
    # from epoch 2 on the validated model is the average, and the weights' own validation is beside it
    assert log.history["unaveraged_valid_NDCG@10"].isna().tolist() == [True, False, False]
    assert main(["train", "--average-from", "0", "--checkpoint", str(tmp_path / "other.pt")]) == 2
    assert "--average-from must be a whole number of at least 1" in capsys.readouterr().err


def test_average_from_must_be_an_epoch():
    with pytest.raises(InvalidArgumentError, match="average_from must be a whole number of at least 1"):
        TrainConfig(average_from=0)
