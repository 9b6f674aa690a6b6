"""The speed/memory measurement used by notebook 07 and benchmarks/bench_sasrec.py (figures not asserted)."""

from recnb.benchmark import compare_precisions, time_training_steps
from recnb.data import read_dataset


def test_time_training_steps_reports_a_consistent_record(tmp_path):
    read_dataset("synthetic", tmp_path)  # writes the synthetic set once
    record = time_training_steps("synthetic", "quick", amp=True, steps=1, data_dir=str(tmp_path))
    assert record["precision"] == "bf16 autocast" and record["preset"] == "quick"
    assert record["seconds_per_step"] > 0 and record["seconds_per_epoch"] > 0
    assert record["peak_memory_mib"] > 50 and record["parameters"] > 1000


def test_compare_precisions_runs_each_variant_in_its_own_process(tmp_path):
    read_dataset("synthetic", tmp_path)
    table = compare_precisions(["quick"], steps=1, dataset="synthetic", data_dir=str(tmp_path))
    assert table["precision"].tolist() == ["fp32", "bf16 autocast"]
    assert (table["seconds_per_epoch"] > 0).all()
