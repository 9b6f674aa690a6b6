"""The one atomic writer: the destination changes only when the new file is complete, with ordinary permissions."""


import pytest

from recnb.data.split import leave_one_out
from recnb.files import atomic_file, atomic_folder
from recnb.models.checkpoints import load_checkpoint, save_checkpoint
from recnb.models.sasrec import SASRec, config_from_preset
from tests.helpers import file_mode


def test_a_failure_while_writing_leaves_the_old_file_as_it_was(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old table\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_file(path) as temporary:
            temporary.write_text("half a new ta")
            raise RuntimeError("disk full")
    assert path.read_text() == "old table\n"
    assert list(tmp_path.iterdir()) == [path]  # the temporary file is gone too


def test_a_failure_before_the_first_write_leaves_no_file(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(tmp_path / "new" / "run.pt"):
            raise KeyboardInterrupt
    assert list((tmp_path / "new").iterdir()) == []


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_the_new_file_has_the_mode_a_direct_write_gives(tmp_path, umask, mask):
    old = tmp_path / "chart.png"
    old.write_bytes(b"old")
    old.chmod(0o600)  # the mode of the file it replaces does not carry over
    umask(mask)
    with atomic_file(old) as temporary:
        assert file_mode(temporary) == 0o600  # private while it is being written
        temporary.write_bytes(b"new")
    direct = tmp_path / "direct.png"
    direct.write_bytes(b"direct")
    assert old.read_bytes() == b"new"
    assert file_mode(old) == file_mode(direct) == 0o666 & ~mask


def test_a_folder_appears_whole_or_not_at_all(tmp_path, umask):
    target = tmp_path / "synthetic"
    with pytest.raises(ValueError, match="bad row"):
        with atomic_folder(target) as staging:
            (staging / "ratings.dat").write_text("1::1::5::0\n")
            raise ValueError("bad row")
    assert not target.exists() and list(tmp_path.iterdir()) == []

    with atomic_folder(target) as staging:
        assert not target.exists()
        (staging / "sub").mkdir()
        (staging / "sub" / "movies.dat").write_text("1::Film (1990)::Drama\n")
    (tmp_path / "direct").mkdir()
    assert (target / "sub" / "movies.dat").read_text() == "1::Film (1990)::Drama\n"
    assert file_mode(target) == file_mode(target / "sub") == file_mode(tmp_path / "direct") == 0o755
    assert file_mode(target / "sub" / "movies.dat") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["direct", "synthetic"]


def test_a_checkpoint_that_fails_to_save_leaves_the_previous_one(synthetic, tmp_path):
    config = config_from_preset("quick", synthetic.n_items, len(synthetic.genre_names),
                                len(synthetic.year_bucket_labels))
    model = SASRec(config, synthetic.item_genre, synthetic.item_year_bucket)
    path = save_checkpoint(tmp_path / "run.pt", model, synthetic, split=leave_one_out(synthetic.sequences))
    before = path.read_bytes()
    with pytest.raises(Exception, match="pickle"):
        save_checkpoint(path, model, synthetic, note=lambda: "a function is not data")   # fails inside torch.save
    assert path.read_bytes() == before and load_checkpoint(path, synthetic)[1]["format"] == "recnb-sasrec/1"
    assert list(tmp_path.iterdir()) == [path]
