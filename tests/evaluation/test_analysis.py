"""The analyses behind the baseline notebooks, checked against the evaluator and against hand counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recnb.data.split import evaluation_inputs, leave_one_out
from recnb.evaluation import analysis
from recnb.evaluation.evaluator import evaluate, evaluate_split
from recnb.models import baselines, zoo
from recnb.models.baselines import AR2, Hybrid, MarkovChain, Popularity


@pytest.fixture(scope="module")
def synthetic_split(synthetic):
    return leave_one_out(synthetic.sequences)


def test_alpha_sweep_gives_exactly_the_hybrid_evaluator_figures(synthetic, synthetic_split):
    alphas = [0.0, 0.3, 1.0]
    sweep = zoo.alpha_sweep(synthetic.n_items, synthetic_split, alphas, which="valid", batch_size=64)
    assert list(sweep.index) == alphas and list(sweep.columns) == ["HR@10", "NDCG@10", "MRR"]
    for alpha in alphas:
        expected = evaluate_split(Hybrid(synthetic.n_items, alpha).fit(synthetic_split.train), synthetic_split,
                                  "valid").metrics
        assert sweep.loc[alpha].to_dict() == {m: expected[m] for m in sweep.columns}
    markov = evaluate_split(MarkovChain(synthetic.n_items).fit(synthetic_split.train), synthetic_split, "valid")
    assert sweep.loc[1.0, "HR@10"] == markov["HR@10"]
    popularity = evaluate_split(Popularity(synthetic.n_items).fit(synthetic_split.train), synthetic_split, "valid")
    assert sweep.loc[0.0, "MRR"] == popularity["MRR"]
    test = zoo.alpha_sweep(synthetic.n_items, synthetic_split, [1.0], which="test", metrics=["HR@5"])
    assert list(test.columns) == ["HR@5"]


def test_alpha_sweep_without_tie_break_blends_the_bare_chain(synthetic, synthetic_split):
    markov = MarkovChain(synthetic.n_items).fit(synthetic_split.train)
    histories, targets = evaluation_inputs(synthetic_split, "valid")

    def bare_blend(alpha):
        return lambda batch: (alpha * markov.next_item_probabilities(batch[:, -1])
                              + (1.0 - alpha) * markov.popularity)

    sweep = zoo.alpha_sweep(synthetic.n_items, synthetic_split, [0.5, 1.0], tie_break=False)
    for alpha in (0.5, 1.0):
        expected = evaluate(bare_blend(alpha), histories, targets).metrics
        assert sweep.loc[alpha, "MRR"] == pytest.approx(expected["MRR"], abs=1e-12)
        assert sweep.loc[alpha, "HR@10"] == expected["HR@10"]
    with_tie_break = zoo.alpha_sweep(synthetic.n_items, synthetic_split, [1.0])
    assert with_tie_break.loc[1.0, "HR@10"] >= sweep.loc[1.0, "HR@10"]  # pessimistic ties only cost


def test_alpha_sweep_rejects_bad_alphas_and_metrics(synthetic, synthetic_split):
    with pytest.raises(ValueError, match=r"weights in \[0, 1\]"):
        zoo.alpha_sweep(synthetic.n_items, synthetic_split, [0.5, 1.5])
    with pytest.raises(ValueError, match=r"weights in \[0, 1\]"):
        zoo.alpha_sweep(synthetic.n_items, synthetic_split, [])
    with pytest.raises(ValueError, match="Unknown metrics"):
        zoo.alpha_sweep(synthetic.n_items, synthetic_split, [0.5], metrics=["HR@7"])


def test_choose_alpha_takes_the_best_then_breaks_ties_by_the_next_metrics_then_the_grid_order():
    sweep = pd.DataFrame({"HR@10": [0.1, 0.3, 0.3, 0.3], "NDCG@10": [0.1, 0.1, 0.2, 0.2]},
                         index=pd.Index([0.0, 0.5, 0.9, 1.0], name="alpha"))
    assert zoo.choose_alpha(sweep) == 0.9  # HR ties between 0.5, 0.9 and 1.0; NDCG leaves 0.9 and 1.0
    assert zoo.choose_alpha(sweep, "NDCG@10") == 0.9


def test_tie_rank_bounds_put_the_target_after_or_before_equal_scores():
    histories = [np.array([1]), np.array([2, 3])]
    targets = np.array([4, 5])
    constant = lambda batch: torch.ones(len(batch), 7)  # noqa: E731 - every item ties: 7 ids, padding excluded
    pessimistic, optimistic = analysis.tie_rank_bounds(constant, histories, targets)
    # candidates: user 0 has items 2..6 (5), user 1 items 1, 4, 5, 6 (4); the pessimistic rank is the last
    assert pessimistic.tolist() == [5, 4] and optimistic.tolist() == [1, 1]
    evaluator = evaluate(constant, histories, targets).ranks
    assert np.array_equal(evaluator, pessimistic)  # the evaluator's rule is the pessimistic one


def test_metrics_by_group_computes_each_group_separately():
    ranks = {"a": np.array([1, 20, 3, 50]), "b": np.array([11, 2, 12, 1])}
    table = analysis.metrics_by_group(ranks, ["x", "y", "x", "y"])
    assert list(table.index) == ["x", "y"] and list(table.columns) == ["a", "b", "users"]
    assert table.loc["x", "a"] == 1.0 and table.loc["y", "a"] == 0.0
    assert table.loc["x", "b"] == 0.0 and table.loc["y", "b"] == 1.0
    assert table["users"].tolist() == [2, 2]
    assert list(analysis.metrics_by_group(ranks, ["x", "y", "x", "y"], order=["y", "x"]).index) == ["y", "x"]
    mrr = analysis.metrics_by_group(ranks, ["x", "y", "x", "y"], metric="MRR")
    assert mrr.loc["x", "a"] == pytest.approx((1 + 1 / 3) / 2)
    with pytest.raises(ValueError, match="3 ranks for 4"):
        analysis.metrics_by_group({"a": np.array([1, 2, 3])}, ["x"] * 4)
    with pytest.raises(ValueError, match="Unknown metric"):
        analysis.metrics_by_group(ranks, ["x"] * 4, metric="AUC")


def test_items_matching_finds_titles_by_pattern_and_skips_padding():
    items = pd.DataFrame({"title": ["<pad>", "Alien (1979)", "Aliens (1986)", "Alien Nation (1988)"],
                          "year": [pd.NA, 1979, 1986, 1988]}).rename_axis("item_id")
    assert analysis.items_matching(items, r"^alien(s| \()").index.tolist() == [1, 2]
    assert analysis.items_matching(items, "NATION")["title"].tolist() == ["Alien Nation (1988)"]
    assert analysis.items_matching(items, "pad").empty


def test_genre_counts_count_each_history_by_primary_genre():
    item_genre = torch.tensor([0, 1, 1, 2, 0])  # item 4 has no genre
    counts = analysis.genre_counts(item_genre, [np.array([1, 2, 3]), np.array([4, 3])])
    np.testing.assert_array_equal(counts, [[0, 2, 1], [1, 0, 1]])


def test_sparse_bytes_adds_up_the_three_arrays_of_a_csr_matrix(synthetic, synthetic_split):
    markov = MarkovChain(synthetic.n_items).fit(synthetic_split.train)
    entries = markov.n_transitions
    expected = (synthetic.n_items + 2) * 8 + entries * 8 + entries * 8  # int64 row pointers and columns, float64
    assert analysis.sparse_bytes(markov.transitions) == expected


def test_results_table_and_its_markdown(synthetic, synthetic_split):
    results = {name: evaluate_split(model.fit(synthetic_split.train), synthetic_split)
               for name, model in (("popularity", Popularity(synthetic.n_items)),
                                   ("markov", MarkovChain(synthetic.n_items)))}
    table = analysis.results_table(results, reference={"markov": 0.5})
    assert list(table.index) == ["popularity", "markov"]
    assert list(table.columns) == ["HR@10", "NDCG@10", "MRR", "reported HR@10"]
    assert table.loc["markov", "HR@10"] == results["markov"]["HR@10"]
    assert np.isnan(table.loc["popularity", "reported HR@10"])
    markdown = analysis.markdown_table(table, percent=["HR@10", "reported HR@10"])
    lines = markdown.splitlines()
    assert lines[0] == "| model | HR@10 | NDCG@10 | MRR | reported HR@10 |"
    assert lines[1] == "|---|---|---|---|---|"
    assert lines[3].startswith(f"| markov | {100 * results['markov']['HR@10']:.2f}% | ")
    assert lines[3].endswith("| 50.00% |") and lines[2].endswith("| – |")


def test_results_table_names_rows_and_compares_with_a_reference_model(synthetic, synthetic_split):
    results = {name: evaluate_split(model.fit(synthetic_split.train), synthetic_split)
               for name, model in (("popularity", Popularity(synthetic.n_items)),
                                   ("markov", MarkovChain(synthetic.n_items)))}
    table = analysis.results_table(results, ["HR@10"], names={"markov": "Markov chain"}, relative_to="popularity")
    assert list(table.index) == ["popularity", "Markov chain"]
    assert list(table.columns) == ["HR@10", "HR@10 vs popularity"]
    assert table.loc["popularity", "HR@10 vs popularity"] == 0
    expected = results["markov"]["HR@10"] / results["popularity"]["HR@10"] - 1
    assert table.loc["Markov chain", "HR@10 vs popularity"] == pytest.approx(expected)


def test_hit_rate_at_k_counts_ranks_at_or_below_each_cutoff():
    curves = analysis.hit_rate_at_k({"a": np.array([1, 3, 3, 8]), "b": np.array([2, 2])})
    assert curves.index.tolist() == list(range(1, 9))               # up to the largest rank of any entry
    assert curves["a"].tolist() == [0.25, 0.25, 0.75, 0.75, 0.75, 0.75, 0.75, 1.0]
    assert curves["b"].tolist() == [0.0] + [1.0] * 7
    assert analysis.hit_rate_at_k({"a": np.array([1, 3])}, max_k=2, names={"a": "A"})["A"].tolist() == [0.5, 0.5]


def test_rank_histogram_counts_users_per_bin_of_ranks_split_at_the_cut_off():
    # up to 6 candidates the log-spaced bins are single ranks
    table = analysis.rank_histogram(np.array([1, 2, 2, 3, 5, 6]), k=2, n_candidates=6)
    assert table["first rank"].tolist() == table["last rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert table["users"].tolist() == [1, 2, 1, 0, 1, 1]
    assert table["top K"].tolist() == [True, True, False, False, False, False]


def test_rank_histogram_bins_cover_every_rank_once_and_none_straddles_the_cut_off():
    ranks = np.array([1, 1, 2, 9, 10, 11, 40, 300, 900, 1000, 1200])
    table = analysis.rank_histogram(ranks, k=10, n_candidates=1000)  # 1200 is beyond the candidates: in no bin
    assert table["first rank"].iloc[0] == 1 and table["last rank"].iloc[-1] == 1000
    assert (table["first rank"].iloc[1:].to_numpy() == table["last rank"].iloc[:-1].to_numpy() + 1).all()
    assert 10 in table["last rank"].tolist() and table["top K"].tolist() == (table["last rank"] <= 10).tolist()
    assert table["users"].sum() == 10 and table.loc[table["top K"], "users"].sum() == 5
    assert (table["last rank"] - table["first rank"]).iloc[-1] > 10  # the far bins are wide (log scale)
    assert analysis.rank_histogram(ranks[:-1], k=10)["last rank"].iloc[-1] == 1000  # default: the largest rank


def test_pair_support_counts_the_last_pair_and_is_zero_where_ar2_backs_off():
    train = [np.array([1, 2, 5]), np.array([3, 2, 6]), np.array([3, 2, 6]), np.array([4, 1])]
    ar2 = AR2(6).fit(train)
    histories = [np.array([1, 2]), np.array([5, 3, 2]), np.array([4, 2]), np.array([2])]
    support = baselines.pair_support(ar2, histories)
    assert support.tolist() == [1, 2, 0, 0]
    backed_off = ar2.backoff_mask(torch.tensor([[0, 1, 2], [5, 3, 2], [0, 4, 2], [0, 0, 2]]))
    assert ((support == 0) == backed_off.numpy()).all()
