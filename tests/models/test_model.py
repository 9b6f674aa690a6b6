"""SASRec's masks and shapes: no look-ahead, padding-invariance, valid attention weights."""

import pytest
import torch

from recnb.errors import InvalidArgumentError
from recnb.models.sasrec import (
    SASRec,
    attention_mask,
    config_from_preset,
    count_parameters,
    embedding_components,
)
from tests.helpers import TINY_N_ITEMS, tiny_sasrec


def test_future_items_do_not_change_earlier_outputs():
    model = tiny_sasrec()
    a = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8]])
    b = a.clone()
    b[0, 5:] = torch.tensor([20, 21, 22])  # change only the future of position 4
    with torch.no_grad():
        ha, hb = model(a), model(b)
    assert torch.allclose(ha[:, :5], hb[:, :5], atol=1e-6)
    assert not torch.allclose(ha[:, 5:], hb[:, 5:])


def test_without_the_causal_mask_the_future_leaks():
    model = tiny_sasrec(causal=False)
    a = torch.tensor([[1, 2, 3, 4]])
    b = torch.tensor([[1, 2, 3, 9]])
    with torch.no_grad():
        assert not torch.allclose(model(a)[:, 0], model(b)[:, 0])
    assert attention_mask(a, causal=False).all()


def test_left_padding_does_not_change_real_outputs():
    model = tiny_sasrec()
    short = torch.tensor([[3, 4, 5]])
    padded = torch.tensor([[0, 0, 0, 0, 3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(model(short), model(padded)[:, -3:], atol=1e-5)
        assert torch.allclose(model.score(short), model.score(padded), atol=1e-5)


@pytest.mark.parametrize("with_weights", [True, False])
def test_no_nan_from_all_padding_rows(with_weights):
    model = tiny_sasrec()
    histories = torch.tensor([[0, 0, 0, 0], [0, 0, 1, 2]])
    model.train()
    out = model(histories, return_attention=with_weights)
    hidden = out[0] if with_weights else out
    assert torch.isfinite(hidden).all()
    hidden.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_attention_weights_are_causal_and_sum_to_one():
    model = tiny_sasrec(n_layers=2, n_heads=2)
    histories = torch.tensor([[0, 0, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        hidden, attention = model(histories, return_attention=True)
    assert len(attention) == 2 and attention[0].shape == (2, 2, 6, 6)
    for weights in attention:
        assert torch.allclose(weights.sum(-1), torch.ones(2, 2, 6))
        assert (weights.triu(diagonal=1) == 0).all()
        assert (weights[0, :, 2:, :2] == 0).all()  # real queries never attend to padding
    # the explicit path and the fused kernel compute the same thing
    assert torch.allclose(hidden, model(histories), atol=1e-5)


def test_mask_helper():
    mask = attention_mask(torch.tensor([[0, 1, 2]]))[0, 0]
    assert mask.tolist() == [[True, False, False], [False, True, False], [False, True, True]]


def test_long_histories_keep_the_most_recent_items_in_score():
    model = tiny_sasrec()
    long = torch.arange(1, 21)[None]  # 20 items, max_len 12
    with torch.no_grad():
        assert torch.allclose(model.score(long), model.score(long[:, -12:]))
    with pytest.raises(ValueError, match="exceed max_len"):
        model(long)


def test_metadata_switches_and_heads():
    tied = tiny_sasrec()
    plain = tiny_sasrec(use_genre=False, use_year=False, tied_head=False)
    assert tied.genre_embedding is not None and plain.genre_embedding is None and plain.year_embedding is None
    assert plain.head is not None and tied.head is None
    counts = count_parameters(plain)
    assert counts["output head (separate)"] == 32 * (TINY_N_ITEMS + 1) + (TINY_N_ITEMS + 1)
    assert counts["total"] == sum(p.numel() for p in plain.parameters())
    assert tied.score(torch.tensor([[1, 2]])).shape == (1, TINY_N_ITEMS + 1)


def test_embedding_components_are_the_looked_up_rows_and_add_up_to_the_models_input():
    model = tiny_sasrec()
    history = torch.tensor([3, 4, 5, 6])
    parts = embedding_components(model, history)
    assert list(parts) == ["item", "position", "genre", "year", "sum"]
    assert all(p.shape == (4, model.config.d_model) for p in parts.values())
    assert torch.equal(parts["item"], model.item_embedding.weight[history].detach())
    # positions are counted from the right: the last of 4 items gets position max_len - 1, the first max_len - 4
    assert torch.equal(parts["position"], model.position_embedding.weight[8:12].detach())
    assert torch.equal(parts["genre"], model.genre_embedding.weight[model.item_genre[history]].detach())
    assert torch.equal(parts["year"], model.year_embedding.weight[model.item_year_bucket[history]].detach())
    with torch.no_grad():
        assert torch.allclose(parts["sum"], model.embed(history[None])[0])


def test_embedding_components_skip_features_the_model_does_not_have():
    model = tiny_sasrec(use_genre=False, use_year=False)
    parts = embedding_components(model, [1, 2])
    assert list(parts) == ["item", "position", "sum"]
    assert torch.equal(parts["sum"], parts["item"] + parts["position"])


def test_a_scaled_item_embedding_enters_the_input_times_sqrt_d_and_the_output_head_unscaled():
    plain = tiny_sasrec(use_genre=False, use_year=False).eval()
    scaled = tiny_sasrec(use_genre=False, use_year=False, scale_item_embedding=True).eval()
    scaled.load_state_dict(plain.state_dict())     # the same weights: only the input's sum differs
    history = torch.tensor([3, 4, 5, 6])
    root_d = plain.config.d_model ** 0.5
    parts = embedding_components(scaled, history)
    assert torch.allclose(parts["item"], root_d * plain.item_embedding.weight[history].detach())
    with torch.no_grad():
        assert torch.allclose(parts["sum"], scaled.embed(history[None])[0])
        assert not torch.allclose(scaled.embed(history[None]), plain.embed(history[None]))
        hidden = scaled(history[None])[:, -1]
        assert torch.allclose(scaled.logits(hidden), hidden @ plain.item_embedding.weight.T)


def test_bad_configs_are_clear():
    with pytest.raises(ValueError, match="divisible"):
        config_from_preset("quick", 10, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="Unknown preset"):
        config_from_preset("huge", 10)
    with pytest.raises(ValueError, match="Unknown config fields"):
        config_from_preset("quick", 10, width=3)
    config = config_from_preset("quick", TINY_N_ITEMS, n_genres=5)
    with pytest.raises(ValueError, match="item_genre must be a tensor"):
        SASRec(config, torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("n_layers, n_heads, head", [(1, 1, dict()), (2, 2, dict(item_bias=True)),
                                                    (3, 4, dict(tied_head=False))])
def test_the_scoring_path_equals_the_last_position_of_the_full_forward(n_layers, n_heads, head):
    """score() trims all-padding columns and runs the last block for the last position only: same scores."""
    model = tiny_sasrec(n_layers=n_layers, n_heads=n_heads, **head).eval()
    torch.manual_seed(1)
    if model.output_bias is not None:
        torch.nn.init.normal_(model.output_bias)
    histories = torch.randint(1, TINY_N_ITEMS + 1, (5, 12))
    histories[:, :4] = 0                               # every row padded at the left: those columns are dropped
    histories[0, :9] = 0                               # and one row much shorter than the others
    with torch.no_grad():
        full = model.logits(model(histories)[:, -1])   # every position of every block
        scored = model.score(histories)
        last = model(histories, last_only=True)
    assert last.shape == (5, 1, model.config.d_model)
    assert torch.allclose(scored, full, atol=1e-5)
    assert model.score(torch.zeros(2, 6, dtype=torch.long)).shape == (2, TINY_N_ITEMS + 1)   # all padding: no error


def test_the_item_bias_adds_a_learned_score_of_each_item_to_the_tied_head():
    """logits = h . E^T + b, in every scoring path; b starts at 0 (a new model scores as one without it) and learns."""
    plain, biased = tiny_sasrec(), tiny_sasrec(item_bias=True)
    histories = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.equal(biased.score(histories), plain.score(histories))      # same seed, bias still 0
        biased.output_bias.normal_(0, 1.0)
        states = biased.user_states(histories)
        expected = states @ biased.item_embedding.weight.T + biased.output_bias
        assert torch.allclose(biased.logits(states), expected, atol=1e-6)
        assert torch.allclose(biased.score(histories), expected, atol=1e-5)
        assert torch.allclose(biased.score_items(states, 3, 9), expected[:, 3:9], atol=1e-6)
        assert not torch.allclose(biased.score(histories), plain.score(histories))
    counts = count_parameters(biased)
    assert counts["output bias (tied head)"] == TINY_N_ITEMS + 1
    assert "output bias (tied head)" not in count_parameters(plain)
    assert counts["total"] == sum(p.numel() for p in biased.parameters())
    biased.logits(biased(histories)[:, -1])[:, 7].sum().backward()
    assert biased.output_bias.grad[7] == 2 and biased.output_bias.grad.abs().sum() == 2   # item 7's score, twice
    with pytest.raises(InvalidArgumentError, match="has a bias of its own"):
        tiny_sasrec(item_bias=True, tied_head=False)
