"""The final comparison: every model through the one evaluator, the table, the analyses and the chart."""

import numpy as np
import pandas as pd
import pytest
import torch

from recnb.baselines import item_counts
from recnb.cli import main
from recnb.comparison import (PUBLISHED, comparison_table, default_checkpoint, evaluate_models, fit_models,
                              format_table, hit_rate_at_k, history_length_groups, metrics_by,
                              recommendation_profile, target_popularity_groups, top_k_items, write_csv)
from recnb.comparison_plots import (plot_comparison_chart, plot_hit_rate_at_k, plot_metric_by_group,
                                    plot_recommendation_profile)
from recnb.evaluate import evaluate_split
from recnb.split import evaluation_inputs
from recnb.train import load_checkpoint


@pytest.fixture(scope="module")
def sasrec(ml1m):
    return load_checkpoint(default_checkpoint(), ml1m)[0]


@pytest.fixture(scope="module")
def results(ml1m, ml1m_split, sasrec):
    models = fit_models(ml1m, ml1m_split, sasrec=sasrec)
    return models, evaluate_models(models, ml1m_split, progress=False)


def test_every_model_is_evaluated_on_the_same_users_and_sasrec_leads(ml1m_split, results):
    models, evaluated = results
    assert list(evaluated) == ["popularity", "genre", "markov", "hybrid", "ar2", "sasrec"]
    assert all(len(r.ranks) == ml1m_split.n_users for r in evaluated.values())
    # the hybrid's alpha was chosen on validation from the grid, not left at the class default
    assert models["hybrid"].alpha == pytest.approx(0.9)
    table = comparison_table(evaluated)
    assert table.index.tolist()[-1] == "SASRec"
    assert table["HR@10"].idxmax() == "SASRec" and table["NDCG@10"].idxmax() == "SASRec"
    assert table.loc["Popularity", "HR@10 vs popularity"] == 0
    markov = evaluated["markov"].metrics["HR@10"] / evaluated["popularity"].metrics["HR@10"] - 1
    assert table.loc["Markov chain", "HR@10 vs popularity"] == pytest.approx(markov)
    text = format_table(table)
    assert "SASRec" in text and "+0%" in text


def test_hit_rate_curves_and_groups_agree_with_the_ranks(ml1m, ml1m_split, results):
    _, evaluated = results
    curves = hit_rate_at_k(evaluated, max_k=50)
    assert curves.shape == (50, 6)
    assert (curves.diff().dropna() >= 0).all().all()  # HR@K never falls as K grows
    assert curves.loc[10, "SASRec"] == pytest.approx(evaluated["sasrec"].metrics["HR@10"])
    groups, labels = history_length_groups(ml1m_split)
    by_length = metrics_by(evaluated, groups, labels)
    assert by_length["users"].sum() == ml1m_split.n_users
    histories, _ = evaluation_inputs(ml1m_split, "test")
    short = np.array([len(h) < 50 for h in histories])
    assert by_length.loc["0–49", "users"] == short.sum()
    assert by_length.loc["0–49", "SASRec"] == pytest.approx((evaluated["sasrec"].ranks[short] <= 10).mean())
    popular, labels = target_popularity_groups(ml1m_split, ml1m.n_items)
    by_popularity = metrics_by(evaluated, popular, labels)
    assert labels[0] == "top 1%" and by_popularity["users"].sum() == ml1m_split.n_users
    # popularity finds popular targets far more often than rare ones
    assert by_popularity.loc["top 1%", "Popularity"] > by_popularity.loc[labels[-1], "Popularity"]


def test_recommendation_profile_counts_what_models_show(ml1m, ml1m_split, results):
    models, _ = results
    small = {name: models[name] for name in ("popularity", "markov")}
    profile = recommendation_profile(small, ml1m_split, ml1m.n_items)
    histories, _ = evaluation_inputs(ml1m_split, "test")
    top = top_k_items(models["popularity"], histories, 10)
    assert top.shape == (ml1m_split.n_users, 10)
    assert not any(set(row) & set(h) for row, h in zip(top[:200], histories[:200]))  # seen items never shown
    counts = item_counts(ml1m_split.train, ml1m.n_items).numpy()
    assert profile.loc["Popularity", "mean popularity"] == pytest.approx(counts[top].mean())
    assert profile.loc["Popularity", "distinct items"] == len(np.unique(top))
    # popularity shows a sliver of the catalogue; the chain spreads much wider
    assert profile.loc["Popularity", "coverage"] < 0.1 < profile.loc["Markov chain", "coverage"]


def test_chart_has_one_labelled_bar_per_model(results):
    _, evaluated = results
    table = comparison_table(evaluated)
    ax = plot_comparison_chart(table, references={"published SASRec": PUBLISHED[next(iter(PUBLISHED))]["HR@10"]})
    assert len(ax.patches) == len(table)
    assert [t.get_text() for t in ax.texts if t.get_text().endswith("%")][:len(table)] == \
        [f"{v:.1%}" for v in table["HR@10"]]
    plot_hit_rate_at_k(hit_rate_at_k(evaluated, 20))
    plot_metric_by_group(pd.DataFrame({"A": [0.1, 0.2], "SASRec": [0.2, 0.3], "users": [5, 6]}, index=["x", "y"]))
    plot_recommendation_profile(pd.DataFrame({"coverage": [0.1, 0.5], "mean popularity": [900.0, 300.0]},
                                             index=["Popularity", "SASRec"]))


def test_write_csv_round_trips_and_leaves_no_temporary_file(tmp_path):
    table = pd.DataFrame({"HR@10": [0.1, 0.3]}, index=pd.Index(["a", "b"], name="model"))
    path = write_csv(table, tmp_path / "out" / "comparison.csv")
    assert pd.read_csv(path, index_col="model")["HR@10"].tolist() == [0.1, 0.3]
    assert [p.name for p in path.parent.iterdir()] == ["comparison.csv"]
    assert path.stat().st_mode & 0o044  # readable by others, like any file the user writes


def test_compare_cli_writes_table_and_chart(ml1m_dir, tmp_path, capsys):
    csv, chart = tmp_path / "c.csv", tmp_path / "c.png"
    code = main(["compare", "--dataset", "ml-1m", "--data-dir", str(ml1m_dir.parent), "--no-download",
                 "--alpha", "0.9", "--csv", str(csv), "--chart", str(chart)])
    assert code == 0
    out = capsys.readouterr().out
    table = pd.read_csv(csv, index_col="model")
    assert table.index.tolist() == ["Popularity", "Favourite genre", "Markov chain", "Markov + popularity",
                                    "AR(2) chain", "SASRec"]
    assert table["HR@10"].idxmax() == "SASRec"
    assert "HR@10 vs popularity" in out and chart.stat().st_size > 20_000


def test_compare_cli_rejects_a_checkpoint_for_other_data(synthetic_dir, tmp_path, capsys):
    code = main(["compare", "--dataset", "synthetic", "--data-dir", str(synthetic_dir.parent), "--no-download",
                 "--checkpoint", str(default_checkpoint()), "--csv", str(tmp_path / "c.csv"),
                 "--chart", str(tmp_path / "c.png")])
    assert code == 2
    assert "trained on 'ml-1m'" in capsys.readouterr().err
    assert not (tmp_path / "c.csv").exists()
    assert main(["compare", "--train", "--checkpoint", "x.pt"]) == 2


def test_same_evaluator_as_evaluate_split(ml1m_split, results):
    models, evaluated = results
    again = evaluate_split(models["ar2"], ml1m_split, "test")
    assert np.array_equal(again.ranks, evaluated["ar2"].ranks)
    assert torch.is_tensor(models["sasrec"].item_embedding.weight)


def test_compare_cli_can_train_sasrec_with_the_committed_recipe(synthetic_dir, tmp_path, capsys):
    csv = tmp_path / "c.csv"
    code = main(["compare", "--dataset", "synthetic", "--data-dir", str(synthetic_dir.parent), "--no-download",
                 "--train", "--epochs", "2", "--csv", str(csv), "--chart", str(tmp_path / "c.png")])
    assert code == 0
    out = capsys.readouterr().out
    assert "SASRec: trained now (2 epochs)" in out
    assert "Epoch 2 | Loss:" in out  # the recipe ran both epochs (patience equals the epochs)
    table = pd.read_csv(csv, index_col="model")
    assert 0 <= table.loc["SASRec", "HR@10"] <= 1 and table.loc["SASRec", "NDCG@10"] <= table.loc["SASRec", "HR@10"]
