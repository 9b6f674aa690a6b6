"""Reading saved ``recnb train`` output back: the log must agree with the checkpoint the run wrote."""

import pandas as pd
import pytest
import torch

from recnb.cli import main
from recnb.teaching.training_logs import read_training_log, recipe_table


def test_a_saved_training_log_matches_the_checkpoint(tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    assert main(["train", "--dataset", "synthetic", "--data-dir", str(tmp_path), "--preset", "quick",
                 "--epochs", "3", "--all-windows", "--max-len", "20", "--checkpoint", str(checkpoint),
                 "--no-progress"]) == 0
    log_path = tmp_path / "run.log"
    command = "python -m recnb train --preset quick --epochs 3 --all-windows"
    log_path.write_text(f"# command: {command}\n" + capsys.readouterr().out)

    log = read_training_log(log_path)
    payload = torch.load(checkpoint, weights_only=True)
    assert log.name == "run" and log.command == command
    assert log.header.startswith("SequenceData(") and "max_len=20" in log.header
    assert payload["train_config"]["all_windows"] is True
    assert log.history["epoch"].tolist() == [1, 2, 3]
    for row, saved in zip(log.history.to_dict("records"), payload["history"]):
        assert row["valid_NDCG@10"] == pytest.approx(saved["valid_NDCG@10"], abs=5e-5)   # printed to 4 places
        assert row["loss"] == pytest.approx(saved["loss"], abs=5e-5)
    assert log.best["epoch"] == payload["best_epoch"]
    assert log.test == pytest.approx({k: payload["metrics"]["test"][k] for k in ("HR@10", "NDCG@10", "MRR")},
                                     abs=5e-5)
    assert log.minutes is not None and log.peak_memory_mib > 0

    row = recipe_table([log]).loc["run"]
    assert row["dropout"] == payload["config"]["dropout"] and bool(row["all windows"])
    assert row["epochs planned"] == "3" and row["epochs run"] == 3 and row["lr"] is None
    assert row["best epoch"] == payload["best_epoch"]
    assert row["test HR@10"] == pytest.approx(payload["metrics"]["test"]["HR@10"], abs=5e-5)


def test_a_stopped_run_has_no_test_line_and_other_text_is_refused(tmp_path):
    stopped = tmp_path / "stopped.log"
    stopped.write_text("SequenceData(...); preset compact: SASRecConfig(...)\n"
                       "Epoch 1 | Loss: 7.7000 | Valid NDCG@10: 0.0200 | Time: 60.1s\n"
                       "Epoch 2 | Loss: 7.3000 | Valid NDCG@10: 0.0300 | Time: 59.9s\n")
    log = read_training_log(stopped, name="stopped by hand")
    assert log.name == "stopped by hand" and log.test is None and log.minutes is None
    assert log.best["epoch"] == 2 and log.command is None
    row = recipe_table([log]).loc["stopped by hand"]
    assert row["all windows"] is None and pd.isna(row["test HR@10"]) and row["best valid NDCG@10"] == 0.03
    other = tmp_path / "notes.txt"
    other.write_text("nothing to see\n")
    with pytest.raises(ValueError, match="python -m recnb train"):
        read_training_log(other)
