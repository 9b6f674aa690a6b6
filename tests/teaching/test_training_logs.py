"""Training histories: written as JSON lines beside the checkpoint as the run goes, and read back from there."""

import json
import math

import pandas as pd
import pytest
import torch

from recnb.cli import main
from recnb.config import repository_root
from recnb.data.split import leave_one_out
from recnb.errors import DataFormatError, InvalidArgumentError, MissingDataError
from recnb.models.history import HistoryWriter, history_path, read_history
from recnb.models.sasrec import config_from_preset
from recnb.models.training import train_recipe, train_sasrec
from recnb.teaching.training_logs import (
    TrainingLog,
    against_seeds,
    quality_over_time,
    read_training_log,
    recipe_table,
    seed_band,
    time_to_reach,
    verdict_lines,
)


def test_the_history_beside_a_checkpoint_is_the_run_the_checkpoint_records(tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    assert main(["train", "--dataset", "synthetic", "--data-dir", str(tmp_path), "--preset", "quick",
                 "--epochs", "3", "--max-len", "20", "--lr", "3e-3", "--checkpoint", str(checkpoint),
                 "--no-progress", "--record-command"]) == 0
    out = capsys.readouterr().out
    assert history_path(checkpoint) == tmp_path / "run.history.jsonl" and f"history {tmp_path}" in out
    lines = [json.loads(line) for line in history_path(checkpoint).read_text().splitlines()]
    assert [line["record"] for line in lines] == ["run", "epoch", "epoch", "epoch", "end"]

    log = read_training_log(checkpoint)            # the checkpoint's path finds its history
    payload = torch.load(checkpoint, weights_only=True)
    assert log.name == "run" and log.command == payload["command"] and "--lr 3e-3" in log.command
    assert log.train_config == payload["train_config"] and log.model_config == payload["config"]
    assert log.train_config["all_windows"] is True and log.train_config["lr"] == 3e-3   # the compact recipe + --lr
    assert log.model_config["max_len"] == 20
    # JSON keeps every float exactly: the history is the checkpoint's, not a rounding of it
    assert log.history.to_dict("records") == payload["history"]
    assert log.best["epoch"] == payload["best_epoch"]
    assert log.test == payload["metrics"]["test"] and log.minutes == payload["train_minutes"]
    assert log.peak_memory_mib == payload["peak_memory_mib"]

    row = recipe_table([log]).loc["run"]
    assert row["dropout"] == payload["config"]["dropout"] and bool(row["all windows"])
    assert row["attention dropout"] == payload["config"]["attention_dropout"] == 0.0
    assert row["label smoothing"] == payload["train_config"]["label_smoothing"] == 0.0
    assert row["weight decay"] == payload["train_config"]["weight_decay"] == 0.0 and row["loss"] == "ce"
    assert row["averaged from"] is payload["train_config"]["average_from"] is None
    assert row["epochs planned"] == 3 and row["epochs run"] == 3 and row["lr"] == 3e-3
    assert row["batches"] == "random" and row["seed"] == 0      # the compact recipe's random batches
    assert row["best epoch"] == payload["best_epoch"] and row["test HR@10"] == payload["metrics"]["test"]["HR@10"]


def test_a_resumed_run_keeps_the_epochs_up_to_the_stored_one_and_says_where_it_came_from(synthetic, tmp_path):
    split = leave_one_out(synthetic.sequences)
    config = config_from_preset("quick", synthetic.n_items, len(synthetic.genre_names),
                                len(synthetic.year_bucket_labels), max_len=20)
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    recipe = train_recipe("plain", epochs=3, batch_size=64, progress=False, verbose=False)
    ran = train_sasrec(synthetic, split, config, recipe, checkpoint=first)
    again = train_sasrec(synthetic, split, config, train_recipe("plain", epochs=5, batch_size=64, progress=False,
                                                                 verbose=False), checkpoint=second, resume=first)
    history = read_history(second)
    assert history.run["resumed_from"]["epoch"] == ran.best_epoch
    assert history.run["resumed_from"]["checkpoint"].endswith("first.pt")
    assert history.epochs["epoch"].tolist() == list(range(1, len(again.history) + 1))
    kept = read_history(first).epochs.iloc[:ran.best_epoch]
    pd.testing.assert_frame_equal(history.epochs.iloc[:ran.best_epoch], kept)
    assert history.end is not None and history.end["best_epoch"] == again.best_epoch


def test_a_stopped_run_has_no_end_and_a_line_cut_short_is_skipped(tmp_path):
    path = tmp_path / "stopped.history.jsonl"
    writer = HistoryWriter(path)
    writer.start({"command": None, "model_config": {"dropout": 0.1}, "train_config": {"lr": 1e-3}})
    writer.epoch({"epoch": 1, "loss": 7.7, "valid_NDCG@10": 0.02, "seconds": 60.1})
    writer.epoch({"epoch": 2, "loss": float("nan"), "valid_NDCG@10": 0.03, "seconds": 59.9})  # a NaN loss is null
    with path.open("a") as handle:
        handle.write('{"record": "epoch", "epoch": 3, "lo')       # killed while writing
    with pytest.warns(UserWarning, match="line 4 is cut short"):
        log = read_training_log(path, name="stopped by hand")
    assert log.name == "stopped by hand" and log.test is None and log.minutes is None and log.command is None
    assert log.history["epoch"].tolist() == [1, 2] and math.isnan(log.history["loss"].iloc[1])
    assert log.best["epoch"] == 2
    row = recipe_table([log]).loc["stopped by hand"]
    assert row["lr"] == 1e-3 and pd.isna(row["test HR@10"]) and row["best valid NDCG@10"] == 0.03
    assert row["attention dropout"] == 0.0     # a config without the field: the model's default
    assert row["label smoothing"] == 0.0 and row["weight decay"] == 0.0
    gbce = HistoryWriter(tmp_path / "gbce.history.jsonl")
    gbce.start({"command": None, "model_config": {}, "train_config": {"loss": "gbce", "negatives": 256,
                                                                      "weight_decay": 1e-4}})
    gbce.epoch({"epoch": 1, "loss": 9.1, "valid_NDCG@10": 0.05, "seconds": 30.0})
    row = recipe_table([read_training_log(tmp_path / "gbce.history.jsonl")]).iloc[0]
    assert row["loss"] == "gbce (256)" and row["weight decay"] == 1e-4
    own = HistoryWriter(tmp_path / "own.history.jsonl")
    own.start({"command": None, "model_config": {}, "train_config": {"loss": "sampled", "negatives": 1000,
                                                                     "negatives_per": "history"}})
    own.epoch({"epoch": 1, "loss": 6.0, "valid_NDCG@10": 0.05, "seconds": 30.0})
    own_row = recipe_table([read_training_log(tmp_path / "own.history.jsonl")]).iloc[0]
    assert own_row["loss"] == "sampled (1000 per history)"


def test_what_is_not_a_history_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(MissingDataError, match="python -m recnb train"):
        read_training_log(tmp_path / "never-trained.pt")
    printed = tmp_path / "printed.history.jsonl"
    printed.write_text("Epoch 1 | Loss: 7.7000 | Valid NDCG@10: 0.0200 | Time: 60.1s\nEpoch 2 | ...\n")
    with pytest.raises(DataFormatError, match="line 1, is not JSON"):
        read_history(printed)
    headless = tmp_path / "headless.history.jsonl"
    headless.write_text('{"record": "epoch", "epoch": 1}\n')
    with pytest.raises(DataFormatError, match="does not start with a 'run' line"):
        read_history(headless)


def test_time_to_reach_reads_the_clock_of_the_first_epoch_past_the_target(tmp_path):
    path = tmp_path / "run.history.jsonl"
    writer = HistoryWriter(path)
    writer.start({"model_config": {}, "train_config": {}})
    for epoch, hit_rate, minutes in ((1, 0.20, 1.5), (2, 0.31, 2.5), (3, 0.29, 3.5), (4, 0.33, 4.5)):
        writer.epoch({"epoch": epoch, "loss": 5.0, "valid_HR@10": hit_rate, "valid_NDCG@10": hit_rate / 2,
                      "seconds": 60.0, "elapsed_minutes": minutes})
    log = read_training_log(path)
    assert time_to_reach(log, 0.30) == 2.5 and time_to_reach(log, 0.33) == 4.5 and time_to_reach(log, 0.5) is None
    assert time_to_reach(log, 0.15, metric="valid_NDCG@10") == 2.5
    curves = quality_over_time([log, log])
    assert len(curves) == 8 and curves["minutes"].tolist()[:4] == [1.5, 2.5, 3.5, 4.5]
    # a history without a clock of its own (converted from printed output) counts the epochs' seconds
    old = TrainingLog("old", None, {}, {}, pd.DataFrame({"epoch": [1, 2], "valid_HR@10": [0.2, 0.3],
                                                         "seconds": [30.0, 30.0]}), None, None, None)
    assert time_to_reach(old, 0.3) == 1.0
    assert quality_over_time([old], metric="valid_MRR").empty   # runs that did not record the metric are left out


def test_seed_band_spans_the_seeds_at_the_epochs_all_of_them_reached():
    def log(name, values):
        history = pd.DataFrame({"epoch": range(1, len(values) + 1), "valid_NDCG@10": values})
        return TrainingLog(name, None, {}, {}, history, None, None, None)

    band = seed_band([log("seed 0", [0.10, 0.15, 0.17]), log("seed 1", [0.12, 0.14]), log("seed 2", [0.11, 0.16])])
    assert band.index.tolist() == [1, 2]                       # epoch 3: only one seed got there
    assert band["low"].tolist() == [0.10, 0.14] and band["high"].tolist() == [0.12, 0.16]
    assert band["mean"].round(6).tolist() == [0.11, 0.15] and (band["runs"] == 3).all()
    with pytest.raises(InvalidArgumentError, match="at least one run"):
        seed_band([])


def test_runs_are_read_against_the_seeds_at_their_best_or_where_they_were_stopped():
    def log(name, values, test=None):
        history = pd.DataFrame({"epoch": range(1, len(values) + 1), "valid_NDCG@10": values})
        return TrainingLog(name, None, {}, {}, history, test, None, None)

    seeds = [log("seed 0", [0.10, 0.15, 0.17], {}), log("seed 1", [0.12, 0.14, 0.16], {})]   # best 0.17 and 0.16
    test = {"HR@10": 0.3, "NDCG@10": 0.18}
    runs = [log("longer", [0.10, 0.16, 0.17, 0.18], test),     # best at its last epoch, above both seeds' best
            log("same", [0.11, 0.165, 0.12], test),             # best 0.165 inside 0.16..0.17
            log("worse", [0.05, 0.15, 0.14], test),
            log("stopped", [0.05, 0.13]),                       # read at epoch 2 against 0.14..0.15: below
            log("stopped early", [0.125]),                      # epoch 1, against 0.10..0.12: above
            log("stopped late", [0.1, 0.1, 0.1, 0.1])]          # no seed reached epoch 4
    table = against_seeds(runs, seeds)
    assert table["verdict"].tolist()[:5] == ["above", "inside", "below", "below", "above"]
    assert pd.isna(table.loc["stopped late", "verdict"])
    assert table["epoch"].tolist() == [4, 2, 2, 2, 1, 4]
    assert table["read at"].tolist() == ["best epoch"] * 3 + ["stopped"] * 3
    assert (table.loc[["longer", "same"], ["seeds low", "seeds high"]].to_numpy() == [[0.16, 0.17]] * 2).all()
    assert table.loc["stopped", ["seeds low", "seeds high"]].tolist() == [0.14, 0.15]
    assert table["still rising"].tolist() == [True, False, False, False, False, False]
    assert table.loc["longer", "test NDCG@10"] == 0.18 and pd.isna(table.loc["stopped", "test HR@10"])

    lines = verdict_lines(table).splitlines()
    assert lines[0] == ("- `longer`: best 0.1800 at epoch 4, above the seeds' best (0.1600 to 0.1700); "
                        "test HR@10 0.3000 / NDCG@10 0.1800, still rising at its last epoch.")
    assert lines[3] == "- `stopped`, stopped after epoch 2: 0.1300, below the seeds' 0.1400 to 0.1500 at that epoch."
    assert lines[5] == "- `stopped late`, stopped after epoch 4: 0.1000, no seed ran so long."


def test_the_committed_logs_read_against_their_seeds_as_the_readme_says():
    root = repository_root()
    if root is None:
        pytest.skip("the committed logs live in a source checkout")
    logs = root / "checkpoints" / "logs"
    forty = [read_training_log(logs / "5_random_batches_40ep.history.jsonl"),
             *map(read_training_log, sorted((logs / "seeds").glob("random_batches_seed*.history.jsonl")))]
    fifty = [read_training_log(logs / "changes" / "4_compact_50ep.history.jsonl"),
             *map(read_training_log, sorted((logs / "seeds").glob("compact_50ep_seed*.history.jsonl")))]
    assert len(forty) == len(fifty) == 3
    table = against_seeds(fifty, forty)                          # each 50-epoch seed against the 40-epoch band
    assert table["verdict"].tolist() == ["above", "above", "inside"]
    assert table["seeds high"].iloc[0] == max(float(log.history["valid_NDCG@10"].max()) for log in forty)
    regular = against_seeds([read_training_log(p) for p in sorted((logs / "changes_50ep").glob("*.jsonl"))], fifty)
    assert "above" not in regular["verdict"].tolist()            # no regulariser left the 50-epoch band upward
