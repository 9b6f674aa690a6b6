"""Leave-one-out: disjoint, time-ordered splits and the one rule for what a model sees."""

import numpy as np
import pytest

from recnb.data.split import evaluation_inputs, leave_one_out, pad_histories
from tests.helpers import held_out_by_user, tie_the_last_three, tiny_checkpoint


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


def test_split_fingerprint_flags_moved_held_out_films_and_refuses_a_leaked_evaluation(synthetic_dir, tmp_path, capsys):
    """The committed checkpoint's failure mode in miniature: the same ratings, ties in time ordered otherwise."""
    from recnb.cli import main
    from recnb.data import build_sequences
    from recnb.data.readers import read_release
    from recnb.data.split import check_split, split_fingerprint

    tied = tie_the_last_three(synthetic_dir, tmp_path / "tied" / "synthetic")
    original = build_sequences(read_release("ml-1m", synthetic_dir), name="synthetic")
    reordered = build_sequences(read_release("ml-1m", tmp_path / "tied" / "synthetic"), name="synthetic")
    split, moved = leave_one_out(original.sequences), leave_one_out(reordered.sequences)
    fingerprint = split_fingerprint(original, split)
    assert check_split(fingerprint, original, split).same
    check = check_split(fingerprint, reordered, moved)
    # every tied user's held-out films move; the new test film is, as a rule, their old last training target
    assert not check.same and check.changed == tied > 0 and check.leaked >= 0.9 * tied
    assert f"{tied:,} of {moved.n_users:,} users" in check.describe()

    checkpoint = tmp_path / "model.pt"
    common = ["--dataset", "synthetic", "--no-download"]
    assert main(["train", *common, "--data-dir", str(synthetic_dir.parent), "--preset", "quick", "--epochs", "1",
                 "--checkpoint", str(checkpoint), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", "sasrec", "--checkpoint", str(checkpoint), *common,
                 "--data-dir", str(synthetic_dir.parent)]) == 0
    capsys.readouterr()
    for command in (["evaluate", "--model", "sasrec"], ["compare", "--csv", str(tmp_path / "c.csv"),
                                                        "--chart", str(tmp_path / "c.png")]):
        assert main([*command, "--checkpoint", str(checkpoint), *common, "--data-dir", str(tmp_path / "tied")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and "would be leaked" in err and "python -m recnb train" in err
    assert not (tmp_path / "c.csv").exists()


def test_the_committed_checkpoint_was_trained_on_this_ml1m_split(ml1m, ml1m_split):
    from recnb.data.split import check_split
    from recnb.models.checkpoints import load_checkpoint
    from recnb.models.zoo import default_checkpoint

    _, payload = load_checkpoint(default_checkpoint(), ml1m, split=ml1m_split)
    check = check_split(payload["split"], ml1m, ml1m_split)
    assert check.same and check.users == 6040


def test_load_checkpoint_for_split_evaluates_exactly_the_unchanged_users(synthetic_dir, tmp_path, capsys):
    from recnb.data import build_sequences
    from recnb.data.readers import read_release
    from recnb.evaluation.evaluator import evaluate_split
    from recnb.models.checkpoints import load_checkpoint_for_split

    tied = tie_the_last_three(synthetic_dir, tmp_path / "tied" / "synthetic")
    original = build_sequences(read_release("ml-1m", synthetic_dir), name="synthetic")
    reordered = build_sequences(read_release("ml-1m", tmp_path / "tied" / "synthetic"), name="synthetic")
    split, moved = leave_one_out(original.sequences), leave_one_out(reordered.sequences)
    checkpoint = tiny_checkpoint(original, split, tmp_path / "model.pt")

    # the split it was trained on: every user, the very same split, one line that says the check ran
    same = load_checkpoint_for_split(checkpoint, original, split)
    assert same.split is split and same.check.same
    assert capsys.readouterr().out == f"split check: the same split as at training time ({split.n_users:,} users)\n"

    # ties ordered otherwise: only the users whose held-out films are the ones the model held out
    before, after = held_out_by_user(original, split), held_out_by_user(reordered, moved)
    unchanged = {user for user, films in after.items() if before.get(user) == films}
    assert 0 < len(unchanged) == moved.n_users - tied
    checked = load_checkpoint_for_split(checkpoint, reordered, moved)
    kept = checked.split
    assert set(reordered.user_ids[kept.users].tolist()) == unchanged and kept.n_users == len(unchanged)
    assert held_out_by_user(reordered, kept) == {user: before[user] for user in unchanged}
    out = capsys.readouterr().out
    assert out.startswith(f"split check: {tied:,} of {moved.n_users:,} users' held-out films differ")
    assert f"Evaluating only the {len(unchanged):,} users" in out and "python -m recnb train" in out
    # the evaluation of the kept users is the full evaluation with the moved users' ranks left out
    full = evaluate_split(checked.model, moved, "test")
    mask = np.array([int(u) in unchanged for u in reordered.user_ids[moved.users]])
    np.testing.assert_array_equal(evaluate_split(checked.model, kept, "test").ranks, full.ranks[mask])

    # a checkpoint that records no split cannot be checked: it says so and keeps every user
    older = load_checkpoint_for_split(tiny_checkpoint(original, split, tmp_path / "old.pt", record_split=False),
                                      reordered, moved)
    assert older.split is moved and older.check is None
    assert capsys.readouterr().out.startswith("split check: not possible, old.pt records no split")


def test_load_checkpoint_for_split_refuses_when_no_user_is_unchanged(synthetic_dir, tmp_path):
    from recnb.data import build_sequences
    from recnb.data.readers import read_release
    from recnb.errors import SplitMismatchError
    from recnb.models.checkpoints import load_checkpoint_for_split

    original = build_sequences(read_release("ml-1m", synthetic_dir), name="synthetic")
    split = leave_one_out(original.sequences)
    tie_the_last_three(synthetic_dir, tmp_path / "every" / "synthetic", every=1)   # every user's last three
    reordered = build_sequences(read_release("ml-1m", tmp_path / "every" / "synthetic"), name="synthetic")
    checkpoint = tiny_checkpoint(original, split, tmp_path / "model.pt")
    with pytest.raises(SplitMismatchError, match="no user's held-out films are unchanged.*python -m recnb train"):
        load_checkpoint_for_split(checkpoint, reordered, leave_one_out(reordered.sequences), verbose=False)


def test_select_users_keeps_positions_and_ids():
    from recnb.data.split import select_users

    split = leave_one_out([np.array([1, 2, 3]), np.array([4, 5]), np.array([6, 7, 8, 9]), np.array([3, 1, 2])])
    kept = select_users(split, np.array([True, False, True]))
    assert kept.users.tolist() == [0, 3] and kept.test.tolist() == [3, 2] and kept.valid.tolist() == [2, 1]
    assert [t.tolist() for t in kept.train] == [[1], [3]] and kept.dropped_users == 1
    with pytest.raises(ValueError, match="one entry per user"):
        select_users(split, np.array([True]))
