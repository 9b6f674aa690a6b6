"""Figures of notebook 07, checked on small data."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from recnb.models.training import padding_share
from recnb.viz.training_plots import (  # noqa: E402
    plot_against_seed_band,
    plot_gradient_agreement,
    plot_learning_rate_schedule,
    plot_number_lines,
    plot_precision_comparison,
    plot_quality_over_time,
    plot_training_history,
)


def test_training_history_has_three_panels_and_marks_the_best_epoch():
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [7.0, 6.5, 6.4], "valid_NDCG@10": [0.05, 0.09, 0.08],
                            "valid_HR@10": [0.1, 0.16, 0.15], "lr": [1e-3, 1e-3, 5e-4]})
    fig = plot_training_history(history)
    assert len(fig.axes) == 3
    metric_axes = fig.axes[1]
    assert len(metric_axes.get_lines()) == 3  # two metrics and the best-epoch marker
    assert metric_axes.get_lines()[-1].get_xdata()[0] == 2


def test_training_history_of_several_runs_draws_one_line_per_run_on_one_panel():
    histories = {
        "causal": pd.DataFrame({"epoch": [1, 2, 3], "loss": [7.5, 6.9, 6.4], "valid_NDCG@10": [0.02, 0.04, 0.05]}),
        "leaky": pd.DataFrame({"epoch": [1, 2, 3], "loss": [7.4, 4.0, 1.2], "valid_NDCG@10": [0.02, 0.01, 0.01]}),
    }
    ax = plot_training_history(histories, "loss")
    lines = ax.get_lines()
    assert len(lines) == 2
    np.testing.assert_array_equal(lines[1].get_ydata(), [7.4, 4.0, 1.2])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["causal (last: 6.4)", "leaky (last: 1.2)"]
    ax = plot_training_history(histories, column="valid_NDCG@10")
    assert ax.get_ylabel() == "valid NDCG@10"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [0.02, 0.04, 0.05])
    with pytest.raises(ValueError, match="no column"):
        plot_training_history(histories, column="test_HR@10")
    with pytest.raises(ValueError, match="give column="):
        plot_training_history(histories)


def test_precision_comparison_bars():
    table = pd.DataFrame({"preset": ["compact", "compact"], "precision": ["fp32", "bf16 autocast"],
                          "seconds_per_epoch": [30.0, 42.0], "peak_memory_mib": [900.0, 700.0]})
    fig = plot_precision_comparison(table)
    heights = sorted(p.get_height() for p in fig.axes[0].patches if p.get_height() > 0)
    assert heights == [30.0, 42.0]


def test_gradient_agreement_and_schedule():
    values = np.linspace(-1, 1, 50)
    ax = plot_gradient_agreement(values, values)
    assert len(ax.collections[0].get_offsets()) == 50
    ax = plot_learning_rate_schedule(4, 10, 1, 2e-3)
    cosine = ax.get_lines()[1].get_ydata()
    assert max(cosine) == pytest.approx(2e-3) and cosine[-1] < 1e-4


def test_length_buckets_cut_padding():
    lengths = np.random.default_rng(0).integers(5, 200, 2000)
    random_share = padding_share(lengths, 128, False, 200)
    bucketed_share = padding_share(lengths, 128, True, 200)
    assert 0.3 < random_share < 0.7 and bucketed_share < random_share / 2


def test_number_lines_draw_each_format_from_its_smallest_subnormal_to_its_largest_value():
    limits = pd.DataFrame({"smallest subnormal": [1e-45, 6e-8], "smallest normal": [1e-38, 6e-5],
                           "largest": [3e38, 6.5e4]}, index=["fp32", "fp16"])
    fig = plot_number_lines(limits, {"1e-6": 1e-6})
    top = fig.axes[0]
    bars = sorted((p.get_y(), p.get_x(), p.get_x() + p.get_width()) for p in top.patches)
    fp16_sub, fp16_normal, fp32_sub, fp32_normal = bars  # fp16 is drawn lower (first row on top)
    assert fp16_sub[1] == pytest.approx(np.log10(6e-8)) and fp16_sub[2] == pytest.approx(np.log10(6e-5))
    assert fp16_normal[2] == pytest.approx(np.log10(6.5e4)) and fp32_sub[1] == pytest.approx(-45)
    assert fp32_normal[2] == pytest.approx(np.log10(3e38))
    assert [t.get_text() for t in top.get_yticklabels()] == ["fp16", "fp32"]
    assert any(np.allclose(line.get_xdata(), -6) for line in fig.axes[1].get_lines())


def test_quality_over_time_draws_a_line_per_run_and_the_target_and_budget():
    curves = pd.DataFrame({"run": ["a"] * 3 + ["b"] * 2, "minutes": [1.0, 2.0, 3.0, 0.5, 1.0],
                           "valid_HR@10": [0.2, 0.28, 0.31, 0.25, 0.3]})
    ax = plot_quality_over_time(curves, target=0.30, budget_minutes=2.5)
    assert [text.get_text() for text in ax.get_legend().texts] == ["a", "b"]
    drawn = {tuple(line.get_xdata()): tuple(line.get_ydata()) for line in ax.get_lines()}
    assert drawn[(1.0, 2.0, 3.0)] == (0.2, 0.28, 0.31) and drawn[(0.5, 1.0)] == (0.25, 0.3)
    assert any(ys == (0.3, 0.3) for ys in drawn.values())       # the target, across the axes
    assert (2.5, 2.5) in drawn                                   # the budget, up the axes


def test_runs_against_the_seed_band_draw_the_band_and_one_line_per_run():
    from recnb.teaching.training_logs import TrainingLog

    band = pd.DataFrame({"low": [0.10, 0.14], "mean": [0.11, 0.15], "high": [0.12, 0.16], "runs": 3},
                        index=pd.Index([1, 2], name="epoch"))
    history = pd.DataFrame({"epoch": [1, 2, 3], "valid_NDCG@10": [0.09, 0.15, 0.18]})
    run = TrainingLog("one change", None, {}, {}, history, None, None, None)
    ax = plot_against_seed_band(band, [run])
    assert [line.get_label() for line in ax.get_lines()] == ["one change"]
    assert tuple(ax.get_lines()[0].get_ydata()) == (0.09, 0.15, 0.18)
    band_polygon = ax.collections[0].get_paths()[0].vertices
    assert band_polygon[:, 1].min() == 0.10 and band_polygon[:, 1].max() == 0.16
    assert "3 seeds" in ax.get_legend().texts[0].get_text()
