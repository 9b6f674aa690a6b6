"""The speed/memory measurement used by notebook 07 and benchmarks/bench_sasrec.py (figures not asserted)."""

import pytest

from recnb.data import read_dataset
from recnb.teaching.benchmark import compare_precisions, time_training_steps


def test_time_training_steps_reports_a_consistent_record(tmp_path):
    read_dataset("synthetic", tmp_path)  # writes the synthetic set once
    record = time_training_steps("synthetic", "quick", amp=True, steps=1, data_dir=str(tmp_path))
    assert record["precision"] == "bf16 autocast" and record["preset"] == "quick"
    assert record["seconds_per_step"] > 0 and record["seconds_per_epoch"] > 0
    assert record["peak_memory_mib"] > 50 and record["parameters"] > 1000


def test_step_and_epoch_figures_come_from_the_same_seconds_per_position(tmp_path):
    read_dataset("synthetic", tmp_path)
    record = time_training_steps("synthetic", "quick", steps=2, data_dir=str(tmp_path))
    per_position = record["microseconds_per_position"] / 1e6
    assert record["steps_timed"] == 2 and record["positions_timed"] > 0
    assert record["seconds_per_epoch"] == pytest.approx(per_position * record["positions_per_epoch"])
    assert record["seconds_per_epoch"] == pytest.approx(record["seconds_per_step"] * record["steps_per_epoch"])
    assert record["steps_per_epoch"] > 1


def test_compare_precisions_runs_each_variant_in_its_own_process(tmp_path):
    read_dataset("synthetic", tmp_path)
    table = compare_precisions(["quick"], steps=1, dataset="synthetic", data_dir=str(tmp_path), rounds=2)
    assert table["precision"].tolist() == ["fp32", "bf16 autocast"] and (table["rounds"] == 2).all()
    assert (table["seconds_per_epoch"] > 0).all()
    # Both variants time the same batches, so the per-step and per-epoch ratios agree.
    step_ratio = table["seconds_per_step"][1] / table["seconds_per_step"][0]
    epoch_ratio = table["seconds_per_epoch"][1] / table["seconds_per_epoch"][0]
    assert step_ratio == pytest.approx(epoch_ratio)
    assert table["positions_timed"].nunique() == 1


def test_an_all_windows_epoch_counts_every_training_interaction(ml1m_dir, ml1m_split):
    train = ml1m_split.train
    assert max(len(s) for s in train) > 51  # many ML-1M histories are longer than the quick preset's max_len
    common = dict(dataset="ml-1m", preset="quick", steps=1, data_dir=str(ml1m_dir.parent))
    newest = time_training_steps(**common)
    every = time_training_steps(**common, all_windows=True)
    assert every["all_windows"] and not newest["all_windows"]
    assert every["positions_per_epoch"] == sum(len(s) - 1 for s in train if len(s) >= 2)
    assert newest["positions_per_epoch"] == sum(min(len(s) - 1, 50) for s in train if len(s) >= 2)


def test_each_variant_keeps_its_fastest_round(monkeypatch):
    import json
    import types

    import recnb.teaching.benchmark as benchmark

    timings = iter([300.0, 500.0, 200.0, 700.0, 250.0, 400.0])  # fp32, bf16 alternately, three rounds

    def fake_run(command, **kwargs):
        record = {"precision": "bf16 autocast" if "--amp" in command else "fp32",
                  "microseconds_per_position": next(timings)}
        return types.SimpleNamespace(returncode=0, stdout=json.dumps(record) + "\n", stderr="")

    monkeypatch.setattr(benchmark.subprocess, "run", fake_run)
    table = benchmark.compare_precisions(["quick"], rounds=3)
    assert table["microseconds_per_position"].tolist() == [200.0, 400.0]


def test_choose_allocator_says_which_allocator_the_benchmark_measures():
    import platform
    import subprocess
    import sys

    from recnb.teaching.benchmark import choose_allocator

    assert "default" in choose_allocator(default=True)   # and changes nothing in this process
    code = "from recnb.teaching.benchmark import choose_allocator; print(choose_allocator())"
    line = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert ("freed memory kept" in line) is glibc
