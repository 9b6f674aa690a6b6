"""Leave-one-out: disjoint, time-ordered splits and the one rule for what a model sees."""

import shutil
from pathlib import Path

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


def _tie_the_last_three(source: Path, target: Path, every: int = 4) -> int:
    """A copy of a GroupLens-layout ``ratings.dat`` where every ``every``-th user's last three ratings share one
    timestamp and stand in the file newest first: the same ratings, another order of ties in time."""
    rows: dict[str, list[list[str]]] = {}
    for line in (source / "ratings.dat").read_text(encoding="latin-1").splitlines():
        rows.setdefault(line.split("::")[0], []).append(line.split("::"))
    out, tied = [], 0
    for n, user in enumerate(rows):
        ordered = sorted(rows[user], key=lambda row: int(row[3]))
        if n % every == 0 and len(ordered) >= 5:
            last = ordered[-3:]
            for row in last:
                row[3] = last[0][3]
            ordered = ordered[:-3] + last[::-1]
            tied += 1
        out += ["::".join(row) for row in ordered]
    target.mkdir(parents=True)
    for name in ("movies.dat", "users.dat", "README"):
        shutil.copy(source / name, target / name)
    (target / "ratings.dat").write_text("\n".join(out) + "\n", encoding="latin-1")
    return tied


def test_split_fingerprint_flags_moved_held_out_films_and_refuses_a_leaked_evaluation(synthetic_dir, tmp_path, capsys):
    """The committed checkpoint's failure mode in miniature: the same ratings, ties in time ordered otherwise."""
    from recnb.cli import main
    from recnb.data import build_sequences
    from recnb.readers import read_release
    from recnb.split import check_split, split_fingerprint

    tied = _tie_the_last_three(synthetic_dir, tmp_path / "tied" / "synthetic")
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
    from recnb.comparison import default_checkpoint
    from recnb.split import check_split
    from recnb.train import load_checkpoint

    _, payload = load_checkpoint(default_checkpoint(), ml1m, split=ml1m_split)
    check = check_split(payload["split"], ml1m, ml1m_split)
    assert check.same and check.users == 6040
