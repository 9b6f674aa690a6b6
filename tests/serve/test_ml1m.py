"""The committed ML-1M checkpoint, exported once: PyTorch's scores and lists on real histories, served."""

import numpy as np
import pytest

from recnb.errors import InvalidArgumentError
from recnb.evaluation.evaluator import top_k
from recnb.models.checkpoints import load_checkpoint
from recnb.models.onnx_export import export_onnx, onnx_max_difference
from recnb.models.recommend import recommend
from recnb.serve import OnnxRecommender
from tests.helpers import REPO

CHECKPOINT = REPO / "checkpoints" / "sasrec_compact_ml1m.pt"


@pytest.fixture(scope="module")
def compact(ml1m, tmp_path_factory):
    """(model, export result, recommender) of the committed checkpoint: the one real export of these tests."""
    model, _ = load_checkpoint(CHECKPOINT, ml1m)
    result = export_onnx(CHECKPOINT, tmp_path_factory.mktemp("compact") / "compact.onnx", ml1m)
    return model, result, OnnxRecommender(result.path)


def test_scores_equal_pytorch_on_real_histories_up_to_max_len(compact, ml1m):
    model, result, _ = compact
    assert model.config.max_len == 200 and result.max_difference <= 1e-4
    long_users = [u for u, s in enumerate(ml1m.sequences) if len(s) > 200][:4]
    for lengths in ([1, 1], [2, 7, 20], [200, 200, 150, 1], [199, 50]):
        histories = [ml1m.sequences[u][-n:] for u, n in zip(long_users * 2, lengths)]
        assert max(len(h) for h in histories) == max(lengths)
        assert onnx_max_difference(model, result.path, histories) <= 1e-4


def test_served_top_10_is_recommends_for_titles_and_ids(compact, ml1m):
    model, _, recommender = compact
    titles = ["Star Wars: Episode IV - A New Hope (1977)", "empire strikes back", "Alien (1979)"]
    served = recommender.recommend(titles, k=10)
    expected = recommend(model, ml1m, titles, k=10)
    assert served.drop(columns="score").equals(expected.drop(columns="score"))
    np.testing.assert_allclose(served["score"], expected["score"], atol=1e-4)
    by_id = recommender.recommend([260, 1196, 1214], k=10)
    assert by_id["item_id"].tolist() == expected["item_id"].tolist()


def test_served_lists_of_many_users_are_the_evaluators(compact, ml1m):
    model, _, recommender = compact
    histories = [s[-200:] for s in ml1m.sequences[:120]]
    served, _ = recommender.top_items(histories, k=10)
    np.testing.assert_array_equal(served, top_k(model, histories, 10))
    table = recommender.recommend_batch([ml1m.item_ids[h] for h in histories[:5]], k=10)
    assert table["item_id"].to_numpy().reshape(5, 10).tolist() == served[:5].tolist()


def test_a_full_history_over_max_len_is_refused_with_what_to_pass(compact, ml1m):
    _, _, recommender = compact
    user = next(u for u, s in enumerate(ml1m.sequences) if len(s) > 200)
    history = ml1m.item_ids[ml1m.sequences[user]].tolist()
    with pytest.raises(InvalidArgumentError, match=f"has {len(history)} films; this model reads at most 200"):
        recommender.recommend(history)
    assert len(recommender.recommend(history[-200:])) == 10
