"""The one atomic writer: the destination changes only when the new file is complete, with ordinary permissions."""

import os
import stat

import pytest

from recnb.files import atomic_file, atomic_folder


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process's umask for one test and restore it afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


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
        assert mode(temporary) == 0o600  # private while it is being written
        temporary.write_bytes(b"new")
    direct = tmp_path / "direct.png"
    direct.write_bytes(b"direct")
    assert old.read_bytes() == b"new"
    assert mode(old) == mode(direct) == 0o666 & ~mask


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
    assert mode(target) == mode(target / "sub") == mode(tmp_path / "direct") == 0o755
    assert mode(target / "sub" / "movies.dat") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["direct", "synthetic"]
