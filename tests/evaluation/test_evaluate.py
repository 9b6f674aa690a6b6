"""The one evaluator: hand-computed cases, ties, masking, an oracle, the worst model, and the sampled protocol."""

import math

import numpy as np
import pytest
import torch

from recnb.data.split import evaluation_inputs
from recnb.errors import InvalidArgumentError
from recnb.evaluation.evaluator import (
    as_scorer,
    evaluate,
    evaluate_split,
    in_input_order,
    score_batches,
    top_columns,
    top_k,
)
from recnb.evaluation.metrics import metrics_from_ranks, ndcg
from recnb.models.baselines import Popularity


class Fixed:
    """Scores given as a table: row b is what the model says for history b."""

    def __init__(self, scores):
        self.scores = torch.as_tensor(scores, dtype=torch.float32)

    def score(self, histories):
        return self.scores[: len(histories)]


def test_hand_computed_ranks_and_metrics():
    # 5 items (ids 1..5). Scores favour item 5, then 4, ...
    scores = [[0, 1, 2, 3, 4, 5]] * 3
    histories = [np.array([5]), np.array([1]), np.array([2, 3])]
    targets = [4, 2, 1]
    result = evaluate(Fixed(scores), histories, targets, ks=(1, 2, 3))
    # user 0: 5 is masked (seen) -> 4 is first; user 1: 5,4,3 beat 2 -> rank 4;
    # user 2: 2 and 3 masked -> 5,4 beat 1 -> rank 3
    assert result.ranks.tolist() == [1, 4, 3]
    m = result.metrics
    assert m["HR@1"] == pytest.approx(1 / 3) and m["HR@3"] == pytest.approx(2 / 3)
    assert m["NDCG@3"] == pytest.approx((1 + 0 + 1 / math.log2(4)) / 3)
    assert m["MRR"] == pytest.approx((1 + 1 / 4 + 1 / 3) / 3)
    assert m["MRR@3"] == pytest.approx((1 + 0 + 1 / 3) / 3)


def test_without_masking_seen_items_compete():
    scores = [[0, 1, 2, 3, 4, 5]]
    result = evaluate(Fixed(scores), [np.array([5])], [4], mask_seen=False)
    assert result.ranks.tolist() == [2]


def test_ties_are_ranked_pessimistically():
    # every item scores the same: the target goes after all 4 other candidates
    result = evaluate(Fixed([[0, 1, 1, 1, 1, 1]]), [np.array([1])], [3])
    assert result.ranks.tolist() == [4]  # 4 unseen items: 2, 3, 4, 5 -> target last
    # a tie with exactly one other item
    result = evaluate(Fixed([[0, 1, 7, 7, 2, 3]]), [np.array([1])], [3])
    assert result.ranks.tolist() == [2]


def test_padding_column_is_never_a_candidate():
    # a huge score on column 0 (padding) must not push the target down
    result = evaluate(Fixed([[100, 1, 2, 3]]), [np.array([1])], [3])
    assert result.ranks.tolist() == [1]


def test_target_seen_before_is_still_ranked():
    result = evaluate(Fixed([[0, 5, 1, 2]]), [np.array([1, 3])], [1])
    assert result.ranks.tolist() == [1]


def test_k_larger_than_the_catalogue():
    result = evaluate(Fixed([[0, 3, 2, 1]]), [np.array([1])], [3], ks=(10, 1000))
    assert result.ranks.tolist() == [2]
    assert result["HR@1000"] == 1.0 and result["NDCG@1000"] == pytest.approx(1 / math.log2(3))


def test_oracle_scores_one_and_worst_model_gets_the_minimum(ml1m, ml1m_split):
    n_columns = ml1m.n_items + 1
    test_targets = torch.as_tensor(ml1m_split.test)

    # the oracle knows each user's target by the user's history (the evaluator may score users in any order)
    inputs, _ = evaluation_inputs(ml1m_split, "test")
    target_of = {tuple(history[-50:].tolist()): target for history, target in zip(inputs, test_targets.tolist())}
    assert len(target_of) == len(inputs)   # the last 50 films tell every user apart

    class Oracle:
        def score(self, histories):
            scores = torch.zeros(len(histories), n_columns)
            batch = [target_of[tuple(row[row != 0][-50:].tolist())] for row in histories]
            scores[torch.arange(len(histories)), torch.tensor(batch)] = 1.0
            return scores

    oracle = evaluate_split(Oracle(), ml1m_split, "test", batch_size=1000)
    assert all(value == 1.0 for value in oracle.metrics.values())

    class Worst(Oracle):
        def score(self, histories):
            return -super().score(histories)

    worst = evaluate_split(Worst(), ml1m_split, "test", batch_size=1000)
    histories_len = np.array([len(h) + 1 for h in ml1m_split.train])  # test input = train + valid
    expected = ml1m.n_items - histories_len  # every unseen item, the target last
    assert worst.ranks.tolist() == expected.tolist()
    assert worst["HR@10"] == 0.0 and worst["MRR"] == pytest.approx(np.mean(1 / expected))


def test_batch_size_does_not_change_results(ml1m, ml1m_split):
    pop = Popularity(ml1m.n_items).fit(ml1m_split.train)
    a = evaluate_split(pop, ml1m_split, "test", batch_size=97)
    b = evaluate_split(pop, ml1m_split, "test", batch_size=4096)
    assert np.array_equal(a.ranks, b.ranks)


def test_sampled_protocol_is_seeded_and_kinder(ml1m, ml1m_split):
    pop = Popularity(ml1m.n_items).fit(ml1m_split.train)
    full = evaluate_split(pop, ml1m_split, "test")
    s1 = evaluate_split(pop, ml1m_split, "test", protocol="sampled", batch_size=300)
    s2 = evaluate_split(pop, ml1m_split, "test", protocol="sampled", batch_size=5000)
    s3 = evaluate_split(pop, ml1m_split, "test", protocol="sampled", seed=1)
    assert np.array_equal(s1.ranks, s2.ranks)  # same seed: same negatives, whatever the batching
    assert not np.array_equal(s1.ranks, s3.ranks)
    assert s1.ranks.max() <= 101 and s1.ranks.min() >= 1
    assert s1["HR@10"] > 5 * full["HR@10"]  # why papers' sampled numbers look so much higher
    assert "sampled (100 negatives" in s1.protocol and full.protocol == "full ranking"


def test_sampled_negatives_are_unseen_and_distinct():
    # 6 items; user saw 1 and 2; target 3 -> negatives can only be 4, 5, 6
    scores = torch.tensor([[0, 9, 9, 1, 2, 0, 0]], dtype=torch.float32)
    result = evaluate(Fixed(scores), [np.array([1, 2])], [3], protocol="sampled", n_negatives=100)
    assert result.ranks.tolist() == [2]  # only item 4 beats it; fewer than 100 negatives exist


def test_bad_input_gets_clear_errors():
    model = Fixed([[0, 1, 2]])
    with pytest.raises(ValueError, match="one target per history"):
        evaluate(model, [np.array([1])], [1, 2])
    with pytest.raises(ValueError, match="0 is padding"):
        evaluate(model, [np.array([1])], [0])
    with pytest.raises(ValueError, match="another data set"):
        evaluate(model, [np.array([1])], [7])
    with pytest.raises(ValueError, match="NaN"):
        evaluate(Fixed([[0, float("nan"), 1]]), [np.array([1])], [2])
    with pytest.raises(ValueError, match="protocol"):
        evaluate(model, [np.array([1])], [2], protocol="sampled-50")


def test_metric_functions():
    assert metrics_from_ranks([1, 2], ks=(1,))["HR@1"] == 0.5
    assert ndcg([3], 2) == 0.0
    with pytest.raises(ValueError, match="start at 1"):
        metrics_from_ranks([0])


def test_plain_function_is_a_model_and_max_len_limits_the_input():
    seen_widths = []

    def last_item_lover(histories):
        seen_widths.append(histories.shape[1])
        scores = torch.zeros(len(histories), 6)
        scores[torch.arange(len(histories)), (histories[:, -1] % 5) + 1] = 1
        return scores

    result = evaluate(last_item_lover, [np.array([1, 2, 3, 4])], [5], max_len=2)
    assert seen_widths == [2] and result.ranks.tolist() == [1]


def test_as_scorer_takes_a_score_method_or_a_function_and_refuses_anything_else():
    model = Popularity(4).fit([np.array([1, 2, 2])])
    histories = torch.tensor([[0, 1]])
    assert torch.equal(as_scorer(model)(histories), model.score(histories))

    def constant(padded):
        return torch.ones(len(padded), 5)

    assert as_scorer(constant) is constant
    with pytest.raises(InvalidArgumentError, match="not a model"):
        as_scorer(42)


def test_score_batches_covers_every_user_once_in_eval_mode_and_restores_training():
    calls = []

    class Dropout(torch.nn.Module):   # a torch module whose scores say whether it was in training mode
        def score(self, padded):
            calls.append((self.training, torch.is_grad_enabled()))
            return torch.zeros(len(padded), 4)

    model = Dropout().train()
    histories = [np.array([1]), np.array([2, 3]), np.array([3]), np.array([1, 2, 3])]
    batches = list(score_batches(model, histories, batch_size=3))
    # shortest histories first, so a batch holds similar lengths; rows say which users, to put results back
    assert [rows.tolist() for rows, _, _ in batches] == [[0, 2, 1], [3]]
    assert batches[0][1].tolist() == [[0, 1], [0, 3], [2, 3]]        # whole histories, left-padded
    assert batches[1][1].tolist() == [[1, 2, 3]]
    back = in_input_order([(rows, padded[:, -1]) for rows, padded, _ in batches], len(histories))
    assert back.tolist() == [1, 3, 3, 3]                               # each user's last item, in input order
    assert calls == [(False, False), (False, False)] and model.training
    with pytest.raises(ValueError, match="NaN"):
        list(score_batches(lambda padded: torch.full((len(padded), 4), float("nan")), histories))


def test_top_columns_breaks_ties_by_the_lower_column_and_skips_what_is_not_allowed():
    scores = torch.tensor([[0.0, 2.0, 1.0, 2.0, 1.0, -torch.inf]])
    allowed = torch.tensor([[False, True, True, False, True, True]])
    assert top_columns(scores, 3, allowed).tolist() == [[1, 2, 4]]    # 1 alone at 2.0 (3 is not allowed), then 2 = 4
    assert top_columns(scores, 6, allowed).tolist() == [[1, 2, 4, 5, -1, -1]]   # -inf last; no more: -1
    assert top_columns(scores, 4).tolist() == [[1, 3, 2, 4]]


def test_top_k_leaves_out_padding_and_seen_items_and_fills_with_padding():
    model = Popularity(6).fit([np.array([1, 2, 2, 3, 3, 3, 4])])   # popularity: 3 > 2 > 1 = 4 > 5 = 6
    assert top_k(model, [np.array([2])], 3).tolist() == [[3, 1, 4]]   # 2 is seen; 1 and 4 tie: id order
    assert top_k(model, [np.array([2])], 2, exclude_seen=False).tolist() == [[3, 2]]
    items, scores = top_k(model, [np.array([1, 2, 3, 4, 5])], 3, with_scores=True)
    assert items.tolist() == [[6, 0, 0]] and scores[0, 1] == -np.inf
