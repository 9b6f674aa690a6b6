"""Every file recnb writes through a temporary file ends with the mode a direct write would give it."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from recnb.data.synthetic import write_synthetic_movielens  # noqa: E402
from recnb.evaluation.comparison import save_figure, write_csv  # noqa: E402
from recnb.files import give_normal_permissions  # noqa: E402
from tests.helpers import file_mode  # noqa: E402


def test_synthetic_folder_csv_and_chart(tmp_path, umask):
    folder = write_synthetic_movielens(tmp_path / "synthetic")
    assert file_mode(folder) == 0o755 and {file_mode(p) for p in folder.iterdir()} == {0o644}
    assert file_mode(write_csv(pd.DataFrame({"HR@10": [0.1]}), tmp_path / "c.csv")) == 0o644
    figure = plt.figure()
    assert file_mode(save_figure(figure, tmp_path / "c.png")) == 0o644
    plt.close(figure)


def test_normal_permissions_follow_the_umask(tmp_path):
    import tempfile

    handle, name = tempfile.mkstemp(dir=tmp_path)
    os.close(handle)
    previous = os.umask(0o077)
    try:
        give_normal_permissions(name)
        assert file_mode(name) == 0o600        # a private umask keeps files private
        os.umask(0o002)
        give_normal_permissions(name)
        assert file_mode(name) == 0o664
        give_normal_permissions(tmp_path)
        assert file_mode(tmp_path) == 0o775
    finally:
        os.umask(previous)
