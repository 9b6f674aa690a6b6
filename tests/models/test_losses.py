"""Output-layer losses for large catalogues: chunked exact cross-entropy and the sampled-softmax samplers."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recnb.cli import build_parser, train_settings
from recnb.data.split import leave_one_out
from recnb.errors import InvalidArgumentError
from recnb.models.checkpoints import load_checkpoint
from recnb.models.losses import (
    LossSettings,
    chunked_cross_entropy,
    distillation_loss,
    draw_history_negatives,
    draw_negatives,
    gbce_beta,
    generalised_bce,
    history_negatives_loss,
    item_frequencies,
    items_per_chunk,
    loss_settings,
    output_loss,
    output_weights,
    popularity_distribution,
    sampled_softmax,
    sequence_loss,
)
from recnb.models.sasrec import SASRec
from recnb.models.training import TrainConfig, train_recipe, train_sasrec, training_tensors
from recnb.models.training import output_loss as output_loss_from_training
from recnb.models.training import sequence_loss as sequence_loss_from_training
from tests.helpers import REPO
from tests.models.test_train import quick_config, tiny_data

CHECKPOINT = REPO / "checkpoints" / "sasrec_compact_ml1m.pt"


def tiny_model(n_items=12, **overrides) -> SASRec:
    data = tiny_data(n_items=n_items)
    return SASRec(quick_config(data, dropout=0.0, **overrides), data.item_genre, data.item_year_bucket)


def random_output_layer(n_rows=37, n_columns=23, width=8, bias=False, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(n_rows, width, dtype=dtype, generator=generator).requires_grad_()
    weight = torch.randn(n_columns, width, dtype=dtype, generator=generator).requires_grad_()
    b = torch.randn(n_columns, dtype=dtype, generator=generator).requires_grad_() if bias else None
    targets = torch.randint(0, n_columns, (n_rows,), generator=generator)
    targets[0] = 0                    # padding's column is one more column of the softmax, as in full CE
    return h, weight, b, targets


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("chunk", [1, 5, 22, 23, 100, None])
def test_chunked_cross_entropy_has_full_cross_entropys_value_and_gradients(bias, chunk):
    h, weight, b, targets = random_output_layer(bias=bias)
    inputs = [h, weight] + ([b] if bias else [])
    full = F.cross_entropy(F.linear(h, weight, b), targets, reduction="sum")
    chunked = chunked_cross_entropy(h, weight, b, targets, chunk)
    assert torch.allclose(chunked, full, rtol=1e-12, atol=1e-10)
    for expected, got in zip(torch.autograd.grad(full, inputs), torch.autograd.grad(chunked, inputs)):
        assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_chunked_cross_entropy_passes_gradcheck_and_scales_with_the_incoming_gradient():
    h, weight, b, targets = random_output_layer(n_rows=5, n_columns=7, width=3, bias=True)
    assert torch.autograd.gradcheck(lambda h, w, b: 2.5 * chunked_cross_entropy(h, w, b, targets, 3), (h, weight, b))


def test_chunked_cross_entropy_never_keeps_the_logit_matrix():
    """What autograd saves for the backward pass: the full loss keeps (M x items) tensors, the chunked one none."""
    h, weight, _, targets = random_output_layer(n_rows=64, n_columns=500, dtype=torch.float32)

    def largest_saved(loss_of):
        sizes = []

        def pack(tensor):
            sizes.append(tensor.numel())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss_of().backward()
        return max(sizes)

    assert largest_saved(lambda: F.cross_entropy(h @ weight.T, targets, reduction="sum")) >= 64 * 500
    # the chunked one saves its inputs (the (500 x 8) weights at most) and one logsumexp a row
    assert largest_saved(lambda: chunked_cross_entropy(h, weight, None, targets, 50)) == weight.numel() < 64 * 500
    assert items_per_chunk(25_600, 87_586) == 873 and items_per_chunk(1, 10) == 10    # 256 MiB / (3 x 4 B x M)


def test_chunked_cross_entropy_under_bfloat16_autocast_follows_the_full_loss():
    h, weight, _, targets = random_output_layer(n_rows=64, n_columns=300, width=16, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        full = F.cross_entropy((h @ weight.T).float(), targets, reduction="sum")
        chunked = chunked_cross_entropy(h, weight, None, targets, 70)
    assert chunked.dtype == torch.float32 and torch.allclose(chunked, full, rtol=1e-4)
    for expected, got in zip(torch.autograd.grad(full, [h, weight]), torch.autograd.grad(chunked, [h, weight])):
        assert torch.allclose(got, expected, atol=0.01 * float(expected.abs().max()))


def test_ce_chunked_equals_ce_on_a_real_ml1m_batch(ml1m, ml1m_split):
    """The committed ML-1M checkpoint: loss, and gradients of the hidden states and of the item embedding."""
    model, _ = load_checkpoint(CHECKPOINT, ml1m)
    inputs, targets = training_tensors(ml1m_split.train[:48], model.config.max_len)
    real = targets != 0
    with torch.no_grad():
        hidden = model(inputs)[real]                    # (M, 64): a few thousand positions
    results = []
    for settings in ("ce", LossSettings("ce-chunked", loss_chunk=500), LossSettings("ce-chunked")):
        model.zero_grad()
        h = hidden.clone().requires_grad_()
        loss = output_loss(model, h, targets[real], settings)
        loss.backward()
        results.append((loss.detach(), h.grad, model.item_embedding.weight.grad.clone()))
    (full, h_grad, item_grad), *chunked = results
    assert len(hidden) > 2000 and ml1m.n_items == 3416
    for loss, chunk_h_grad, chunk_item_grad in chunked:
        assert torch.allclose(loss, full, rtol=1e-5)
        assert torch.allclose(chunk_h_grad, h_grad, atol=1e-5 * float(h_grad.abs().max()))
        assert torch.allclose(chunk_item_grad, item_grad, atol=1e-5 * float(item_grad.abs().max()))
    # through the whole model (sequence_loss, as training calls it), and importable from training as before
    assert output_loss_from_training is output_loss and sequence_loss_from_training is sequence_loss
    batch = inputs[:8], targets[:8]
    assert torch.allclose(sequence_loss(model, *batch, "ce-chunked")[0], sequence_loss(model, *batch)[0], rtol=1e-5)


def test_training_with_ce_chunked_repeats_training_with_ce():
    data = tiny_data()
    split = leave_one_out(data.sequences)
    runs = [train_sasrec(data, split, quick_config(data, dropout=0.0),
                         TrainConfig(epochs=2, batch_size=8, lr=1e-2, seed=1, loss=loss, progress=False,
                                     verbose=False, **chunk))
            for loss, chunk in (("ce", {}), ("ce-chunked", {"loss_chunk": 5}))]
    assert np.allclose(runs[0].history["loss"], runs[1].history["loss"], rtol=1e-4)


# ----------------------------------------------------------------------------- sampled softmax
def small_catalogue(n_items=40, positions=64, width=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(positions, width, generator=generator, dtype=torch.float64)
    weight = torch.randn(n_items + 1, width, generator=generator, dtype=torch.float64)
    positives = torch.randint(1, n_items + 1, (positions,), generator=generator)
    counts = torch.zeros(n_items + 1, dtype=torch.int64)
    counts[1:] = (1000 / torch.arange(1, n_items + 1) ** 1.2).long() + 1    # a long tail, every item counted
    return h, weight, positives, counts


def mean_sampled_loss(settings, h, weight, positives, repeats=20):
    torch.manual_seed(0)
    n_items = len(weight) - 1
    losses = [float(sampled_softmax(h, weight, None, positives, *draw_negatives(settings, positives, n_items)))
              for _ in range(repeats)]
    return np.mean(losses) / len(h)


def test_corrected_popularity_loss_approaches_full_cross_entropy_as_negatives_grow():
    h, weight, positives, counts = small_catalogue()
    n_items = len(weight) - 1
    logits = (h @ weight.T)
    logits[:, 0] = -torch.inf                           # the sampled loss never scores padding
    full = float(F.cross_entropy(logits, positives, reduction="mean"))
    gaps = [abs(mean_sampled_loss(LossSettings("sampled", s, "popularity", item_counts=counts), h, weight,
                                  positives) - full) for s in (10, 100, 1000)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.005 * full
    uncorrected = mean_sampled_loss(LossSettings("sampled", 1000, "popularity", logq=False, item_counts=counts),
                                    h, weight, positives)
    assert abs(uncorrected - full) > 20 * gaps[2]       # without logQ it converges to something else
    # a uniform draw is left uncorrected (as before); corrected by hand, it approaches full CE too
    torch.manual_seed(0)
    drawn, nothing = draw_negatives(LossSettings("sampled", 1000), positives, n_items)
    corrected = float(sampled_softmax(h, weight, None, positives, drawn,
                                      torch.full((1000,), np.log(1000 / n_items), dtype=torch.float64))) / len(h)
    assert nothing is None and abs(corrected - full) < 0.01 * full


def test_popularity_draw_follows_the_training_counts():
    counts = torch.tensor([0, 0, 1, 2, 5, 10, 0, 3])
    for power in (1.0, 0.5):
        settings = LossSettings("sampled", 200_000, "popularity", popularity_power=power, item_counts=counts)
        torch.manual_seed(0)
        drawn, log_expected = draw_negatives(settings, torch.tensor([2]), 7)
        expected = torch.where(counts > 0, counts.double() ** power, 0.0)
        expected /= expected.sum()
        frequency = torch.bincount(drawn, minlength=8).double() / len(drawn)
        assert torch.allclose(frequency, expected, atol=0.005)
        assert frequency[[0, 1, 6]].sum() == 0           # padding and uncounted items are never drawn
        assert torch.allclose(log_expected, (200_000 * expected[drawn]).log().float())
        assert torch.allclose(popularity_distribution(counts, power), expected)
    # the training frequencies themselves
    assert item_frequencies([np.array([1, 2, 2]), np.array([3, 2])], 4).tolist() == [0, 1, 3, 1, 0]


def test_a_negative_equal_to_the_target_is_left_out_of_that_rows_softmax():
    h, weight, positives, counts = small_catalogue(n_items=6, positions=5)
    positives = torch.tensor([1, 2, 3, 1, 6])
    negatives = torch.tensor([1, 1, 4, 5])
    h.requires_grad_()
    loss = sampled_softmax(h, weight, None, positives, negatives)
    expected = 0.0
    for row, target in zip(h @ weight.T, positives):
        others = row[negatives[negatives != target]]
        expected = expected - torch.log_softmax(torch.cat([row[target].view(1), others]), 0)[0]
    assert torch.allclose(loss.double(), expected, rtol=1e-6)
    # a row whose only negative is its own target: nothing to tell apart, no loss and no gradient
    only_itself = sampled_softmax(h[:1], weight, None, positives[:1], torch.tensor([1, 1]))
    assert float(only_itself.detach()) == 0.0
    assert torch.count_nonzero(torch.autograd.grad(only_itself, h)[0]) == 0
    # a popularity draw that must hit the targets: one counted item, every position's target
    settings = LossSettings("sampled", 50, "popularity", item_counts=torch.tensor([0, 5, 0, 0, 0, 0, 0]))
    assert float(sampled_softmax(h.detach(), weight, None, torch.ones(5, dtype=torch.long),
                                 *draw_negatives(settings, positives, 6))) == 0.0


@pytest.mark.parametrize("logq", [True, False])
def test_in_batch_negatives_are_the_batchs_targets_with_their_batch_frequency(logq):
    """Recomputed with one column per position's target, as in-batch negatives are usually written."""
    model = tiny_model(n_items=9)
    h = torch.randn(12, model.config.d_model, generator=torch.Generator().manual_seed(0))
    positives = torch.tensor([1, 2, 2, 3, 3, 3, 4, 5, 5, 7, 7, 7])
    count = torch.bincount(positives)
    loss = output_loss(model, h, positives, LossSettings("sampled", sampler="in-batch", logq=logq))
    logits = h @ model.item_embedding.weight.T.detach()
    expected = 0.0
    for row, target in zip(logits, positives):
        columns = positives[positives != target]         # the other positions' targets, an accidental hit left out
        scores = row[columns] - (count[columns].float().log() if logq else 0.0)
        expected = expected - torch.log_softmax(torch.cat([row[target].view(1), scores]), 0)[0]
    assert torch.allclose(loss, expected, rtol=1e-5)


def test_popularity_training_draws_by_the_training_split():
    data = tiny_data()
    split = leave_one_out(data.sequences)
    config = TrainConfig(epochs=3, batch_size=8, lr=1e-2, loss="sampled", sampler="popularity", negatives=6,
                         progress=False, verbose=False)
    settings = loss_settings(config, split.train, data.n_items)
    assert torch.equal(settings.item_counts, item_frequencies(split.train, data.n_items))
    result = train_sasrec(data, split, quick_config(data, dropout=0.0), config)
    assert np.isfinite(result.history["loss"]).all() and result.history["loss"].iloc[-1] < result.history["loss"][0]


def test_invalid_loss_settings_say_what_to_change():
    cases = [
        (dict(loss="softmax"), "loss must be one of"),
        (dict(loss="sampled", sampler="zipf"), "sampler must be one of"),
        (dict(loss="ce", sampler="popularity"), "leave it at 'uniform', or choose loss 'sampled'"),
        (dict(loss="sampled", negatives=0), "negatives must be a whole number"),
        (dict(loss="sampled", popularity_power=-1.0), "popularity_power must be a number of 0 or more"),
        (dict(loss="ce-chunked", loss_chunk=0), "loss_chunk must be a whole number"),
        (dict(loss="ce", loss_chunk=100), "choose loss 'ce-chunked'"),
        (dict(loss="sampled", sampler="popularity", item_counts=torch.tensor([0, -1, 2])), "item_counts must be"),
        (dict(loss="sampled", sampler="popularity", item_counts=torch.tensor([0, 0, 0])), "item_counts must be"),
    ]
    for settings, message in cases:
        with pytest.raises(InvalidArgumentError, match=message):
            LossSettings(**settings)
    positives = torch.tensor([1, 2])
    with pytest.raises(InvalidArgumentError, match="needs the training items' counts"):
        draw_negatives(LossSettings("sampled", sampler="popularity"), positives, 5)
    with pytest.raises(InvalidArgumentError, match="holds 4 counts but the model scores 5 items"):
        draw_negatives(LossSettings("sampled", sampler="popularity", item_counts=torch.tensor([0, 1, 2, 3])),
                       positives, 5)
    with pytest.raises(InvalidArgumentError, match="pass the training sequences"):
        loss_settings(TrainConfig(loss="sampled", sampler="popularity"))
    with pytest.raises(InvalidArgumentError, match="outside 1..3"):
        item_frequencies([np.array([1, 4])], 3)
    with pytest.raises(InvalidArgumentError, match="choose loss 'sampled'"):
        TrainConfig(sampler="in-batch")                  # the default loss, ce, draws nothing
    with pytest.raises(InvalidArgumentError, match="loss_chunk must be a whole number"):
        TrainConfig(loss="ce-chunked", loss_chunk=0)
    with pytest.raises(InvalidArgumentError, match="loss_chunk sets the chunks of loss 'ce-chunked'"):
        TrainConfig(loss_chunk=512)


def test_the_command_line_offers_the_loss_settings():
    parser = build_parser()
    args = parser.parse_args(["train", "--loss", "sampled", "--sampler", "popularity", "--negatives", "2000",
                              "--no-logq", "--popularity-power", "0.75"])
    settings = train_settings(args)
    assert settings == {"loss": "sampled", "sampler": "popularity", "negatives": 2000, "logq": False,
                        "popularity_power": 0.75}
    config = train_recipe("compact", **settings)
    assert (config.sampler, config.logq, config.negatives) == ("popularity", False, 2000)
    chunked = train_settings(parser.parse_args(["train", "--loss", "ce-chunked", "--loss-chunk", "4096"]))
    assert train_recipe("compact", **chunked).loss_chunk == 4096
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--sampler", "zipf"])
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "--sampler" in help_text and "--no-logq" in help_text and "ce-chunked" in help_text


def test_gbce_beta_is_one_without_calibration_and_the_sampling_rate_with_full_calibration():
    alpha = 256 / 3415                                   # 256 negatives of ML-1M's 3,416 items less the target
    assert gbce_beta(256, 3416, 0.0) == pytest.approx(1.0)
    assert gbce_beta(256, 3416, 1.0) == pytest.approx(alpha)
    assert gbce_beta(256, 3416, 0.75) == pytest.approx(alpha * (0.75 * (1 - 1 / alpha) + 1 / alpha))
    assert gbce_beta(256, 3416, 0.75) == pytest.approx(0.25 + 0.75 * alpha)   # the same, written out
    assert gbce_beta(5000, 3416, 0.75) == pytest.approx(1.0)   # more draws than items: alpha is capped at 1


@pytest.mark.parametrize("t", [0.0, 0.75, 1.0])
def test_gbce_is_beta_times_the_positive_term_plus_bce_of_each_shared_negative(t):
    h, weight, positives, _ = small_catalogue(n_items=9, positions=6)
    positives = torch.tensor([1, 2, 3, 4, 5, 6])
    negatives = torch.tensor([2, 7, 7, 9])              # row 2's target is drawn: it is no negative there
    beta = gbce_beta(len(negatives), 9, t)
    loss = generalised_bce(h, weight, None, positives, negatives, beta)
    expected = 0.0
    for row, target in zip(h @ weight.T, positives):
        expected -= beta * torch.log(torch.sigmoid(row[target]))
        for item in negatives[negatives != target]:
            expected -= torch.log(1 - torch.sigmoid(row[item]))
    assert torch.allclose(loss.double(), expected, rtol=1e-6)


def test_gbce_with_t_zero_is_plain_bce_and_trains_a_tiny_model():
    model = tiny_model(n_items=9)
    h = torch.randn(8, model.config.d_model, generator=torch.Generator().manual_seed(1))
    positives = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8])
    weight = model.item_embedding.weight.detach()
    torch.manual_seed(3)
    loss = output_loss(model, h, positives, LossSettings("gbce", negatives=5, gbce_t=0.0)).detach()
    torch.manual_seed(3)
    drawn = torch.randint(1, 10, (5,))                   # the same draw: uniform over the 9 items
    logits = h @ weight.T
    hit = drawn[None, :] == positives[:, None]
    by_hand = F.softplus(-logits[torch.arange(8), positives]).sum() + F.softplus(logits[:, drawn])[~hit].sum()
    assert torch.allclose(loss, by_hand, rtol=1e-5)
    data = tiny_data()
    split = leave_one_out(data.sequences)
    config = TrainConfig(epochs=3, batch_size=8, lr=1e-2, loss="gbce", negatives=6, progress=False, verbose=False)
    result = train_sasrec(data, split, quick_config(data, dropout=0.0), config)
    assert np.isfinite(result.history["loss"]).all() and result.history["loss"].iloc[-1] < result.history["loss"][0]


def test_label_smoothing_spreads_that_share_of_the_target_over_every_column():
    model = tiny_model(n_items=9)
    h = torch.randn(7, model.config.d_model, generator=torch.Generator().manual_seed(2))
    positives = torch.tensor([1, 2, 3, 4, 5, 6, 9])
    log_p = torch.log_softmax(h @ model.item_embedding.weight.detach().T, dim=1)   # (7, 10): padding too
    plain = -log_p[torch.arange(7), positives].sum()
    uniform = -log_p.mean(dim=1).sum()
    for smoothing in (0.0, 0.1, 0.5):
        loss = output_loss(model, h, positives, LossSettings("ce", label_smoothing=smoothing)).detach()
        assert torch.allclose(loss, (1 - smoothing) * plain + smoothing * uniform, rtol=1e-5)
    config = train_recipe("compact", label_smoothing=0.1)
    assert loss_settings(config).label_smoothing == 0.1


def test_label_smoothing_and_gbce_settings_say_what_to_change():
    cases = [
        (dict(loss="sampled", label_smoothing=0.1), "choose loss 'ce'"),
        (dict(loss="ce", label_smoothing=1.0), "label_smoothing must be a number from 0 up to"),
        (dict(loss="ce", label_smoothing=float("nan")), "label_smoothing must be a number from 0 up to"),
        (dict(loss="gbce", gbce_t=1.5), "gbce_t must be a number from 0 to 1"),
        (dict(loss="ce", gbce_t=0.5), "choose loss 'gbce'"),
    ]
    for settings, message in cases:
        with pytest.raises(InvalidArgumentError, match=message):
            LossSettings(**settings)
    with pytest.raises(InvalidArgumentError, match="label_smoothing must be a number from 0 up to"):
        TrainConfig(label_smoothing=-0.1)
    with pytest.raises(InvalidArgumentError, match="choose loss 'ce'"):
        TrainConfig(loss="gbce", label_smoothing=0.2)
    parser = build_parser()
    settings = train_settings(parser.parse_args(["train", "--loss", "gbce", "--negatives", "256", "--gbce-t", "0.5"]))
    assert settings == {"loss": "gbce", "negatives": 256, "gbce_t": 0.5}
    assert train_settings(parser.parse_args(["train", "--label-smoothing", "0.1"])) == {"label_smoothing": 0.1}


def test_output_weights_are_the_tied_embedding_or_the_head():
    tied = tiny_model()
    assert output_weights(tied)[0] is tied.item_embedding.weight and output_weights(tied)[1] is None
    biased = tiny_model(item_bias=True)
    assert output_weights(biased)[0] is biased.item_embedding.weight and output_weights(biased)[1] is biased.output_bias
    head = tiny_model(tied_head=False)
    assert output_weights(head)[0] is head.head.weight and output_weights(head)[1] is head.head.bias
    assert Path(CHECKPOINT).is_file()


# ----------------------------------------------------------------------------- negatives drawn per history
def padded_batch(model, seed=0):
    """Hidden states (3, 5, D) and targets with left padding: histories of 5, 3 and 1 real positions."""
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 5, model.config.d_model, generator=generator, requires_grad=True)
    targets = torch.tensor([[1, 2, 3, 4, 5], [0, 0, 6, 2, 2], [0, 0, 0, 0, 7]])
    return hidden, targets


@pytest.mark.parametrize("loss", ["sampled", "gbce"])
def test_negatives_per_history_are_each_historys_own_draws(loss):
    """Recomputed position by position: each real position against its own history's draws, a hit left out."""
    model = tiny_model(n_items=9)
    hidden, targets = padded_batch(model)
    settings = LossSettings(loss, negatives=4, negatives_per="history")
    torch.manual_seed(5)
    value = history_negatives_loss(model, hidden, targets, settings)
    torch.manual_seed(5)
    drawn = torch.randint(1, 10, (3, 4))                 # the same draws: a row of 4 for each history
    assert (drawn[:, :, None] == targets[:, None, :]).any()    # some draw is a position's own target
    weight, beta = model.item_embedding.weight.detach(), gbce_beta(4, 9, 0.75)
    expected = 0.0
    for b in range(3):
        for t in range(5):
            target = int(targets[b, t])
            if target == 0:
                continue
            scores = hidden[b, t].detach() @ weight.T
            others = scores[drawn[b][drawn[b] != target]]
            if loss == "sampled":
                expected -= torch.log_softmax(torch.cat([scores[target].view(1), others]), 0)[0]
            else:
                expected += beta * F.softplus(-scores[target]) + F.softplus(others).sum()
    assert torch.allclose(value.detach(), expected, rtol=1e-5)
    value.backward()                                     # padding positions get no gradient
    assert torch.count_nonzero(hidden.grad[targets == 0]) == 0 and torch.count_nonzero(hidden.grad[targets != 0])


def test_one_history_draws_as_the_micro_batch_does():
    """With a single history, a draw per history is the micro-batch's draw: the two settings give one loss."""
    model = tiny_model(n_items=9)
    hidden, targets = padded_batch(model)
    losses = []
    for per in ("batch", "history"):
        torch.manual_seed(2)
        h = hidden.detach()[:1]
        losses.append(history_negatives_loss(model, h, targets[:1], LossSettings("sampled", 6, negatives_per=per))
                      if per == "history" else output_loss(model, h[0], targets[0], LossSettings("sampled", 6)))
    assert torch.allclose(losses[0], losses[1])


def test_sequence_loss_draws_per_history_only_when_asked():
    model = tiny_model(n_items=9)
    inputs = torch.tensor([[0, 1, 2, 3], [0, 0, 4, 5]])
    targets = torch.tensor([[1, 2, 3, 4], [0, 0, 5, 6]])
    per_history = LossSettings("sampled", 5, negatives_per="history")
    torch.manual_seed(0)
    value, positions = sequence_loss(model, inputs, targets, per_history)
    torch.manual_seed(0)
    direct = history_negatives_loss(model, model(inputs), targets, per_history)
    assert positions == 6 and torch.allclose(value, direct)


def test_popularity_draws_per_history_are_corrected_by_each_historys_expected_draws():
    _, _, _, counts = small_catalogue(n_items=40)
    settings = LossSettings("sampled", 300, "popularity", item_counts=counts, negatives_per="history")
    torch.manual_seed(0)
    drawn, log_expected = draw_history_negatives(settings, 4, 40, torch.device("cpu"))
    q = popularity_distribution(counts)
    assert drawn.shape == log_expected.shape == (4, 300) and int(drawn.min()) >= 1
    assert torch.allclose(log_expected.double(), (300 * q[drawn]).log(), rtol=1e-5)   # S q(j), S a history's draws
    share = torch.bincount(drawn.flatten(), minlength=41)[1:].double() / drawn.numel()
    assert float((share - q[1:]).abs().max()) < 0.02     # 1,200 draws follow the training counts
    assert draw_history_negatives(LossSettings("sampled", 7, negatives_per="history"), 3, 40,
                                  torch.device("cpu"))[1] is None   # a uniform draw is never corrected


def test_negatives_per_history_settings_say_what_to_change_and_train_a_tiny_model():
    with pytest.raises(InvalidArgumentError, match="negatives_per must be one of"):
        LossSettings("sampled", negatives_per="position")
    for settings in (dict(loss="ce"), dict(loss="bce"), dict(loss="sampled", sampler="in-batch")):
        with pytest.raises(InvalidArgumentError, match="leave negatives_per at 'batch'"):
            LossSettings(**settings, negatives_per="history")
    with pytest.raises(InvalidArgumentError, match="--negatives-per must be one of|negatives_per must be one of"):
        TrainConfig(loss="sampled", negatives_per="user")
    args = build_parser().parse_args(["train", "--loss", "gbce", "--negatives", "8", "--negatives-per", "history"])
    config = train_recipe("compact", **train_settings(args))
    assert loss_settings(config).negatives_per == "history"
    data = tiny_data()
    split = leave_one_out(data.sequences)
    config = TrainConfig(epochs=3, batch_size=8, lr=1e-2, loss="sampled", negatives=6, negatives_per="history",
                         progress=False, verbose=False)
    result = train_sasrec(data, split, quick_config(data, dropout=0.0), config)
    assert np.isfinite(result.history["loss"]).all() and result.history["loss"].iloc[-1] < result.history["loss"][0]


@pytest.mark.parametrize("loss", ["ce", "ce-chunked", "sampled", "bce", "gbce"])
def test_every_loss_scores_with_the_item_bias(loss):
    """A tied head with a bias is a linear head whose weight is the item embedding: each loss, and its gradients,
    must be the same for both (the linear head's losses are checked against full logits above)."""
    biased = tiny_model(item_bias=True)
    torch.nn.init.normal_(biased.output_bias, 0, 2.0)
    linear = tiny_model(tied_head=False)
    shared = {k: v for k, v in biased.state_dict().items() if k != "output_bias"}
    linear.load_state_dict({**shared, "head.weight": biased.item_embedding.weight.detach(),
                            "head.bias": biased.output_bias.detach()})
    x = torch.tensor([[0, 0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]])
    y = torch.tensor([[0, 0, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    settings = LossSettings(loss, negatives=5, loss_chunk=4 if loss == "ce-chunked" else None)
    values = []
    for model in (biased, linear):
        torch.manual_seed(9)
        value, _ = sequence_loss(model, x, y, settings)
        value.backward()
        values.append(value)
    assert torch.allclose(values[0], values[1], atol=1e-5)
    assert torch.allclose(biased.output_bias.grad, linear.head.bias.grad, atol=1e-5)
    assert biased.output_bias.grad.abs().sum() > 0


def test_distillation_is_cross_entropy_against_the_film_and_against_the_teachers_mean_softmax():
    """Recomputed by hand from the logits: the hard part, the soft part against the softmax of the teachers' mean
    logits at a temperature (times its square), their mix; the teachers get no gradient."""
    student, first, second = tiny_model(), tiny_model(), tiny_model()
    for number, teacher in enumerate((first, second), 1):
        torch.manual_seed(number)
        for parameter in teacher.parameters():
            torch.nn.init.normal_(parameter, 0, 0.5)
    x = torch.tensor([[0, 0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]])
    y = torch.tensor([[0, 0, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    real = y != 0
    logits = student.logits(student(x)[real])
    hard = F.cross_entropy(logits, y[real], reduction="sum")
    plain = distillation_loss(student, [first, second], x, y, alpha=0)[0]
    assert torch.allclose(plain, sequence_loss(student, x, y)[0])
    for temperature in (1.0, 2.0):
        mean = (first.logits(first(x)[real]) + second.logits(second(x)[real])) / 2
        target = torch.softmax(mean / temperature, -1)
        soft = -(target * torch.log_softmax(logits / temperature, -1)).sum() * temperature ** 2
        value, positions = distillation_loss(student, [first, second], x, y, alpha=0.25, temperature=temperature)
        assert positions == 10 and torch.allclose(value, 0.75 * hard + 0.25 * soft, atol=1e-4)
    value.backward()
    assert all(p.grad is None for p in (*first.parameters(), *second.parameters()))
    assert student.item_embedding.weight.grad.abs().sum() > 0
    # a teacher that is the student itself: the soft part is the student's own entropy, above zero
    own = distillation_loss(student, [student], x, y, alpha=1.0)[0]
    probabilities = torch.softmax(logits, -1)
    assert torch.allclose(own, -(probabilities * torch.log(probabilities)).sum(), atol=1e-3)
