"""Settings: how paths are shown to a learner, and temporary thread counts."""

import pytest
import torch

from recnb.config import display_path, repository_root, torch_threads


def test_display_path_is_relative_to_the_repository_or_the_data_folder(tmp_path):
    root = repository_root()
    assert root is not None
    assert display_path(root / "checkpoints" / "sasrec_compact_ml1m.pt") == "checkpoints/sasrec_compact_ml1m.pt"
    assert display_path(root) == "."
    data = tmp_path / "movielens"
    assert display_path(data / "ml-1m" / "movies.dat", data_dir=data) == "<data>/ml-1m/movies.dat"
    assert display_path(data, data_dir=data) == "<data>"
    elsewhere = tmp_path / "other" / "run.pt"
    shown = display_path(elsewhere, data_dir=data)
    assert shown == "run.pt" and str(tmp_path) not in shown


def test_torch_threads_restores_the_count_even_after_an_error():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_a_data_folder_setting_that_names_a_file_is_refused(tmp_path, monkeypatch):
    from recnb.config import resolve_data_dir

    a_file = tmp_path / "ratings.dat"
    a_file.write_text("1::1::5::0\n")
    monkeypatch.setenv("RECNB_DATA_DIR", str(a_file))
    with pytest.raises(ValueError, match="RECNB_DATA_DIR points at .* which is a file"):
        resolve_data_dir()
    with pytest.raises(ValueError, match="data_dir points at"):
        resolve_data_dir(a_file)
    assert resolve_data_dir(tmp_path / "not-yet") == tmp_path / "not-yet"   # created later, on first download
    assert display_path(tmp_path / "x.pt") == "x.pt"                          # still shows paths safely
