"""The hyper-parameter search (``recnb.models.tuning``, ``python -m recnb tune``) on the small synthetic set."""

import shlex
import subprocess
import sys

import numpy as np
import pytest

from recnb.cli import MODEL_OPTIONS, build_parser, main, model_overrides, train_settings
from recnb.config import torch_threads
from recnb.data.split import leave_one_out
from recnb.errors import InvalidArgumentError, MissingToolError
from recnb.evaluation.evaluator import evaluate_split
from recnb.models import tuning
from recnb.models.sasrec import config_from_preset
from recnb.models.training import train_recipe, train_sasrec
from recnb.models.tuning import (
    MODEL_FLAGS,
    SealedTargets,
    SealedTestSplitError,
    Span,
    best_trial_command,
    optuna_module,
    recipe_params,
    retrain_command,
    sealed_split,
    search_space,
    trials_table,
    tune,
)

optuna = pytest.importorskip("optuna")

#: Tiny widths around the quick preset (d_model 32, 1 layer, 2 heads, max_len 50), so a trial takes a second.
TINY = {"d_model": (16, 32), "n_heads": (1, 2), "n_layers": Span(1, 2, integer=True), "max_len": (20, 50),
        "negatives": Span(8, 64, log=True, integer=True)}
QUIET = dict(preset="quick", space=TINY, progress=False, verbose=False)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared CPU, two threads per tiny trial are many times slower, not faster."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def split(synthetic):
    return leave_one_out(synthetic.sequences)


def states(study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def parse_command(command: str):
    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "recnb", "train"]
    return build_parser().parse_args(words[3:])


def settings_of(args, data) -> tuple[dict, dict]:
    """What ``train`` would build from a parsed command: the model config and the TrainConfig, as dicts."""
    model = config_from_preset(args.preset, data.n_items, len(data.genre_names), len(data.year_bucket_labels),
                               **model_overrides(args)).to_dict()
    return model, vars(train_recipe(args.recipe, **train_settings(args)))


def test_a_tiny_study_completes_and_every_trials_command_retrains_its_settings(synthetic, split):
    study = tune(synthetic, split, 4, 5, trial_epochs=2, pruner=optuna.pruners.NopPruner(), **QUIET)
    trials = study.get_trials()
    assert states(study) == ["COMPLETE"] * 4
    assert trials[0].user_attrs["recipe"] and trials[0].params == recipe_params("quick", "compact", search_space(TINY))
    assert not any(t.user_attrs.get("recipe") for t in trials[1:])
    assert 0 < study.best_value <= 1 and study.best_value == max(t.user_attrs["valid_NDCG@10"] for t in trials)
    for t in trials:
        assert t.user_attrs["epochs_run"] == 2 and 1 <= t.user_attrs["best_epoch"] <= 2
        assert 0 <= t.user_attrs["valid_NDCG@10"] <= t.user_attrs["valid_HR@10"] <= 1
        model, train = settings_of(parse_command(t.user_attrs["command"]), synthetic)
        assert {k: model[k] for k in t.user_attrs["model_settings"]} == t.user_attrs["model_settings"]
        assert {k: train[k] for k in t.user_attrs["train_settings"]} == t.user_attrs["train_settings"]
        assert train["epochs"] == 50 and train["max_minutes"] is None  # in full: the recipe's epochs, no trial budget
    # the recipe's own command adds nothing to the preset and recipe; another trial's names what it changed
    assert shlex.split(trials[0].user_attrs["command"])[-4:] == ["--preset", "quick", "--recipe", "compact"]
    assert any(len(shlex.split(t.user_attrs["command"])) > 12 for t in trials[1:])
    args = parse_command(best_trial_command(study, checkpoint="runs/best.pt"))
    assert (args.dataset, args.checkpoint, args.preset) == ("synthetic", "runs/best.pt", "quick")

    table = trials_table(study)
    assert table["number"].tolist() == [0, 1, 2, 3] and table["state"].tolist() == ["COMPLETE"] * 4
    assert {"value", "d_model", "lr", "loss", "epochs_run", "minutes"} <= set(table.columns)
    assert table["value"].tolist() == [t.value for t in trials]


def test_the_same_seed_draws_the_same_trials(synthetic, split):
    runs = [tune(synthetic, split, 3, 5, trial_epochs=1, pruner=optuna.pruners.NopPruner(), seed=4, **QUIET)
            for _ in range(2)]
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]
    assert [t.value for t in runs[0].trials] == pytest.approx([t.value for t in runs[1].trials], abs=1e-6)


def test_the_retrain_command_gives_back_every_setting_it_names(synthetic):
    model = {"d_model": 128, "n_heads": 4, "n_layers": 3, "dropout": 0.3718, "max_len": 100}
    train = {"lr": 0.0031234567, "weight_decay": 2.5e-05, "loss": "sampled", "negatives": 256, "seed": 7}
    command = retrain_command("ml-1m", model, train, data_arguments=["--min-user", "10"])
    args = parse_command(command)
    assert (args.dataset, args.min_user, args.checkpoint) == ("ml-1m", 10, "checkpoints/tuned_sasrec.pt")
    built_model, built_train = settings_of(args, synthetic)
    assert {k: built_model[k] for k in model} == model and {k: built_train[k] for k in train} == train
    # the knobs' flags are train's own
    assert MODEL_FLAGS == {field: flag for flag, field in MODEL_OPTIONS.items() if field in MODEL_FLAGS}
    assert retrain_command("ml-1m", {"d_model": 64, "max_len": 200}, {"lr": 2e-3, "weight_decay": 0.0}).endswith(
        "--preset compact --recipe compact")


def test_a_trial_the_pruner_stops_ends_pruned_after_that_epoch(synthetic, split):
    study = tune(synthetic, split, 2, 5, trial_epochs=3, pruner=optuna.pruners.ThresholdPruner(lower=2.0), **QUIET)
    assert states(study) == ["PRUNED", "PRUNED"]
    for t in study.trials:
        assert list(t.intermediate_values) == [1]        # reported epoch 1, judged, stopped: never epoch 2
        assert t.user_attrs["epochs_run"] == 1 < 3 and "valid_NDCG@10" in t.user_attrs


def test_the_default_pruner_waits_for_three_trials_and_the_warm_up_epoch(synthetic, split):
    study = tune(synthetic, split, 3, 5, trial_epochs=3, **QUIET)
    first = study.trials[:3]
    assert [t.state.name for t in first] == ["COMPLETE"] * 3 and all(len(t.intermediate_values) == 3 for t in first)


def test_the_budget_ends_the_study_before_the_trials_are_all_run(synthetic, split):
    # a 6 ms budget: the first trial runs (capped at the time left), and no second one begins
    study = tune(synthetic, split, 50, 1e-4, trial_epochs=2, pruner=optuna.pruners.NopPruner(), **QUIET)
    assert states(study) == ["COMPLETE"]
    # a minute's budget and one-minute trials: once a trial has run, less than a trial's budget is left, so no
    # second trial begins (it could not get its full minute: an unfair comparison)
    study = tune(synthetic, split, 50, 1, trial_epochs=2, trial_minutes=1, pruner=optuna.pruners.NopPruner(), **QUIET)
    assert states(study) == ["COMPLETE"] and study.trials[0].user_attrs["epochs_run"] == 2


def test_an_interrupted_study_resumes_and_reruns_the_interrupted_trial(synthetic, split, tmp_path, monkeypatch):
    storage, calls = f"sqlite:///{tmp_path / 'study.db'}", []

    def interrupted_in_the_second_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt   # Ctrl-C in the middle of trial 1
        return train_sasrec(*args, **kwargs)

    options = dict(storage=storage, study_name="s", trial_epochs=1, pruner=optuna.pruners.NopPruner(), **QUIET)
    monkeypatch.setattr(tuning, "train_sasrec", interrupted_in_the_second_trial)
    with pytest.raises(KeyboardInterrupt):
        tune(synthetic, split, 3, 5, **options)
    monkeypatch.undo()
    stored = optuna.load_study(study_name="s", storage=storage)
    assert states(stored) == ["COMPLETE", "FAIL"] and stored.trials[1].user_attrs["interrupted"]

    study = tune(synthetic, split, 3, 5, **options)
    assert states(study) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]   # 3 finished: the number asked for
    assert study.trials[2].user_attrs["rerun_of"] == 1 and study.trials[2].params == study.trials[1].params
    # a process killed mid-trial leaves it RUNNING: it is failed and run again with its parameters
    left = optuna.load_study(study_name="s", storage=storage).ask()
    tuning.suggest_settings(left, search_space(TINY))
    study = tune(synthetic, split, 4, 5, **options)
    assert states(study)[4:] == ["FAIL", "COMPLETE"] and study.trials[5].params == study.trials[4].params
    assert tune(synthetic, split, 4, 5, **options).trials == study.trials   # already complete: nothing runs
    with pytest.raises(InvalidArgumentError, match="trial_epochs 1 there, 2 now"):
        tune(synthetic, split, 5, 5, **{**options, "trial_epochs": 2})


def test_the_test_targets_are_sealed_and_every_trial_trains_on_the_sealed_split(synthetic, split, monkeypatch,
                                                                                tmp_path):
    sealed = sealed_split(split)
    for use in (np.asarray, len, lambda t: t[0], lambda t: t.copy(), list):
        with pytest.raises(SealedTestSplitError, match="test targets"):
            use(sealed.test)
    assert np.array_equal(sealed.valid, split.valid) and sealed.train is split.train
    model = train_sasrec(synthetic, sealed, config_from_preset("quick", synthetic.n_items, max_len=20),
                         train_recipe("compact", epochs=1, progress=False, verbose=False)).model
    assert 0 <= evaluate_split(model, sealed, "valid")["NDCG@10"] <= 1   # validation: fine
    with pytest.raises(SealedTestSplitError):
        evaluate_split(model, sealed, "test")
    with pytest.raises(SealedTestSplitError):   # a checkpoint's final test evaluation is refused too
        train_sasrec(synthetic, sealed, config_from_preset("quick", synthetic.n_items, max_len=20),
                     train_recipe("compact", epochs=1, progress=False, verbose=False), checkpoint=tmp_path / "c.pt")

    seen = []

    def recording(data, split, *args, **kwargs):
        seen.append(split.test)
        return train_sasrec(data, split, *args, **kwargs)

    monkeypatch.setattr(tuning, "train_sasrec", recording)
    assert states(tune(synthetic, split, 2, 5, trial_epochs=1, **QUIET)) == ["COMPLETE"] * 2
    assert len(seen) == 2 and all(isinstance(targets, SealedTargets) for targets in seen)


def test_search_space_and_recipe_mistakes_are_refused(synthetic, split):
    with pytest.raises(InvalidArgumentError, match="3 heads do not divide d_model 32"):
        search_space({"n_heads": (1, 3)})
    with pytest.raises(InvalidArgumentError, match="Unknown search-space entries"):
        search_space({"width": (1, 2)})
    with pytest.raises(InvalidArgumentError, match="d_model 64"):   # the compact preset is outside a tiny space
        tune(synthetic, split, 1, 1, space=TINY, progress=False, verbose=False)
    for bad, message in [((0, 1), "n_trials must be"), ((1, 0), "budget_minutes must be")]:
        with pytest.raises(InvalidArgumentError, match=message):
            tune(synthetic, split, *bad, **QUIET)


BAD_TUNE_ARGUMENTS = [
    (["--trials", "0"], "--trials must be a whole number of at least 1"),
    (["--budget-minutes", "0"], "--budget-minutes must be a number above 0"),
    (["--budget-minutes", "nan"], "--budget-minutes must be"),
    (["--trial-epochs", "0"], "--trial-epochs must be a whole number"),
    (["--trial-minutes", "-1"], "--trial-minutes must be"),
    (["--seed", "-1"], "--seed must be a whole number from 0"),
    (["--storage", "tuning.db"], "is not a database URL"),
    (["--storage", "sqlite://tuning.db"], "three slashes"),
    (["--storage", "sqlite:///no/such/folder/s.db"], "the folder no/such/folder does not exist"),
]


@pytest.mark.parametrize("extra, message", BAD_TUNE_ARGUMENTS)
def test_tune_rejects_nonsense_before_reading_any_data(tmp_path, capsys, extra, message):
    # --data-dir is an empty folder: a check that passed would fail later on the missing data instead
    code = main(["tune", "--dataset", "ml-1m", "--data-dir", str(tmp_path), "--no-download", "--no-progress",
                 "--budget-minutes", "1", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_tune_refuses_a_storage_that_is_a_folder_or_not_a_database(tmp_path, capsys):
    common = ["tune", "--dataset", "ml-1m", "--data-dir", str(tmp_path), "--no-download", "--budget-minutes", "1"]
    assert main([*common, "--storage", f"sqlite:///{tmp_path}"]) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "notes.db").write_text("not a database")
    assert main([*common, "--storage", f"sqlite:///{tmp_path / 'notes.db'}"]) == 2
    assert "is not a SQLite database" in capsys.readouterr().err
    assert (tmp_path / "notes.db").read_text() == "not a database"


def test_without_optuna_tune_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)   # as if it were not installed
    with pytest.raises(MissingToolError, match=r"pip install -e '\.\[tune\]'"):
        optuna_module()
    assert main(["tune", "--dataset", "ml-1m", "--data-dir", str(tmp_path), "--budget-minutes", "1"]) == 2
    assert capsys.readouterr().err.strip() == "error: Optuna is not installed: pip install -e '.[tune]'"


def test_the_tuning_module_imports_without_optuna():
    code = "import sys; sys.modules['optuna'] = None; import recnb.models.tuning; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_tune_on_the_synthetic_set_prints_the_trials_and_resumes_from_its_storage(synthetic_dir, tmp_path, capsys):
    command = ["tune", "--dataset", "synthetic", "--data-dir", str(synthetic_dir.parent), "--no-download",
               "--budget-minutes", "10", "--trial-epochs", "1", "--storage", f"sqlite:///{tmp_path / 't.db'}",
               "--no-progress"]
    assert main([*command, "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert "study 'sasrec-synthetic'" in out and ": 2 trials" in out and "committed recipe" in out
    assert "python -m recnb train --dataset synthetic" in out or "The committed recipe is the best trial" in out
    assert main([*command, "--trials", "3"]) == 0
    out = capsys.readouterr().out
    assert ": 3 trials" in out and "trial 2 " in out
