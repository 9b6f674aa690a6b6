"""Full ranking and top K in item chunks: the same ranks and lists as scoring every item at once."""

import numpy as np
import pytest
import torch

from recnb.data.split import evaluation_inputs
from recnb.errors import InvalidArgumentError
from recnb.evaluation.evaluator import (
    candidate_mask,
    chunk_candidates,
    chunking,
    evaluate,
    item_scorer,
    items_per_chunk,
    top_k,
)
from recnb.models.checkpoints import load_checkpoint
from tests.helpers import REPO, TINY_N_ITEMS, tiny_sasrec

CHECKPOINT = REPO / "checkpoints" / "sasrec_compact_ml1m.pt"


def random_histories(n_users=40, seed=0, longest=25):
    rng = np.random.default_rng(seed)
    histories = [rng.integers(1, TINY_N_ITEMS + 1, size=int(rng.integers(1, longest))) for _ in range(n_users)]
    targets = rng.integers(1, TINY_N_ITEMS + 1, size=n_users)
    return histories, targets


def test_ml1m_checkpoint_ranks_the_same_in_chunks(ml1m, ml1m_split):
    """The committed checkpoint on 700 ML-1M test users: every rank, metric and top-10 list the same."""
    model, _ = load_checkpoint(CHECKPOINT, ml1m)
    histories, targets = evaluation_inputs(ml1m_split, "test")
    histories, targets = histories[::9], targets[::9]
    whole = evaluate(model, histories, targets, batch_size=256)
    assert chunking(model, 256) is None            # ML-1M fits the default budget: scored as always
    for chunk in (1000, 3416):                      # four chunks; two, the second holding one item
        chunked = evaluate(model, histories, targets, batch_size=256, item_chunk=chunk)
        assert np.array_equal(chunked.ranks, whole.ranks) and chunked.metrics == whole.metrics
    ids, scores = top_k(model, histories[:200], 10, with_scores=True)
    chunked_ids, chunked_scores = top_k(model, histories[:200], 10, with_scores=True, item_chunk=700)
    assert np.array_equal(chunked_ids, ids) and np.array_equal(chunked_scores, scores)
    assert whole.metrics["NDCG@10"] > 0.1 and len(histories) > 650


@pytest.mark.parametrize("head", [dict(), dict(item_bias=True), dict(tied_head=False)])
@pytest.mark.parametrize("mask_seen", [True, False])
def test_a_catalogue_larger_than_one_chunk_ranks_the_same(head, mask_seen):
    model = tiny_sasrec(**head)
    if model.output_bias is not None:   # a bias far from 0, so a chunk that took another item's would show
        torch.nn.init.normal_(model.output_bias, 0, 3.0)
    histories, targets = random_histories()
    whole = evaluate(model, histories, targets, batch_size=16, mask_seen=mask_seen, max_len=8)
    for chunk in (1, 7, TINY_N_ITEMS):
        chunked = evaluate(model, histories, targets, batch_size=16, mask_seen=mask_seen, max_len=8,
                           item_chunk=chunk)
        assert np.array_equal(chunked.ranks, whole.ranks)
        assert np.array_equal(top_k(model, histories, 6, exclude_seen=mask_seen, item_chunk=chunk),
                              top_k(model, histories, 6, exclude_seen=mask_seen))
    # a memory budget far below one batch's scores chooses chunks itself
    assert chunking(model, 16, memory_mib=0.001)[1] == 8      # 1,048 bytes / (8 bytes x 16 users)
    budgeted = evaluate(model, histories, targets, batch_size=16, mask_seen=mask_seen, max_len=8, memory_mib=0.001)
    assert np.array_equal(budgeted.ranks, whole.ranks)


def test_ties_and_short_lists_follow_the_one_tie_rule_across_chunks():
    """Every item scores the same: ranks are pessimistic and lists go by item id, whatever the chunks."""
    model = tiny_sasrec()
    with torch.no_grad():
        model.item_embedding.weight.zero_()
    histories = [np.arange(1, TINY_N_ITEMS - 2), np.array([5, 9, 3]), np.array([TINY_N_ITEMS, 1])]
    targets = np.array([2, 12, 7])                      # the first user saw the target: it is ranked anyway
    whole = evaluate(model, histories, targets)
    chunked = evaluate(model, histories, targets, item_chunk=4)
    assert np.array_equal(chunked.ranks, whole.ranks)
    assert whole.ranks.tolist() == [4, TINY_N_ITEMS - 3, TINY_N_ITEMS - 2]   # last among the allowed
    ids, scores = top_k(model, histories, 6, with_scores=True)
    chunked_ids, chunked_scores = top_k(model, histories, 6, with_scores=True, item_chunk=4)
    assert np.array_equal(chunked_ids, ids) and np.array_equal(chunked_scores, scores)
    assert ids[0].tolist() == [TINY_N_ITEMS - 2, TINY_N_ITEMS - 1, TINY_N_ITEMS, 0, 0, 0]  # filled with padding
    assert ids[1].tolist() == [1, 2, 4, 6, 7, 8] and np.isneginf(scores[0, 3:]).all()


def test_chunk_candidates_are_candidate_masks_columns():
    histories = torch.tensor([[0, 0, 3, 7], [1, 2, 3, 9], [0, 0, 0, 10]])
    for mask_seen in (True, False):
        whole = candidate_mask(histories, None, 11, mask_seen)
        parts = torch.cat([chunk_candidates(histories, start, min(start + 3, 11), mask_seen)
                           for start in range(0, 11, 3)], dim=1)
        assert torch.equal(parts, whole)


def test_models_without_item_slices_are_scored_as_always():
    model = tiny_sasrec()
    histories, targets = random_histories()
    plain = evaluate(model.score, histories, targets, item_chunk=3)   # a function: no item slices
    assert item_scorer(model.score) is None and item_scorer(model) is model
    assert np.array_equal(plain.ranks, evaluate(model, histories, targets).ranks)

    class Halves:
        """A model of its own that scores slices: the SASRec's scores, halved."""

        n_columns = TINY_N_ITEMS + 1

        def score(self, batch):
            return model.score(batch) / 2

        def user_states(self, batch):
            return model.user_states(batch)

        def score_items(self, states, start, stop):
            return model.score_items(states, start, stop) / 2

    halves = Halves()
    assert item_scorer(halves) is halves
    assert np.array_equal(evaluate(halves, histories, targets, item_chunk=5).ranks, plain.ranks)
    # the sampled protocol scores every item, chunk or not
    sampled = evaluate(model, histories, targets, protocol="sampled", n_negatives=5, item_chunk=3)
    assert np.array_equal(sampled.ranks, evaluate(model, histories, targets, protocol="sampled", n_negatives=5).ranks)


def test_chunk_sizes_come_from_the_memory_budget_or_the_caller():
    assert items_per_chunk(512, 87_586) == 65_536                # 256 MiB / (8 bytes x 512 users)
    assert items_per_chunk(512, 3_417) == 3_417 and items_per_chunk(10**9, 100) == 1
    model = tiny_sasrec()
    assert chunking(model, 512) is None and chunking(model, 512, item_chunk=TINY_N_ITEMS + 1) is None
    scorer, chunk = chunking(model, 512, item_chunk=10)
    assert chunk == 10 and scorer.n_columns == TINY_N_ITEMS + 1
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="item_chunk must be a whole number"):
            evaluate(model, *random_histories(), item_chunk=bad)
    with pytest.raises(InvalidArgumentError, match="memory_mib must be"):
        top_k(model, random_histories()[0], memory_mib=0)
    with pytest.raises(ValueError, match="a target has id"):
        evaluate(model, [np.array([1])], [TINY_N_ITEMS + 1], item_chunk=4)
