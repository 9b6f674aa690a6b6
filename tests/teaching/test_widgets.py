"""The explorers of notebook 09, driven from Python: set the controls, assert on what they show."""

import html
import unicodedata
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recnb.data import build_sequences
from recnb.data.readers import read_release
from recnb.data.split import check_split, evaluation_inputs, leave_one_out
from recnb.errors import ExplorerInputError
from recnb.evaluation.evaluator import top_k
from recnb.models.baselines import Popularity
from recnb.models.checkpoints import load_checkpoint
from recnb.models.recommend import recommend_items
from recnb.models.zoo import default_checkpoint, fit_models
from recnb.teaching.widgets import (
    AttentionExplorer,
    RecommendationExplorer,
    history_timeline,
    user_position,
    users_who_watched,
)
from recnb.viz.baseline_plots import shorten
from tests.helpers import held_out_by_user, tie_the_last_three, tiny_checkpoint


@pytest.fixture(scope="module")
def sasrec(ml1m):
    return load_checkpoint(default_checkpoint(), ml1m)[0]


@pytest.fixture(scope="module")
def models(ml1m, ml1m_split, sasrec):
    return fit_models(ml1m, ml1m_split, sasrec=sasrec, alpha=0.9, names=("popularity", "markov"))


def test_recommendations_follow_the_user_control(ml1m, ml1m_split, models):
    explorer = RecommendationExplorer(ml1m, ml1m_split, models, k=10)
    first = {name: table["item_id"].tolist() for name, table in explorer.recommendations.items()}
    assert set(first) == {"popularity", "markov", "sasrec"} and all(len(v) == 10 for v in first.values())
    explorer.user.value = "42"
    assert explorer.user_id == 42 and explorer.message == ""
    position = int(np.flatnonzero(ml1m.user_ids[ml1m_split.users] == 42)[0])
    history, target = evaluation_inputs(ml1m_split, "test")[0][position], ml1m_split.test[position]
    assert explorer.history["item_id"].tolist() == history[-12:].tolist()   # the timeline is this user's
    markov = explorer.recommendations["markov"]["item_id"].tolist()
    assert markov != first["markov"] and not set(markov) & set(history)      # new list, nothing seen twice
    assert ml1m.items.at[int(target), "title"] in explorer.status.value        # the held-out film is named
    assert all(html.escape(shorten(ml1m.items.at[i, "title"], 34)) in explorer.lists.value for i in markov)
    explorer.k.value = 5
    assert all(len(t) == 5 for t in explorer.recommendations.values())
    explorer.shown_models.value = ("sasrec",)
    assert list(explorer.recommendations) == ["sasrec"] and "Markov chain" not in explorer.lists.value


def test_held_out_film_is_marked_when_ranked(ml1m, ml1m_split, models):
    explorer = RecommendationExplorer(ml1m, ml1m_split, models, k=20)
    histories, targets = evaluation_inputs(ml1m_split, "test")
    for position in range(300):  # find a user whose next film SASRec puts in its top 20
        explorer.user.value = str(ml1m.user_ids[ml1m_split.users[position]])
        table = explorer.recommendations["sasrec"]
        if targets[position] in table["item_id"].values:
            rank = int(table.index[table["item_id"] == targets[position]][0])
            assert f"★ at rank {rank}" in explorer.lists.value
            return
    pytest.fail("no user in 300 had the held-out film in SASRec's top 20")


def test_bad_input_shows_a_message_not_a_traceback(ml1m, ml1m_split, models):
    explorer = RecommendationExplorer(ml1m, ml1m_split, models)
    explorer.user.value = "999999"
    assert "No user 999999" in explorer.message and "recnb-error" in explorer.status.value
    assert explorer.recommendations == {} and explorer.lists.value == ""
    explorer.user.value = "Alice"
    assert "not a whole number" in explorer.message
    explorer.search.value = "no such film xyz"
    assert "No film title contains" in explorer.message and explorer.matches.disabled


def test_search_by_title_lists_users_who_watched_it(ml1m, ml1m_split, models):
    film, users = users_who_watched(ml1m, ml1m_split, "godfather: part ii")
    assert film == "Godfather: Part II, The (1974)" and len(users) == 200
    explorer = RecommendationExplorer(ml1m, ml1m_split, models)
    explorer.search.value = "Godfather: Part II"
    assert not explorer.matches.disabled and len(explorer.matches.options) == 200
    explorer.matches.value = explorer.matches.options[5][1]
    assert explorer.user_id == users[5]
    item = int(ml1m.items.index[ml1m.items["title"] == film][0])
    position = int(np.flatnonzero(ml1m.user_ids[ml1m_split.users] == users[5])[0])
    assert item in evaluation_inputs(ml1m_split, "test")[0][position]


def test_attention_explorer_draws_the_chosen_head(ml1m, ml1m_split, sasrec):
    explorer = AttentionExplorer(sasrec, ml1m, ml1m_split, last_n=12)
    assert explorer.matrix.shape == (12, 12)
    assert np.allclose(np.triu(explorer.matrix, 1), 0)                  # causal: nothing above the diagonal
    full = explorer.weights[explorer.layer.value][explorer.head.value]
    assert np.allclose(full.sum(-1), 1, atol=1e-5)                       # every row over the whole history
    image = explorer.figure.axes[0].images[0].get_array().filled(0)
    assert np.allclose(image, explorer.matrix)                             # the heatmap draws the matrix
    before, top_before = explorer.matrix.copy(), explorer.top_attended.copy()
    explorer.head.value = 1
    assert not np.allclose(explorer.matrix, before)                      # another head, another picture
    assert not np.allclose(explorer.figure.axes[0].images[0].get_array().filled(0), image)
    explorer.user.value = "42"
    assert explorer.user_id == 42
    last = explorer.weights[explorer.layer.value][explorer.head.value][-1]
    assert explorer.top_attended["weight"].iloc[0] == pytest.approx(last.max())
    assert explorer.top_attended["positions back"].iloc[0] == len(last) - 1 - int(last.argmax())
    assert not top_before.equals(explorer.top_attended)
    assert all(html.escape(shorten(t, 40)) in explorer.top_list.value for t in explorer.top_attended["title"])
    explorer.user.value = "0"
    assert "No user 0" in explorer.message and explorer.matrix.shape == (0, 0)


def test_short_histories_degrade_clearly(ml1m, sasrec):
    short = leave_one_out([s[:3] for s in ml1m.sequences[:30]])       # two films before the test item
    explorer = AttentionExplorer(sasrec, ml1m, short, last_n=15)
    assert explorer.matrix.shape == (2, 2) and "only 2 films" in explorer.status.value
    tiny = leave_one_out([s[:2] for s in ml1m.sequences[:5]] + [s[:3] for s in ml1m.sequences[5:8]])
    recs = RecommendationExplorer(ml1m, tiny, {"sasrec": sasrec})
    assert "A short history" in recs.status.value and len(recs.recommendations["sasrec"]) == 10
    assert history_timeline(ml1m, np.array([5, 6]), last=12)["#"].tolist() == [1, 2]


def test_a_checkpoint_for_other_data_is_reported_in_the_widget(synthetic, ml1m_split):
    split = leave_one_out(synthetic.sequences)
    explorer = AttentionExplorer.from_checkpoint(default_checkpoint(), synthetic, split)
    assert "SASRec is not available" in explorer.message and "trained on 'ml-1m'" in explorer.message
    # the message names the checkpoint as the learner sees it, relative to the repository, never absolute
    assert "checkpoints/sasrec_compact_ml1m.pt" in explorer.message
    assert str(default_checkpoint()) not in explorer.message
    assert explorer.user.disabled and "recnb-error" in explorer.status.value
    missing = AttentionExplorer.from_checkpoint("no/such/file.pt", synthetic, split)
    assert "No checkpoint at" in missing.message
    baselines = {"popularity": Popularity(synthetic.n_items).fit(split.train)}
    recommendations = RecommendationExplorer.from_checkpoint(default_checkpoint(), synthetic, split, baselines)
    assert list(recommendations.recommendations) == ["popularity"]           # still useful without SASRec
    assert html.escape("trained on 'ml-1m'") in recommendations.status.value
    assert "recnb-error" in recommendations.status.value
    recommendations.search.value = "x"
    recommendations.search.value = ""                                        # clearing the box is not an error
    assert recommendations.matches.disabled


# ----------------------------------------------------------------------------- a checkpoint trained on another split
@pytest.fixture(scope="module")
def tied(synthetic_dir, tmp_path_factory):
    """The synthetic data in two orders of ties in time, and a checkpoint saved with the first order's split."""
    folder = tmp_path_factory.mktemp("tied")
    n_tied = tie_the_last_three(synthetic_dir, folder / "synthetic")
    original = build_sequences(read_release("ml-1m", synthetic_dir), name="synthetic")
    reordered = build_sequences(read_release("ml-1m", folder / "synthetic"), name="synthetic")
    split, moved = leave_one_out(original.sequences), leave_one_out(reordered.sequences)
    before, after = held_out_by_user(original, split), held_out_by_user(reordered, moved)
    changed = [user for user, films in after.items() if before.get(user) != films]
    assert len(changed) == n_tied > 0
    return {"original": original, "split": split, "reordered": reordered, "moved": moved, "changed": changed,
            "unchanged": [user for user in after if user not in set(changed)],
            "checkpoint": tiny_checkpoint(original, split, folder / "model.pt")}


def test_widgets_flag_a_checkpoint_trained_on_another_split(tied):
    data, split = tied["reordered"], tied["moved"]
    check = check_split(load_checkpoint(tied["checkpoint"], data)[1]["split"], data, split)
    changed, unchanged = tied["changed"][0], tied["unchanged"][0]
    baselines = {"popularity": Popularity(data.n_items).fit(split.train)}

    recommendations = RecommendationExplorer.from_checkpoint(tied["checkpoint"], data, split, baselines,
                                                             user_id=unchanged)
    assert set(recommendations.recommendations) == {"popularity", "sasrec"}          # lists are still shown
    banner = html.escape(check.describe())
    assert f"{len(tied['changed']):,} of {split.n_users:,} users" in check.describe()
    assert banner in recommendations.status.value
    assert "recnb-error" in recommendations.status.value and recommendations.user_split_note is None
    recommendations.user.value = str(changed)
    assert recommendations.user_id == changed and f"User {changed}:" in recommendations.user_split_note
    status = recommendations.status.value
    assert html.escape(recommendations.user_split_note) in status and banner in status
    assert "no fair test for this user" in recommendations.lists.value                  # on SASRec's list only
    assert recommendations.lists.value.count("no fair test") == 1
    recommendations.user.value = "no such user"                                          # the banner stays
    assert "not a whole number" in recommendations.message and banner in recommendations.status.value

    attention = AttentionExplorer.from_checkpoint(tied["checkpoint"], data, split, user_id=unchanged)
    assert attention.model is not None and attention.matrix.size > 0 and not attention.user.disabled
    assert banner in attention.status.value and attention.user_split_note is None
    attention.user.value = str(changed)
    assert f"User {changed}:" in attention.user_split_note and banner in attention.status.value

    # on the order the checkpoint was saved with, nothing is flagged
    same = RecommendationExplorer.from_checkpoint(tied["checkpoint"], tied["original"], tied["split"], baselines,
                                                  user_id=changed)
    assert same.warning is None and same.user_split_note is None and "recnb-error" not in same.status.value
    same_attention = AttentionExplorer.from_checkpoint(tied["checkpoint"], tied["original"], tied["split"])
    assert same_attention.warning is None and "recnb-error" not in same_attention.status.value


def test_a_split_check_made_on_another_split_is_refused(tied):
    data = tied["reordered"]
    check = check_split(load_checkpoint(tied["checkpoint"], data)[1]["split"], data, tied["moved"])
    smaller = leave_one_out(data.sequences[:10])
    with pytest.raises(ValueError, match="split_check was made on a split of"):
        RecommendationExplorer(data, smaller, {}, split_check=check)


# ----------------------------------------------------------------------------- user ids as typed
def _typed_user(text: str) -> str | None:
    """The number a learner typed, in ASCII digits without leading zeros (read digit by digit, any script's
    decimal digits), or None if it is none. A string, because no int() limit applies to what is typed."""
    stripped = text.strip()
    if not stripped or not all(unicodedata.category(c) == "Nd" for c in stripped):
        return None
    return "".join(str(unicodedata.digit(c)) for c in stripped).lstrip("0") or "0"


@pytest.fixture(scope="module")
def popularity_explorer(ml1m, ml1m_split):
    return RecommendationExplorer(ml1m, ml1m_split, {"popularity": Popularity(ml1m.n_items).fit(ml1m_split.train)})


ZEROS = "0٠۰०০０𝟎"   # decimal zeros of several scripts: ASCII, Arabic-Indic, Persian, Devanagari, Bengali, ...


@st.composite
def typed_ids(draw):
    """A real user id in some script's digits, maybe with zeros in front and spaces around it."""
    zero = ord(draw(st.sampled_from(ZEROS)))
    user = draw(st.integers(1, 6_040))
    digits = "".join(chr(zero + int(d)) for d in str(user))
    return draw(st.sampled_from(["", " ", "\t"])) + chr(zero) * draw(st.integers(0, 3)) + digits + " "


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(), st.text(alphabet="0123456789²³¹⁴-+_. ٣６𝟒"), typed_ids()))
@example("²")
@example("¹²")
@example("٣")
@example("４２")
@example("--5")
@example("-5")
@example("+5")
@example("1_0")
@example("42.0")
@example("4 2")
@example("")
@example("Ⅷ")
@example("9" * 5000)
@example("0" * 5000 + "42")
def test_any_typed_user_id_shows_that_user_or_says_why_not(ml1m, ml1m_split, popularity_explorer, text):
    typed = _typed_user(text)
    known = typed is not None and typed in set(map(str, ml1m.user_ids[ml1m_split.users].tolist()))
    expected = int(typed) if known else None
    try:
        position = user_position(ml1m, ml1m_split, text)
    except ExplorerInputError as error:
        assert not known and str(error)
    else:
        assert known and int(ml1m.user_ids[ml1m_split.users[position]]) == expected
    popularity_explorer.show(text)
    if known:
        assert popularity_explorer.user_id == expected and popularity_explorer.message == ""
        assert f"User {expected}:" in popularity_explorer.status.value
    else:
        assert popularity_explorer.user_id is None and popularity_explorer.message
        assert "recnb-error" in popularity_explorer.status.value and popularity_explorer.lists.value == ""


@pytest.mark.parametrize("text, expected", [("²", None), ("٣", 3), ("４２ ", 42), ("--5", None), ("1_0", None),
                                            ("9" * 5000, None), ("0" * 5000 + "42", 42), ("𝟒𝟐", 42)])
def test_the_attention_explorer_reads_typed_ids_the_same_way(ml1m, ml1m_split, sasrec, text, expected):
    explorer = AttentionExplorer(sasrec, ml1m, ml1m_split, last_n=5)
    explorer.user.value = text
    if expected is None:
        assert explorer.user_id is None and explorer.message and explorer.matrix.shape == (0, 0)
    else:
        assert explorer.user_id == expected and explorer.message == "" and explorer.matrix.shape == (5, 5)


def test_tied_scores_give_one_top_k_everywhere(synthetic):
    """The tie rule (higher score first, then the lower item id) is the same in the evaluator's top_k, recommend
    and the recommendation explorer; the attention explorer orders tied weights the same way (older film first)."""
    split = leave_one_out(synthetic.sequences)
    tiers = torch.arange(synthetic.n_items + 1) % 3   # three scores for the whole catalogue: ties everywhere

    def tied(padded):
        return tiers.float().expand(len(padded), -1)

    explorer = RecommendationExplorer(synthetic, split, {"tied": tied}, k=10)
    history = explorer.histories[explorer.position]
    candidates = [i for i in range(1, synthetic.n_items + 1) if i not in set(history.tolist())]
    expected = sorted(candidates, key=lambda i: (-int(tiers[i]), i))[:10]
    assert top_k(tied, [history], 10)[0].tolist() == expected
    assert recommend_items(tied, synthetic, history, 10)["item_id"].tolist() == expected
    assert explorer.recommendations["tied"]["item_id"].tolist() == expected

    class UniformAttention(torch.nn.Module):   # every position attends equally to all it may see: all tied
        config = SimpleNamespace(n_layers=1, n_heads=1, max_len=200)

        def forward(self, padded, return_attention=False):
            weights = torch.ones(padded.shape[1], padded.shape[1]).tril()
            return None, [(weights / weights.sum(1, keepdim=True))[None, None]]

    attention = AttentionExplorer(UniformAttention(), synthetic, split)
    length = len(attention.items)
    assert length > 8
    assert attention.top_attended["positions back"].tolist() == list(range(length - 1, length - 9, -1))
