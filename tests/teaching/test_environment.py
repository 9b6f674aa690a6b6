"""The environment report states the versions, device and data folder this process really has."""

from __future__ import annotations

import platform
from importlib import metadata

import numpy as np
import pandas as pd
import pytest
import torch

import recnb
from recnb.config import repository_root, resolve_data_dir
from recnb.teaching import environment


@pytest.fixture(scope="module")
def report():
    return environment.environment_report()


def test_versions_are_those_of_the_running_process(report):
    assert report.loc["Python", "value"] == platform.python_version()
    assert report.loc["recnb", "value"] == recnb.__version__
    assert report.loc["torch", "value"] == torch.__version__
    assert report.loc["numpy", "value"] == np.__version__
    assert report.loc["pandas", "value"] == pd.__version__
    assert report.loc["jupyterlab", "value"] == metadata.version("jupyterlab")
    assert report.loc["ipywidgets", "value"] == metadata.version("ipywidgets")
    assert {"matplotlib", "seaborn"} <= set(report.index)


def test_device_is_the_training_device(report):
    device = report.loc["device", "value"]
    assert device in {"cuda", "mps", "cpu"}
    assert device == environment.training_device().type
    if device == "cpu":
        assert "cores" in report.loc["device name", "value"]


def test_mixed_precision_rows_are_tested_booleans(report):
    assert isinstance(report.loc["fp16 autocast", "value"], bool)
    assert isinstance(report.loc["bf16 autocast", "value"], bool)
    if report.loc["device", "value"] == "cpu":
        assert report.loc["training autocast dtype", "value"] == "bfloat16"
        # torch runs bfloat16 autocast on any x86/ARM CPU, so the tried matmul must work here
        assert report.loc["bf16 autocast", "value"] is True
        assert environment.autocast_works("cpu", torch.bfloat16)


def test_autocast_check_fails_for_a_dtype_autocast_does_not_take():
    # float64 is not an autocast dtype: torch refuses it, and the check says so instead of raising
    assert environment.autocast_works("cpu", torch.float64) is False


def test_data_folder_and_ml1m_presence(monkeypatch, tmp_path):
    monkeypatch.setenv("RECNB_DATA_DIR", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    empty = environment.environment_report()
    # the folder is named as display_path names it, never by this machine's absolute path
    assert empty.loc["data folder", "value"] == "<data>"
    assert "RECNB_DATA_DIR" in empty.loc["data folder", "note"]
    assert empty.loc["ML-1M present", "value"] is False
    assert "downloads" in empty.loc["ML-1M present", "note"]

    (tmp_path / "ml-1m").mkdir()
    (tmp_path / "ml-1m" / "sequences.txt").write_text("1 1\n")
    present = environment.environment_report()
    assert present.loc["ML-1M present", "value"] is True
    assert present.loc["ML-1M present", "note"].startswith("<data>/ml-1m: sequences.txt")
    assert "order only" in present.loc["ML-1M present", "note"]


def test_report_shows_no_absolute_path(monkeypatch, tmp_path):
    monkeypatch.setenv("RECNB_DATA_DIR", str(tmp_path))
    (tmp_path / "ml-1m").mkdir()
    (tmp_path / "ml-1m" / "ratings.dat").write_text("1::1::5::1\n")
    report = environment.environment_report()
    text = report.to_string()
    assert str(tmp_path) not in text
    assert report.loc["ML-1M present", "note"] == "<data>/ml-1m: ratings.dat (ratings and timestamps)"


def test_data_dir_argument_is_shown_relative_to_the_repository(monkeypatch):
    monkeypatch.delenv("RECNB_DATA_DIR", raising=False)
    root = repository_root()
    if root is None:
        pytest.skip("recnb is not imported from its repository")
    report = environment.environment_report(data_dir=root / "data")
    assert report.loc["data folder", "value"] == "data"
    assert report.loc["data folder", "note"].startswith("given as data_dir")


def test_check_widgets_reports_installed_versions():
    widgets = environment.check_widgets()
    for name in ("ipywidgets", "jupyterlab_widgets", "widgetsnbextension", "jupyterlab"):
        assert widgets[name] == metadata.version(name)
    assert widgets["ok"] is True  # the project pins ipywidgets 8, which ships jupyterlab_widgets 3


def test_check_widgets_explains_a_mismatch(monkeypatch):
    versions = {"ipywidgets": "8.1.2", "jupyterlab_widgets": "1.1.7"}
    monkeypatch.setattr(environment, "package_version", lambda name: versions.get(name, "4.0.0"))
    widgets = environment.check_widgets()
    assert widgets["ok"] is False
    assert "needs jupyterlab_widgets 3.x, found 1.1.7" in widgets["advice"]

    versions["jupyterlab_widgets"] = "not installed"
    assert "jupyterlab_widgets" in environment.check_widgets()["advice"]
    assert environment.check_widgets()["ok"] is False
