"""Serving an exported model with ONNX Runtime: recommend's lists and errors, and no PyTorch needed."""

import subprocess
import sys

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from recnb.errors import CheckpointError, InvalidArgumentError, MissingDataError, UnknownFilmError
from recnb.evaluation.evaluator import top_columns as torch_top_columns
from recnb.evaluation.evaluator import top_k
from recnb.models.recommend import find_items, recommend
from recnb.serve import OnnxRecommender, load_recommender, main, top_columns
from tests.helpers import REPO


@pytest.fixture(scope="module")
def served(tied_export):
    model, _, result = tied_export
    return model, OnnxRecommender(result.path, threads=1)


def assert_same_table(served_table, torch_table):
    """Equal ids, titles, years, genres and ranks; scores equal up to float32 rounding."""
    pd.testing.assert_frame_equal(served_table.drop(columns="score"), torch_table.drop(columns="score"))
    np.testing.assert_allclose(served_table["score"], torch_table["score"], atol=1e-4)


def test_the_recommender_reads_the_films_and_settings(served, synthetic):
    _, recommender = served
    assert (recommender.dataset, recommender.max_len, recommender.n_items) == ("synthetic", 12, synthetic.n_items)
    assert recommender.best_epoch == 3 and recommender.metrics == {"test": {"HR@10": 0.5}}
    items = synthetic.items
    pd.testing.assert_series_equal(recommender.items["title"], items["title"])
    pd.testing.assert_series_equal(recommender.items["year"], items["year"])
    assert recommender.items["genres"].tolist() == items["genres"].tolist()
    assert recommender.items["movielens_id"].tolist() == synthetic.item_ids.tolist()


def test_scores_are_pytorch_scores_for_histories_of_any_lengths(served):
    model, recommender = served
    histories = [np.array([5]), np.arange(1, 13), np.array([7, 3, 9])]
    with torch.inference_mode():
        expected = torch.cat([model.score(torch.as_tensor(h)[None]) for h in histories]).numpy()
    scores = recommender.scores(histories)
    assert scores.shape == (3, recommender.n_items + 1) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, atol=1e-4)


def test_recommend_gives_recommends_table_for_titles_and_ids(served, synthetic):
    model, recommender = served
    titles = synthetic.items["title"].iloc[[4, 9, 2, 30]].tolist()
    ids = synthetic.item_ids[[4, 9, 2, 30]].tolist()
    expected = recommend(model, synthetic, titles, k=10)
    assert_same_table(recommender.recommend(titles, k=10), expected)
    assert_same_table(recommender.recommend(ids, k=10), expected)
    assert_same_table(recommender.recommend(ids, k=5, exclude_seen=False),
                      recommend(model, synthetic, ids, k=5, exclude_seen=False))
    # more places than films: the list ends where the films do, as recommend's does
    everything = recommender.recommend(ids, k=synthetic.n_items + 5)
    assert len(everything) == synthetic.n_items - 4 and 0 not in everything["item_id"].tolist()


def test_recommend_batch_is_recommend_for_each_user(served, synthetic):
    model, recommender = served
    users = range(0, 60, 3)
    histories = [synthetic.item_ids[synthetic.sequences[u][-12:]] for u in users]  # MovieLens ids
    histories[1] = histories[1][-2:]   # lengths vary within a batch
    table = recommender.recommend_batch(histories, k=10, batch_size=7)
    assert table.index.names == ["user", "rank"] and len(table) == 10 * len(histories)
    for user, history in enumerate(histories):
        assert_same_table(table.loc[user], recommend(model, synthetic, history.tolist(), k=10))
    item_histories = [find_items(synthetic, h.tolist()) for h in histories]
    top, _ = recommender.top_items(item_histories, k=10, batch_size=4)
    np.testing.assert_array_equal(top, top_k(model, item_histories, 10))


def test_top_columns_follows_recnbs_tie_rule():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 20)).astype(np.float32)   # many ties
    scores[3, 5] = -np.inf   # an allowed -inf comes before the excluded columns
    allowed = rng.random((50, 20)) < 0.6
    allowed[3, 5] = True
    allowed[7] = False
    for k in (1, 3, 10, 20, 25):
        expected = torch_top_columns(torch.from_numpy(scores), k, torch.from_numpy(allowed)).numpy()
        np.testing.assert_array_equal(top_columns(scores, k, allowed), expected)


def test_history_errors_say_what_to_do(served, synthetic):
    _, recommender = served
    with pytest.raises(InvalidArgumentError, match="history is empty"):
        recommender.recommend([])
    too_long = synthetic.item_ids[1:14].tolist()
    with pytest.raises(InvalidArgumentError, match=r"has 13 films; this model reads at most 12\. Pass the most "
                                                   r"recent 12 \(history\[-12:\]\)"):
        recommender.recommend(too_long)
    assert len(recommender.recommend(too_long[-12:])) == 10
    with pytest.raises(InvalidArgumentError, match="k must be at least 1"):
        recommender.recommend(too_long[:2], k=0)
    with pytest.raises(InvalidArgumentError, match="History 1 is empty"):
        recommender.scores([[1], []])
    with pytest.raises(InvalidArgumentError, match="outside 1.."):
        recommender.scores([[recommender.n_items + 1]])


def test_unknown_films_get_find_items_messages(served, synthetic):
    _, recommender = served
    title = synthetic.items["title"].iloc[3]
    typo = title[:3] + title[4:]
    for films in ([typo], [999_999], ["Zzzz qqqq"]):
        with pytest.raises(UnknownFilmError) as served_error:
            recommender.recommend(films)
        with pytest.raises(UnknownFilmError) as torch_error:
            find_items(synthetic, films)
        if films[0] == "Zzzz qqqq":   # no close title: each points to its own table of titles
            assert "recommender.items['title']" in str(served_error.value)
        else:
            assert str(served_error.value) == str(torch_error.value)
    with pytest.raises(UnknownFilmError, match="MovieLens id 999999 is not in synthetic"):
        recommender.recommend_batch([np.array([synthetic.item_ids[1], 999_999])])


def test_files_that_are_no_recnb_model_are_refused(tied_export, tmp_path):
    _, _, result = tied_export
    with pytest.raises(MissingDataError, match="No ONNX model at .*export --onnx"):
        OnnxRecommender(tmp_path / "missing.onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(CheckpointError, match="cannot be read as an ONNX model"):
        OnnxRecommender(text)
    bare = onnx.load(result.path)
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    with pytest.raises(CheckpointError, match="not one recnb exported \\(no recnb metadata\\)"):
        load_recommender(tmp_path / "bare.onnx")
    with pytest.raises(InvalidArgumentError, match="threads must be"):
        OnnxRecommender(result.path, threads=0)


def test_the_command_prints_the_top_k(served, tied_export, synthetic, capsys):
    _, recommender = served
    path = str(tied_export[2].path)
    ids = [str(i) for i in synthetic.item_ids[[1, 2]]]
    assert main([path, "--ids", *ids, "-k", "3"]) == 0
    out = capsys.readouterr().out
    for title in recommender.recommend([int(i) for i in ids], k=3)["title"]:
        assert title in out
    assert main([path, "No such film at all"]) == 2
    assert capsys.readouterr().err.startswith("error: No film titled")


def test_serving_runs_without_torch(tied_export, synthetic):
    path = tied_export[2].path
    film = synthetic.items["title"].iloc[1]
    script = (f"import sys\nfrom recnb.serve import OnnxRecommender\nr = OnnxRecommender({str(path)!r})\n"
              f"table = r.recommend([{film!r}], k=3)\nassert len(table) == 3\n"
              "assert 'torch' not in sys.modules, 'recnb.serve imported torch'\nprint(table['title'].tolist())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[")
