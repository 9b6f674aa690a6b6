"""recnb's own errors share one base class; the CLI turns those into one line and lets real bugs through."""

from __future__ import annotations

import ast
import inspect
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recnb.errors as errors
from recnb.cli import main

PACKAGE = Path(errors.__file__).parent
ERROR_CLASSES = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if cls.__module__ == errors.__name__]


def test_every_error_is_a_recnb_error_and_still_its_builtin():
    builtins = (ValueError, FileNotFoundError, RuntimeError)
    assert len(ERROR_CLASSES) >= 10 and set(errors.__all__) == {cls.__name__ for cls in ERROR_CLASSES}
    for cls in ERROR_CLASSES:
        assert issubclass(cls, errors.RecnbError)
        if cls is not errors.RecnbError:  # code written against the built-ins keeps catching them
            assert issubclass(cls, builtins), cls


def test_modules_raise_the_shared_classes_not_copies():
    import recnb.data.download
    import recnb.data.preprocess
    import recnb.data.readers
    import recnb.models.baselines
    import recnb.models.checkpoints
    import recnb.models.recommend
    import recnb.teaching.widgets

    assert recnb.data.readers.DataFormatError is errors.DataFormatError
    assert recnb.data.download.ArchiveError is errors.ArchiveError
    assert recnb.data.download.DownloadError is errors.DownloadError
    assert recnb.data.preprocess.EmptyDatasetError is errors.EmptyDatasetError
    assert recnb.models.recommend.UnknownFilmError is errors.UnknownFilmError
    assert recnb.teaching.widgets.ExplorerInputError is errors.ExplorerInputError
    assert recnb.models.checkpoints.SplitMismatchError is errors.SplitMismatchError
    assert recnb.models.baselines.NotFittedError is errors.NotFittedError
    # and no module defines a public exception class of its own outside errors.py (the assignment checks aside:
    # their failures are for students' notebooks, not the command line)
    for path in PACKAGE.glob("*.py"):
        if path.name in ("errors.py", "checks.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):  # private signals stay inside
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                assert not any(b.endswith(("Error", "Exception")) for b in bases), f"{path.name}: {node.name}"


def test_the_command_line_raises_only_recnb_errors_on_purpose():
    """Every ``raise`` in cli.py names a recnb error: a bare ValueError there would be taken for a bug."""
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    raised = {node.exc.func.id for node in ast.walk(tree)
              if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name)}
    assert raised and raised <= {cls.__name__ for cls in ERROR_CLASSES}, raised


def test_a_bug_keeps_its_traceback_and_an_input_error_is_one_line(monkeypatch, capsys):
    def buggy(args):
        return {}["missing"]  # a KeyError: a bug, not a bad input

    monkeypatch.setattr("recnb.cli.run_stats", buggy)
    with pytest.raises(KeyError):
        main(["stats", "--dataset", "ml-1m"])

    def plain_value_error(args):
        raise ValueError("a library bug that happens to be a ValueError")

    monkeypatch.setattr("recnb.cli.run_stats", plain_value_error)
    with pytest.raises(ValueError, match="library bug"):
        main(["stats", "--dataset", "ml-1m"])

    def bad_input(args):
        raise errors.InvalidArgumentError("--thing must be positive.")

    monkeypatch.setattr("recnb.cli.run_stats", bad_input)
    assert main(["stats", "--dataset", "ml-1m"]) == 2
    assert capsys.readouterr().err == "error: --thing must be positive.\n"


def test_heads_that_do_not_divide_the_width_are_refused_before_any_data(tmp_path, capsys):
    code = main(["train", "--dataset", "ml-1m", "--data-dir", str(tmp_path), "--no-download", "--heads", "3",
                 "--checkpoint", str(tmp_path / "r.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "--heads 3 must divide the model width 64" in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- random numeric arguments
INT_FLAGS = {"--epochs": 1, "--batch-size": 1, "--accumulation": 1, "--patience": 1,
             "--d-model": 1, "--layers": 1, "--heads": 1, "--max-len": 1, "--seed": 0}
FLOAT_FLAGS = ("--lr", "--weight-decay", "--warmup-epochs", "--max-minutes", "--dropout", "--attention-dropout")
numbers = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True))


def _valid(values: dict) -> bool:
    """The documented rules of ``train``'s numbers (see its --help), written independently of cli.py."""
    for flag, low in INT_FLAGS.items():
        if flag in values and not (isinstance(values[flag], int) and values[flag] >= low):
            return False
    if not values.get("--seed", 0) <= 2**32 - 1:  # NumPy's seeding limit
        return False
    width, heads = values.get("--d-model", 64), values.get("--heads", 2)  # the compact preset's defaults
    if isinstance(width, int) and isinstance(heads, int) and width >= 1 and heads >= 1 and width % heads:
        return False
    finite = {flag: v for flag, v in values.items() if flag in FLOAT_FLAGS}
    if any(not math.isfinite(v) for v in finite.values()):
        return False
    return (finite.get("--lr", 1e-3) > 0 and finite.get("--weight-decay", 0) >= 0
            and finite.get("--warmup-epochs", 0) >= 0 and finite.get("--max-minutes", 1) > 0
            and 0 <= finite.get("--dropout", 0.1) < 1 and 0 <= finite.get("--attention-dropout", 0) < 1)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.dictionaries(st.sampled_from([*INT_FLAGS, *FLOAT_FLAGS]), numbers, max_size=4))
def test_random_numbers_give_one_clear_error_or_pass_the_checks(tmp_path, capsys, values):
    """Any numbers: argparse refuses non-integers for whole-number flags, the checks refuse the rest by name,
    and valid ones get as far as the (missing) data. Never a traceback, never a checkpoint."""
    checkpoint = tmp_path / "never.pt"
    argv = ["train", "--dataset", "ml-1m", "--data-dir", str(tmp_path / "empty"), "--no-download",
            "--checkpoint", str(checkpoint), "--no-progress"]
    for flag, value in values.items():
        argv += [f"{flag}={value!r}" if isinstance(value, float) else f"{flag}={value}"]
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse: "--epochs: invalid int value: '0.5'"
        code = exit_.code
        err = capsys.readouterr().err
        assert code == 2 and "invalid int value" in err
        assert any(isinstance(values[f], float) for f in INT_FLAGS if f in values)
        return
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert not checkpoint.exists()
    if _valid(values):
        assert "ml-1m" in err and "downloading is off" in err, err  # the checks passed: only the data are missing
    else:
        assert any(flag in err for flag in values), err  # the message names the flag at fault
