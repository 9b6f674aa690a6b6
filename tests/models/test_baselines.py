"""The baselines: hand-built sequences for each rule, then the synthetic and real ML-1M data."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from recnb.cli import main
from recnb.data.split import evaluation_inputs, leave_one_out, pad_histories
from recnb.errors import InvalidArgumentError, NotFittedError
from recnb.evaluation.evaluator import evaluate_split
from recnb.models.baselines import (
    AR2,
    BASELINES,
    FavouriteGenre,
    Hybrid,
    MarkovChain,
    Popularity,
    make_baseline,
    pair_support,
    state_support_shares,
)


def seqs(*sequences):
    return [np.array(s, dtype=np.int64) for s in sequences]


def histories(*rows):
    return pad_histories(seqs(*rows))


def ranking(scores: torch.Tensor) -> torch.Tensor:
    """Item ids from best to worst (padding column left out), ties in id order."""
    return scores[:, 1:].argsort(dim=1, descending=True, stable=True) + 1


# Items 1..6. Popularity: 3 (4 times) > 1, 2 (3 times) > ...; after 1 comes 2 twice and 3 once.
TRAIN = seqs([1, 2, 5], [1, 2, 6], [1, 3], [4, 3, 6], [4, 3], [5, 3, 2])
N = 6


def test_markov_ranks_the_most_frequent_successor_first():
    model = MarkovChain(N).fit(TRAIN)
    scores = model.score(histories([1], [4], [5, 1]))
    assert ranking(scores)[:, 0].tolist() == [2, 3, 2]  # 2 follows 1 twice, 3 only once (though more popular)
    probs = model.next_item_probabilities(torch.tensor([1]))
    assert probs[0, 2] == pytest.approx(2 / 3) and probs[0, 3] == pytest.approx(1 / 3)
    assert model.transitions.layout == torch.sparse_csr and model.n_transitions == 8


def test_markov_breaks_ties_by_popularity_without_overturning_probabilities():
    model = MarkovChain(N).fit(TRAIN)
    order = ranking(model.score(histories([1])))[0].tolist()
    assert order[:2] == [2, 3]  # probabilities first
    rest = order[2:]  # items never seen after 1: by popularity, most popular first
    assert [model.counts[i] for i in rest] == sorted((model.counts[i] for i in rest), reverse=True)


def test_ar2_uses_the_pair_and_backs_off_to_the_first_order_chain():
    train = seqs([1, 2, 5], [3, 2, 6], [3, 2, 6], [4, 1])
    ar2, markov = AR2(N).fit(train), MarkovChain(N).fit(train)
    assert ar2.n_pair_states == 2  # (1, 2) and (3, 2): only the pairs seen
    batch = histories([1, 2], [3, 2], [4, 2], [2], [6, 1])
    scores = ar2.score(batch)
    assert ranking(scores)[:2, 0].tolist() == [5, 6]  # after (1, 2) comes 5, though 6 follows 2 more often
    backed_off = ar2.backoff_mask(batch)
    assert backed_off.tolist() == [False, False, True, True, True]
    assert torch.equal(ranking(scores[backed_off]), ranking(markov.score(batch[backed_off])))
    assert ar2.backoff_share == pytest.approx(3 / 5)


def test_ar2_matches_markov_for_unseen_pairs_on_real_data(ml1m, ml1m_split):
    ar2 = AR2(ml1m.n_items).fit(ml1m_split.train)
    markov = MarkovChain(ml1m.n_items).fit(ml1m_split.train)
    batch = pad_histories(evaluation_inputs(ml1m_split, "test")[0][:500])
    backed_off = ar2.backoff_mask(batch)
    assert 0 < backed_off.sum() < len(batch)
    assert torch.equal(ranking(ar2.score(batch[backed_off])), ranking(markov.score(batch[backed_off])))
    assert 0 < ar2.n_pair_states < ml1m.n_items ** 2 / 10  # only observed pairs are states


def test_genre_ties_go_to_the_most_recent_genre():
    # items 1, 2, 3: genre 1; items 4, 5, 6: genre 2
    model = FavouriteGenre(torch.tensor([0, 1, 1, 1, 2, 2, 2]), N).fit(TRAIN)
    batch = histories([1, 4], [4, 1], [1, 2, 4], [4, 1, 5, 2])
    assert model.favourite_genre(batch).tolist() == [2, 1, 1, 1]
    scores = model.score(batch)
    genre2, genre1 = [4, 5, 6], [1, 2, 3]
    assert scores[0, genre2].min() > scores[0, genre1].max()
    assert scores[1, genre1].min() > scores[1, genre2].max()
    assert ranking(scores)[1, :3].tolist() == [3, 1, 2]  # inside the genre, by popularity


def test_hybrid_at_alpha_one_and_zero_ranks_like_its_parts(synthetic):
    split = leave_one_out(synthetic.sequences)
    parts = {1.0: MarkovChain(synthetic.n_items), 0.0: Popularity(synthetic.n_items)}
    for alpha, part in parts.items():
        part.fit(split.train)
        hybrid = Hybrid(synthetic.n_items, alpha=alpha).fit(split.train)
        batch = pad_histories(evaluation_inputs(split, "test")[0])
        assert torch.equal(ranking(hybrid.score(batch)), ranking(part.score(batch)))
        assert np.array_equal(evaluate_split(hybrid, split).ranks, evaluate_split(part, split).ranks)


def test_chains_beat_popularity_on_the_planted_franchises(synthetic):
    split = leave_one_out(synthetic.sequences)
    hr = {name: evaluate_split(make_baseline(name, synthetic).fit(split.train), split, "test")["HR@10"]
          for name in BASELINES}
    assert hr["markov"] > hr["popularity"] + 0.3
    assert hr["ar2"] > hr["popularity"] + 0.3
    assert hr["genre"] > hr["popularity"]  # the planted genre loyalty


def test_markov_far_above_popularity_on_ml1m(ml1m, ml1m_split):
    results = {name: evaluate_split(make_baseline(name, ml1m).fit(ml1m_split.train), ml1m_split, "test")
               for name in BASELINES}
    hr = {name: r["HR@10"] for name, r in results.items()}
    assert hr["markov"] > 3 * hr["popularity"]
    assert hr["ar2"] > 2 * hr["popularity"] and hr["hybrid"] > 2 * hr["popularity"]
    assert results["markov"]["NDCG@10"] > 3 * results["popularity"]["NDCG@10"]
    assert all(0 < h < 0.5 for h in hr.values())  # full ranking over ~3,400 items: far from solved


@pytest.mark.parametrize("name", BASELINES)
def test_padding_only_history_gets_popularity(name):
    data = SimpleNamespace(n_items=N, item_genre=torch.tensor([0, 1, 1, 1, 2, 2, 2]))
    model = make_baseline(name, data).fit(TRAIN)
    pop = Popularity(N).fit(TRAIN)
    empty = torch.zeros(2, 3, dtype=torch.int64)
    assert torch.equal(ranking(model.score(empty)), ranking(pop.score(empty)))
    assert model.score(torch.zeros(1, 1, dtype=torch.int64)).shape == (1, N + 1)  # shorter than two items


def test_chains_fit_on_sequences_too_short_for_them():
    ar2 = AR2(N).fit(seqs([1, 2], [3]))  # no three consecutive items: no pair state at all
    assert ar2.n_pair_states == 0 and ar2.backoff_mask(histories([1, 2])).tolist() == [True]
    markov = MarkovChain(N).fit(seqs([1, 2], [3]))
    assert torch.equal(ranking(ar2.score(histories([1, 2]))), ranking(markov.score(histories([1, 2]))))
    assert ranking(MarkovChain(N).fit(seqs([4])).score(histories([4])))[0, 0] == 4  # popularity only


def test_state_support_shares_count_the_states_seen_once_twice_and_so_on():
    # after item 5 comes something once; after 2, 3 and 4 twice; after 1 three times; nothing after 6 (no state)
    model = MarkovChain(N).fit(TRAIN)
    support = state_support_shares(model.row_totals.numpy())
    assert support.index.name == "times seen" and support.index.tolist() == [1, 2, 3]
    assert support["states"].tolist() == [1, 3, 1]
    np.testing.assert_allclose(support["share at most"], [0.2, 0.8, 1.0])
    # a count no state has keeps its row; the share never falls and ends at every state
    gaps = state_support_shares(np.array([0, 1, 1, 2, 5]))
    assert gaps["states"].tolist() == [2, 1, 0, 0, 1]
    assert gaps["share at most"].tolist() == [0.5, 0.75, 0.75, 0.75, 1.0]
    with pytest.raises(InvalidArgumentError, match="No state was seen"):
        state_support_shares(np.zeros(4))


def test_bad_input():
    data = SimpleNamespace(n_items=N, item_genre=torch.zeros(N + 1, dtype=torch.int64))
    with pytest.raises(ValueError, match="popularity, genre, markov, hybrid, ar2"):
        make_baseline("sasrec", data)
    for alpha in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
            make_baseline("hybrid", data, alpha=alpha)
    for name in BASELINES:
        with pytest.raises(NotFittedError, match=r"\.fit\(training_sequences\) before score"):
            make_baseline(name, data).score(histories([1, 2]))
    model = MarkovChain(N).fit(TRAIN)
    with pytest.raises(ValueError, match="Item ids must lie in 0..6"):
        model.score(histories([1, 7]))
    with pytest.raises(ValueError, match="integer tensor"):
        model.score(torch.ones(2, 3))
    with pytest.raises(ValueError, match="one genre per item"):
        FavouriteGenre(torch.zeros(3, dtype=torch.int64), N)
    with pytest.raises(NotFittedError, match=r"AR2\.fit"):
        AR2(N).backoff_mask(histories([1, 2]))
    with pytest.raises(RuntimeError):  # a NotFittedError is still the RuntimeError it was before it had a name
        Popularity(N).score(histories([1, 2]))


def test_what_fit_learns_is_refused_before_fit_with_the_call_named():
    genre = torch.tensor([0, 1, 1, 2, 2, 1, 2])
    uses = {
        r"MarkovChain\.fit\(training_sequences\) before n_transitions": lambda: MarkovChain(N).n_transitions,
        r"Hybrid\.fit\(training_sequences\) before next_item_probabilities\(\)":
            lambda: Hybrid(N).next_item_probabilities(torch.tensor([1])),
        r"FavouriteGenre\.fit\(training_sequences\) before favourite_genre\(\)":
            lambda: FavouriteGenre(genre, N).favourite_genre(histories([1, 3])),
        r"AR2\.fit\(training_sequences\) before n_pair_states": lambda: AR2(N).n_pair_states,
        r"AR2\.fit\(training_sequences\) before backoff_mask\(\)": lambda: AR2(N).backoff_mask(histories([1, 2])),
        r"AR2\.fit\(training_sequences\) before pair_support\(\)": lambda: pair_support(AR2(N), seqs([1, 2])),
    }
    for message, use in uses.items():
        with pytest.raises(NotFittedError, match=message):
            use()
    # after fit the same calls answer
    assert MarkovChain(N).fit(TRAIN).n_transitions > 0
    assert pair_support(AR2(N).fit(TRAIN), seqs([1, 2])).tolist() == [2]  # (1, 2) is followed twice in TRAIN


def test_cli_evaluate_on_synthetic(tmp_path, capsys):
    assert main(["evaluate", "--model", "markov", "--dataset", "synthetic", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Hit Rate @ 10: 0.")
    assert lines[1].startswith("NDCG@10: 0.") and lines[2].startswith("MRR: 0.")
    assert "fit" in lines[3] and "evaluation" in lines[3]
    assert main(["evaluate", "--model", "hybrid", "--alpha", "0.3", "--split", "valid", "--dataset", "synthetic",
                 "--data-dir", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "hybrid" and out["alpha"] == 0.3 and out["split"] == "valid" and out["users"] == 400
    assert main(["evaluate", "--model", "hybrid", "--alpha", "1.5", "--dataset", "synthetic",
                 "--data-dir", str(tmp_path)]) == 2
    assert "alpha must lie in [0, 1]" in capsys.readouterr().err
    assert main(["evaluate", "--model", "markov", "--alpha", "0.5", "--dataset", "synthetic",
                 "--data-dir", str(tmp_path)]) == 2
    assert "only to --model hybrid" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--model", "nope"])


def test_cli_evaluate_ml1m_json(ml1m_dir, capsys):
    code = main(["evaluate", "--model", "markov", "--dataset", "ml-1m", "--data-dir", str(ml1m_dir.parent),
                 "--no-download", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "markov" and out["dataset"] == "ml-1m" and out["split"] == "test"
    assert out["users"] == 6040 and 0.1 < out["metrics"]["HR@10"] < 0.3
    assert {"NDCG@10", "MRR"} <= out["metrics"].keys()
    assert out["wall_seconds"] >= out["fit_seconds"] + out["eval_seconds"] - 0.01
