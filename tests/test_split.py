"""Leave-one-out: disjoint, time-ordered splits and the one rule for what a model sees."""

import numpy as np
import pytest

from recnb.split import evaluation_inputs, leave_one_out, pad_histories


def test_split_positions(ml1m, ml1m_split):
    assert ml1m_split.n_users == 6_040 and ml1m_split.dropped_users == 0
    for u in (0, 1, 6_039):
        seq = ml1m.sequences[u]
        assert ml1m_split.train[u].tolist() == seq[:-2].tolist()
        assert ml1m_split.valid[u] == seq[-2] and ml1m_split.test[u] == seq[-1]


def test_splits_are_disjoint_and_in_time_order(ml1m, ml1m_split):
    for u, seq in enumerate(ml1m.sequences):
        train = ml1m_split.train[u]
        # ML-1M has no repeats, so disjoint positions mean disjoint items
        assert ml1m_split.valid[u] not in train and ml1m_split.test[u] not in train
        assert ml1m_split.valid[u] != ml1m_split.test[u]
        assert np.concatenate([train, [ml1m_split.valid[u], ml1m_split.test[u]]]).tolist() == seq.tolist()


def test_no_evaluated_item_is_in_the_data_a_model_is_fit_on(ml1m_split):
    fit_on = ml1m_split.train  # what every model is trained on
    for which in ("valid", "test"):
        histories, targets = evaluation_inputs(ml1m_split, which)
        for u in range(ml1m_split.n_users):
            assert targets[u] not in fit_on[u]
            assert targets[u] not in histories[u]
    # the validation item joins the *test input*, never the training data
    test_histories, _ = evaluation_inputs(ml1m_split, "test")
    assert all(h[-1] == v for h, v in zip(test_histories, ml1m_split.valid))
    assert all(len(h) == len(t) + 1 for h, t in zip(test_histories, fit_on))
    with pytest.raises(ValueError, match="'valid' or 'test'"):
        evaluation_inputs(ml1m_split, "train")


def test_short_users_are_dropped_and_counted():
    split = leave_one_out([np.array([1, 2, 3]), np.array([4, 5]), np.array([6, 7, 8, 9])])
    assert split.dropped_users == 1 and split.users.tolist() == [0, 2]
    assert split.test.tolist() == [3, 9] and split.valid.tolist() == [2, 8]
    with pytest.raises(ValueError, match="No user has the 3 items"):
        leave_one_out([np.array([1, 2])])


def test_pad_histories_left_pads_and_truncates_to_most_recent():
    batch = pad_histories([np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)])
    assert batch.tolist() == [[1, 2, 3], [0, 0, 4], [0, 0, 0]]
    assert pad_histories([np.array([1, 2, 3, 4, 5])], max_len=2).tolist() == [[4, 5]]
    with pytest.raises(ValueError, match="all empty"):
        pad_histories([np.array([], dtype=np.int64)])
