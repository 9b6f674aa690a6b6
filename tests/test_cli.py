"""``python -m recnb stats`` on the real ML-1M, on synthetic data, and with bad input."""

import json
import subprocess
import sys

import torch

from recnb.cli import main


def test_stats_prints_the_benchmark_counts(ml1m_dir, capsys):
    assert main(["stats", "--dataset", "ml-1m", "--data-dir", str(ml1m_dir.parent), "--no-download"]) == 0
    out = capsys.readouterr().out
    before = next(line for line in out.splitlines() if line.startswith("before filtering"))
    after = next(line for line in out.splitlines() if line.startswith("after 5/5-core"))
    assert before.split()[-3:] == ["6,040", "3,706", "1,000,209"]
    assert after.split()[-3:] == ["6,040", "3,416", "999,611"]


def test_stats_json(ml1m_dir, capsys):
    main(["stats", "--dataset", "ml-1m", "--data-dir", str(ml1m_dir.parent), "--json"])
    stats = json.loads(capsys.readouterr().out)
    assert (stats["users_after"], stats["items_after"], stats["interactions_after"]) == (6040, 3416, 999611)
    assert stats["has_timestamps"] is False


def test_module_entry_point_runs(ml1m_dir):
    done = subprocess.run(
        [sys.executable, "-m", "recnb", "stats", "--dataset", "ml-1m", "--data-dir", str(ml1m_dir.parent)],
        capture_output=True, text=True, check=True,
    )
    assert "999,611" in done.stdout


def test_synthetic_dataset_is_generated_on_first_use(tmp_path, capsys):
    assert main(["stats", "--dataset", "synthetic", "--data-dir", str(tmp_path)]) == 0
    assert (tmp_path / "synthetic" / "ratings.dat").is_file()
    assert "time order from: timestamps" in capsys.readouterr().out


def test_bad_input_is_one_error_line_not_a_traceback(tmp_path, capsys):
    assert main(["stats", "--dataset", "ml-1m", "--data-dir", str(tmp_path), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "ml-1m.zip" in err and "Traceback" not in err
    assert main(["stats", "--dataset", "synthetic", "--data-dir", str(tmp_path), "--min-user", "500"]) == 2
    assert "removed every interaction" in capsys.readouterr().err


def test_train_then_evaluate_sasrec_and_refuse_to_overwrite(tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    common = ["--dataset", "synthetic", "--data-dir", str(tmp_path)]
    assert main(["train", *common, "--preset", "quick", "--epochs", "2", "--checkpoint", str(checkpoint),
                 "--no-progress", "--record-command", "--schedule", "cosine"]) == 0
    out = capsys.readouterr().out
    assert out.count("| Valid NDCG@10:") == 2 and "Test: Hit Rate @ 10:" in out
    assert main(["evaluate", "--model", "sasrec", "--checkpoint", str(checkpoint), *common, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert f"{metrics['HR@10']:.4f}" in out  # the stored test figure is reproduced
    assert main(["train", *common, "--preset", "quick", "--epochs", "1", "--checkpoint", str(checkpoint)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["evaluate", "--model", "markov", "--checkpoint", str(checkpoint), *common]) == 2
    bce = tmp_path / "bce.pt"
    assert main(["train", *common, "--preset", "quick", "--epochs", "1", "--loss", "bce", "--checkpoint", str(bce),
                 "--no-progress"]) == 0
    assert torch.load(bce, weights_only=True)["train_config"]["loss"] == "bce"
