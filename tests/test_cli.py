"""``python -m recnb stats`` on the real ML-1M, on synthetic data, and with bad input."""

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, fields

import pytest
import torch

from recnb.cli import MODEL_OPTIONS, MODEL_SWITCHES, build_parser, main, train_flag
from recnb.models.history import history_path
from recnb.models.sasrec import PRESETS, SASRecConfig
from recnb.models.training import RECIPES, TrainConfig, train_recipe


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
    stored = torch.load(checkpoint, weights_only=True)
    assert f"Test: Hit Rate @ 10: {stored['metrics']['test']['HR@10']:.4f} |" in out  # printed what it stored
    assert stored["command"].startswith("python -m recnb") and stored["train_minutes"] > 0
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


BAD_TRAIN_ARGUMENTS = [
    (["--epochs", "0"], "--epochs must be a whole number of at least 1"),
    (["--batch-size", "-5"], "--batch-size must be a whole number of at least 1"),
    (["--batch-size", "0"], "--batch-size"),
    (["--accumulation", "0"], "--accumulation"),
    (["--patience", "0"], "--patience"),
    (["--heads", "0"], "--heads must be at least 1"),
    (["--layers", "0"], "--layers must be at least 1"),
    (["--d-model", "0"], "--d-model must be at least 1"),
    (["--lr", "0"], "--lr must be a number above 0"),
    (["--lr", "inf"], "--lr must be a number above 0"),
    (["--heads", "5"], "--heads 5 must divide the model width 64"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--attention-dropout", "-0.1"], "--attention-dropout must be in [0, 1)"),
    (["--warmup-epochs", "-1"], "--warmup-epochs"),
    (["--max-minutes", "0"], "--max-minutes"),
    (["--device", "banana"], "is not a device"),
    (["--seed", "-1"], "--seed must be a whole number from 0"),
    (["--seed", str(2**32)], "--seed must be a whole number from 0"),
    (["--resume", "no-such-file.pt"], "no such checkpoint file"),
]


@pytest.mark.parametrize("extra, message", BAD_TRAIN_ARGUMENTS)
def test_train_rejects_nonsense_before_reading_any_data(tmp_path, capsys, extra, message):
    checkpoint = tmp_path / "run.pt"
    # --data-dir points at an empty folder: a check that passed would fail later on the missing data instead
    code = main(["train", "--dataset", "ml-1m", "--data-dir", str(tmp_path), "--no-download",
                 "--checkpoint", str(checkpoint), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not checkpoint.exists()


def test_train_rejects_a_device_this_machine_lacks_and_a_folder_as_checkpoint(tmp_path, capsys):
    common = ["train", "--dataset", "ml-1m", "--data-dir", str(tmp_path), "--no-download", "--no-progress"]
    if not torch.cuda.is_available():
        assert main([*common, "--device", "cuda", "--checkpoint", str(tmp_path / "r.pt")]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    assert main([*common, "--checkpoint", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main([*common, "--checkpoint", str(blocker / "run.pt")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_compare_never_writes_the_ml1m_assets_for_other_data(synthetic_dir, tmp_path, monkeypatch, capsys):
    import recnb.evaluation.comparison

    monkeypatch.setattr(recnb.evaluation.comparison, "default_output_dir", lambda: tmp_path / "assets")
    assert main(["compare", "--dataset", "synthetic", "--train", "--epochs", "0"]) == 2
    assert "--epochs must be at least 1" in capsys.readouterr().err
    code = main(["compare", "--dataset", "synthetic", "--data-dir", str(synthetic_dir.parent), "--no-download",
                 "--train", "--epochs", "1"])
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "assets").iterdir())
    assert written == ["baseline_comparison_synthetic.png", "comparison_synthetic.csv"]
    from recnb.cli import build_parser, compare_outputs

    args = build_parser().parse_args(["compare", "--dataset", "ml-1m"])
    assert [p.name for p in compare_outputs(args)] == ["comparison.csv", "baseline_comparison.png"]
    args = build_parser().parse_args(["compare", "--dataset", "ml-1m", "--min-user", "10"])
    assert [p.name for p in compare_outputs(args)] == ["comparison_ml-1m_10u5i.csv",
                                                       "baseline_comparison_ml-1m_10u5i.png"]


def test_permission_and_data_folder_errors_are_one_line(tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "data.txt"
    a_file.write_text("x")
    monkeypatch.setenv("RECNB_DATA_DIR", str(a_file))
    assert main(["stats", "--dataset", "ml-1m", "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: RECNB_DATA_DIR points at") and len(err.strip().splitlines()) == 1
    monkeypatch.delenv("RECNB_DATA_DIR")

    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "locked" / "ml-1m.zip"))

    monkeypatch.setattr("recnb.cli.run_stats", denied)   # main() builds its parser afresh, with this function
    assert main(["stats", "--dataset", "ml-1m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Permission denied:") and "Traceback" not in err
    monkeypatch.undo()
    checkpoint = tmp_path / "e.pt"
    checkpoint.write_bytes(b"")
    assert main(["evaluate", "--model", "sasrec", "--checkpoint", str(checkpoint), "--dataset", "synthetic",
                 "--data-dir", str(tmp_path)]) == 2
    assert "is empty" in capsys.readouterr().err


def test_export_checks_its_output_path_before_reading_anything(tmp_path, capsys):
    source = tmp_path / "missing-source.pt"  # never read: the output is checked first
    assert main(["export", "--checkpoint", str(source), "--output", str(tmp_path), "--overwrite"]) == 2
    assert "is a folder; give a file name inside it" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    assert main(["export", "--checkpoint", str(source), "--output", str(blocker / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1
    assert blocker.read_text() == "keep me"


def test_evaluate_checks_the_checkpoint_before_reading_any_data(tmp_path, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    # the data folder is empty: had the data been read first, the error would be about the missing release
    assert main(["evaluate", "--model", "sasrec", "--checkpoint", str(foreign), "--dataset", "ml-1m",
                 "--data-dir", str(tmp_path), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "is not a recnb SASRec checkpoint" in err and "ml-1m.zip" not in err
    assert main(["evaluate", "--model", "sasrec", "--dataset", "ml-1m", "--data-dir", str(tmp_path)]) == 2
    assert "--model sasrec needs --checkpoint PATH" in capsys.readouterr().err


def _train_options():
    """Every option string of ``train``, from the parser itself."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {flag: action for action in commands.choices["train"]._actions for flag in action.option_strings}


def test_train_offers_every_training_setting_and_every_preset_and_recipe():
    options = _train_options()
    for setting in fields(TrainConfig):
        flag = train_flag(setting.name)
        assert (flag in options) == setting.metadata["cli"], setting.name
        if setting.metadata["cli"]:
            assert options[flag].dest == setting.name and options[flag].default is None  # the recipe decides
    assert options["--preset"].choices == list(PRESETS) and options["--recipe"].choices == list(RECIPES)
    for flag, name in MODEL_OPTIONS.items():
        assert name in SASRecConfig.__dataclass_fields__ and options[flag].dest == name
    for flag, (name, value, _) in MODEL_SWITCHES.items():
        assert name in SASRecConfig.__dataclass_fields__ and options[flag].const == value
    # a field added to TrainConfig is an option at once: nothing else lists them
    assert {"--no-bucketing", "--no-all-windows", "--no-progress", "--amp-dtype", "--clip-norm"} <= set(options)


def test_a_recipe_is_the_base_and_a_flag_changes_one_field(tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    assert main(["train", "--dataset", "synthetic", "--data-dir", str(tmp_path), "--preset", "quick",
                 "--recipe", "compact", "--epochs", "1", "--no-all-windows", "--bucketing", "--checkpoint",
                 str(checkpoint), "--no-progress"]) == 0
    stored = torch.load(checkpoint, weights_only=True)["train_config"]
    expected = asdict(train_recipe("compact", epochs=1, all_windows=False, bucket_by_length=True, progress=False))
    assert stored == expected and stored["schedule"] == "cosine" and stored["lr"] == 2e-3
    assert not train_recipe("compact").bucket_by_length     # the recipe's random batches, switched either way
    assert "recipe compact: TrainConfig(epochs=1," in capsys.readouterr().out


def test_an_existing_history_is_not_replaced_without_overwrite(tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    history = history_path(checkpoint)
    history.write_text("the only record of an earlier run\n")
    code = main(["train", "--dataset", "synthetic", "--data-dir", str(tmp_path), "--preset", "quick", "--epochs",
                 "1", "--checkpoint", str(checkpoint), "--no-progress"])
    assert code == 2 and "run.history.jsonl already exists" in capsys.readouterr().err
    assert history.read_text() == "the only record of an earlier run\n" and not checkpoint.exists()
