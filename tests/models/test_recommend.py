"""Recommendations for a new history given as titles or ids, on ML-1M and a small trained model."""

import pytest
import torch

from recnb.models.baselines import MarkovChain
from recnb.models.recommend import UnknownFilmError, find_items, recommend


@pytest.fixture(scope="module")
def markov(ml1m, ml1m_split):
    return MarkovChain(ml1m.n_items).fit(ml1m_split.train)


def test_titles_and_ids_find_the_same_films(ml1m):
    by_title = find_items(ml1m, ["Star Wars: Episode IV - A New Hope (1977)", "empire strikes back"])
    by_id = find_items(ml1m, [260, 1196])  # MovieLens ids from movies.dat
    assert by_title.tolist() == by_id.tolist()
    assert ml1m.titles(by_id)[1] == "Star Wars: Episode V - The Empire Strikes Back (1980)"


def test_unknown_and_ambiguous_titles_get_clear_messages(ml1m):
    with pytest.raises(UnknownFilmError, match="Did you mean: Godfather, The \\(1972\\)"):
        find_items(ml1m, ["Godfathr, The (1972)"])
    with pytest.raises(UnknownFilmError, match="matches 4 films"):
        find_items(ml1m, ["Star Wars"])
    with pytest.raises(UnknownFilmError, match="not in ml-1m after filtering"):
        find_items(ml1m, [999_999])


def test_recommend_excludes_the_history_and_ranks_by_score(ml1m, markov):
    history = ["Star Wars: Episode IV - A New Hope (1977)", 1196]
    table = recommend(markov, ml1m, history, k=10)
    assert list(table.columns) == ["item_id", "movielens_id", "title", "year", "genres", "score"]
    assert len(table) == 10 and table.index.tolist() == list(range(1, 11))
    assert not set(table["movielens_id"]) & {260, 1196}
    assert table["score"].is_monotonic_decreasing
    # the Markov chain's favourite successor of Episode V comes first
    last = int(find_items(ml1m, [1196])[0])
    best = int(markov.next_item_probabilities(torch.tensor([last]))[0].argmax()) if hasattr(
        markov, "next_item_probabilities") else None
    if best not in (None, int(find_items(ml1m, [260])[0])):
        assert table["item_id"].iloc[0] == best


def test_empty_history_and_bad_k(ml1m, markov):
    with pytest.raises(ValueError, match="history is empty"):
        recommend(markov, ml1m, [])
    with pytest.raises(ValueError, match="k must be"):
        recommend(markov, ml1m, [260], k=0)
