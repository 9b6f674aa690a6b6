"""The output layer's losses: what training minimises after the Transformer.

Full cross-entropy (``"ce"``) builds the (positions x items) logits at once: one step of 128 histories x 200
positions against ML-32M's 87,585 films is a 25,600 x 87,586 matrix, ~9 GB in fp32 before its gradient. Three
ways keep the memory of a step from growing with the catalogue:

- ``"ce-chunked"``: the same value and gradients as ``"ce"``, computed over chunks of items with a running
  logsumexp; the backward pass recomputes each chunk's logits, so no more than (positions x chunk) logits exist
  at once (:func:`chunked_cross_entropy`).
- ``"sampled"``: a softmax over the target and ``negatives`` items shared by the micro-batch, drawn uniformly,
  by training frequency (``popularity``) or taken from the micro-batch's own targets (``in-batch``), with the
  logQ correction that makes it estimate the full softmax (:func:`sampled_softmax`, :func:`draw_negatives`).
- ``"bce"``: the SASRec paper's loss, one negative a position.
- ``"gbce"``: gSASRec's generalised binary cross-entropy (Petrov and Macdonald, 2023) over ``negatives`` uniform
  draws shared by the micro-batch, its positive term raised to the power beta that undoes the overconfidence
  negative sampling teaches (:func:`gbce_beta`, :func:`generalised_bce`).

``negatives_per="history"`` (``"sampled"`` and ``"gbce"``) draws ``negatives`` items for each history instead,
shared by that history's positions (:func:`history_negatives_loss`): the product costs the same, but a step
pushes down ``histories x negatives`` draws (most of ML-1M's catalogue) instead of ``negatives`` items.

``label_smoothing`` (``"ce"`` only) moves that share of the target's probability to every item evenly, a
regulariser against an overconfident softmax.

:class:`LossSettings` holds one choice; :func:`loss_settings` builds it from a
:class:`~recnb.models.training.TrainConfig` and the training sequences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from recnb.errors import InvalidArgumentError
from recnb.models.sasrec import SASRec

LOSSES = ("ce", "ce-chunked", "sampled", "bce", "gbce")
SAMPLERS = ("uniform", "popularity", "in-batch")
#: Who shares a draw of negatives: every position of the micro-batch, or the positions of one history.
NEGATIVES_PER = ("batch", "history")
#: The memory one chunk of ``ce-chunked`` may take (its logits and their softmax, fp32), when no chunk is given.
CHUNK_MEMORY_MIB = 256


def _is_count(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and bool(value >= 1)


def _is_fraction(value) -> bool:
    """A real number in [0, 1]."""
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and bool(0 <= value <= 1)


@dataclass(frozen=True, eq=False)
class LossSettings:
    """One choice of output-layer loss (see :func:`output_loss`).

    ``loss`` one of :data:`LOSSES`; ``negatives`` the sampled loss's draws a micro-batch; ``sampler`` one of
    :data:`SAMPLERS` (``"sampled"`` only); ``logq`` the correction for how often an item is drawn (popularity
    and in-batch; a uniform draw is never corrected, as before); ``popularity_power`` the exponent of the
    popularity draw (draw probability ~ count ** power); ``loss_chunk`` the items of one ``ce-chunked`` chunk
    (None: from :data:`CHUNK_MEMORY_MIB`); ``item_counts`` each item id's training frequency, (N + 1,), which the
    popularity draw needs (:func:`item_frequencies`); ``label_smoothing`` the share of the target's probability
    that full cross-entropy spreads over every column (``"ce"`` only); ``gbce_t`` gBCE's calibration t in [0, 1]
    (``"gbce"`` only; 0 is plain binary cross-entropy, 1 fully calibrated; gSASRec's default 0.75);
    ``negatives_per`` one of :data:`NEGATIVES_PER`: ``"batch"`` draws once for the micro-batch, ``"history"`` once
    for each history (``"sampled"`` with the uniform or popularity sampler, and ``"gbce"``).
    """

    loss: str = "ce"
    negatives: int = 1000
    sampler: str = "uniform"
    logq: bool = True
    popularity_power: float = 1.0
    loss_chunk: int | None = None
    item_counts: torch.Tensor | None = field(default=None, repr=False)
    label_smoothing: float = 0.0
    gbce_t: float = 0.75
    negatives_per: str = "batch"

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InvalidArgumentError(f"loss must be one of {LOSSES}, not {self.loss!r}.")
        if self.sampler not in SAMPLERS:
            raise InvalidArgumentError(f"sampler must be one of {SAMPLERS}, not {self.sampler!r}.")
        if not _is_count(self.negatives):
            raise InvalidArgumentError(f"negatives must be a whole number of at least 1, not {self.negatives!r}.")
        if not isinstance(self.logq, bool):
            raise InvalidArgumentError(f"logq must be True or False, not {self.logq!r}.")
        power = self.popularity_power
        if isinstance(power, bool) or not isinstance(power, (int, float, np.number)) or not (
                math.isfinite(power) and power >= 0):
            raise InvalidArgumentError(f"popularity_power must be a number of 0 or more, not {power!r}.")
        if self.loss_chunk is not None and not _is_count(self.loss_chunk):
            raise InvalidArgumentError(f"loss_chunk must be a whole number of at least 1 (or None: chosen from a "
                                       f"memory budget), not {self.loss_chunk!r}.")
        if self.sampler != "uniform" and self.loss != "sampled":
            raise InvalidArgumentError(f"sampler {self.sampler!r} draws the negatives of the sampled loss; with loss "
                                       f"{self.loss!r} leave it at 'uniform', or choose loss 'sampled'.")
        if self.loss_chunk is not None and self.loss != "ce-chunked":
            raise InvalidArgumentError(f"loss_chunk sets the chunks of loss 'ce-chunked'; loss {self.loss!r} has "
                                       "none: leave it out, or choose loss 'ce-chunked'.")
        smoothing, t = self.label_smoothing, self.gbce_t
        if not _is_fraction(smoothing) or smoothing >= 1:
            raise InvalidArgumentError(f"label_smoothing must be a number from 0 up to (not including) 1, not "
                                       f"{smoothing!r}.")
        if smoothing and self.loss != "ce":
            raise InvalidArgumentError(f"label_smoothing smooths the full softmax of loss 'ce'; loss {self.loss!r} "
                                       "has none: leave it at 0, or choose loss 'ce'.")
        if not _is_fraction(t):
            raise InvalidArgumentError(f"gbce_t must be a number from 0 to 1, not {t!r}.")
        if t != 0.75 and self.loss != "gbce":
            raise InvalidArgumentError(f"gbce_t calibrates loss 'gbce'; loss {self.loss!r} has no such setting: "
                                       "leave it out, or choose loss 'gbce'.")
        if self.negatives_per not in NEGATIVES_PER:
            raise InvalidArgumentError(f"negatives_per must be one of {NEGATIVES_PER}, not {self.negatives_per!r}.")
        if self.negatives_per == "history" and (self.loss not in ("sampled", "gbce") or self.sampler == "in-batch"):
            raise InvalidArgumentError(
                f"negatives_per 'history' draws negatives for each history, for loss 'sampled' (uniform or "
                f"popularity sampler) or 'gbce'; loss {self.loss!r} with sampler {self.sampler!r} draws none of its "
                "own: leave negatives_per at 'batch', or choose one of those.")
        if self.item_counts is not None:
            counts = self.item_counts
            if not isinstance(counts, torch.Tensor) or counts.dim() != 1 or counts.is_floating_point() and (
                    not torch.isfinite(counts).all()) or bool((counts < 0).any()) or not bool((counts[1:] > 0).any()):
                raise InvalidArgumentError("item_counts must be a 1-D tensor of N + 1 finite counts of 0 or more, "
                                           "one per item id (0: padding), with at least one item counted; build "
                                           "it with recnb.models.losses.item_frequencies(split.train, n_items).")


def as_loss_settings(loss: str | LossSettings = "ce", negatives: int = 1000) -> LossSettings:
    """``loss`` itself when it is a :class:`LossSettings`, else the settings of a loss named with its negatives."""
    return loss if isinstance(loss, LossSettings) else LossSettings(loss, negatives)


def item_frequencies(sequences: Sequence[np.ndarray], n_items: int) -> torch.Tensor:
    """How often each item id occurs in ``sequences``: an (N + 1,) int64 tensor, 0 for padding."""
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if len(sequences) else np.zeros(0, int)
    if len(items) and (items.min() < 1 or items.max() > n_items):
        raise InvalidArgumentError(f"The sequences hold item ids outside 1..{n_items}: give the n_items of the "
                                   "data they come from.")
    return torch.from_numpy(np.bincount(items, minlength=n_items + 1).astype(np.int64))


def loss_settings(config, train_sequences: Sequence[np.ndarray] | None = None,
                  n_items: int | None = None) -> LossSettings:
    """The :class:`LossSettings` of a :class:`~recnb.models.training.TrainConfig`.

    The popularity sampler draws by training frequency, so it needs ``train_sequences`` (``split.train``) and
    ``n_items``; the other losses ignore them.
    """
    counts = None
    if config.loss == "sampled" and config.sampler == "popularity":
        if train_sequences is None or n_items is None:
            raise InvalidArgumentError("The popularity sampler draws items by their training frequency: pass the "
                                       "training sequences (split.train) and n_items to loss_settings.")
        counts = item_frequencies(train_sequences, n_items)
    return LossSettings(config.loss, config.negatives, config.sampler, config.logq, config.popularity_power,
                        config.loss_chunk, counts, config.label_smoothing, config.gbce_t, config.negatives_per)


# ----------------------------------------------------------------------------- the output layer
def output_weights(model: SASRec) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The output layer's (N + 1, D) weights and bias: the item embedding for a tied head, with the model's
    ``output_bias`` (None unless ``item_bias`` is on)."""
    if model.head is None:                              # tied head: a score is h . item embedding (+ a bias)
        return model.item_embedding.weight, model.output_bias
    return model.head.weight, model.head.bias


def sequence_loss(model: SASRec, inputs: torch.Tensor, targets: torch.Tensor,
                  loss: str | LossSettings = "ce", negatives: int = 1000) -> tuple[torch.Tensor, int]:
    """Summed loss at every non-padding position, and the number of positions.

    Logits are computed only where the target is a real item: with left padding that is about half the
    positions of ML-1M. ``loss`` names the loss (with its ``negatives``) or is a :class:`LossSettings`; see
    :func:`output_loss` for what each computes, and :func:`history_negatives_loss` for negatives drawn per history.
    """
    settings = as_loss_settings(loss, negatives)
    hidden = model(inputs)                              # (B, L, D)
    real = targets != 0                                 # (B, L)
    if settings.negatives_per == "history":
        return history_negatives_loss(model, hidden, targets, settings), int(real.sum())
    return output_loss(model, hidden[real], targets[real], settings), int(real.sum())


def output_loss(model: SASRec, h: torch.Tensor, positives: torch.Tensor, loss: str | LossSettings = "ce",
                negatives: int = 1000) -> torch.Tensor:
    """The output layer's summed loss for hidden states ``h`` (M, D) and their target ids ``positives`` (M,).

    ``"ce"`` (this series' default): cross-entropy over every item id (padding, column 0, is one more column of
    the softmax, as it always was). The (M x N + 1) logits are the largest tensor in training.
    ``"ce-chunked"``: the same value and gradients, never more than (M x chunk) logits at once
    (:func:`chunked_cross_entropy`).
    ``"sampled"``: cross-entropy of the target against negatives shared by all M positions (a negative equal to
    a position's own target is left out of that position's softmax), so the output layer is an (M x D) by
    (D x negatives) product. The ``uniform`` draw (``negatives`` items with replacement) is not corrected:
    Klenitskiy and Vasilev (2023) match full cross-entropy on ML-1M with 3,000 of them. The ``popularity``
    draw (by training frequency ** power) and the ``in-batch`` negatives (the micro-batch's own targets)
    favour popular items; ``logq`` corrects for it (:func:`draw_negatives`).
    ``"bce"`` (the SASRec paper's loss): binary cross-entropy of the target against one negative drawn
    uniformly from the other items, at each position. The paper also excludes the user's other items from the
    draw; this one does not (on ML-1M a user's films are on average about 5% of the catalogue), which keeps the
    draw independent of the batch.
    ``"gbce"``: gSASRec's generalised BCE of the target against ``negatives`` uniform draws shared by the micro-batch
    (:func:`generalised_bce`).
    """
    settings = as_loss_settings(loss, negatives)
    if settings.loss == "ce":
        logits = model.logits(h)                        # (M, N + 1)
        return F.cross_entropy(logits.float(), positives, reduction="sum", label_smoothing=settings.label_smoothing)
    weight, bias = output_weights(model)
    if settings.loss == "ce-chunked":
        return chunked_cross_entropy(h, weight, bias, positives, settings.loss_chunk)
    n_items = model.config.n_items
    if settings.loss == "sampled":
        drawn, log_expected = draw_negatives(settings, positives, n_items)
        return sampled_softmax(h, weight, bias, positives, drawn, log_expected)
    if settings.loss == "gbce":
        drawn = torch.randint(1, n_items + 1, (settings.negatives,), device=positives.device)
        return generalised_bce(h, weight, bias, positives, drawn, gbce_beta(settings.negatives, n_items,
                                                                            settings.gbce_t))
    offset = torch.randint(1, n_items, positives.shape, device=positives.device)  # never 0: never the target
    bce_negatives = (positives - 1 + offset) % n_items + 1  # (M,) uniform over real items other than the target
    positive_logit, negative_logit = ((h * weight[ids]).sum(-1) + (0 if bias is None else bias[ids])
                                      for ids in (positives, bce_negatives))  # (M,) each: only two scores a row
    positive_logit, negative_logit = positive_logit.float(), negative_logit.float()
    bce = F.softplus(-positive_logit) + F.softplus(negative_logit)   # -log s(pos) - log(1 - s(neg))
    return bce.sum()


# ----------------------------------------------------------------------------- distillation
def distillation_loss(student: SASRec, teachers: Sequence[SASRec], inputs: torch.Tensor, targets: torch.Tensor,
                      alpha: float = 0.5, temperature: float = 1.0) -> tuple[torch.Tensor, int]:
    """Summed knowledge-distillation loss over the real positions of a micro-batch, and their number.

    ``(1 - alpha) x`` full cross-entropy of the film that came, plus ``alpha x`` the cross-entropy of the
    student's softmax at ``temperature`` against the teachers' (the softmax of the mean of their logits, what
    :class:`~recnb.models.ensemble.Ensemble` scores), times temperature squared so its gradient keeps its size
    (Hinton, Vinyals and Dean, 2015). The teachers are read, never trained (put them in eval mode); ``alpha`` 0 is
    ``sequence_loss``'s ``"ce"``. ``benchmarks/study_distillation.py`` trains with it.
    """
    hidden = student(inputs)                                             # (B, L, D)
    real = targets != 0
    logits = student.logits(hidden[real]).float()                        # (M, N + 1)
    hard = F.cross_entropy(logits, targets[real], reduction="sum")
    if alpha == 0:
        return hard, int(real.sum())
    with torch.no_grad():
        mean = torch.stack([teacher.logits(teacher(inputs)[real]).float() for teacher in teachers]).mean(0)
        soft_targets = (mean / temperature).softmax(-1)                  # (M, N + 1): the teachers' distribution
    soft = -(soft_targets * (logits / temperature).log_softmax(-1)).sum() * temperature ** 2
    return (1 - alpha) * hard + alpha * soft, int(real.sum())


# ----------------------------------------------------------------------------- sampled softmax
def draw_negatives(settings: LossSettings, positives: torch.Tensor,
                   n_items: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The negative item ids a micro-batch shares, and what to subtract from their logits (None: nothing).

    The logQ correction subtracts the log of each negative's *expected number of draws*, S q(j) for S draws
    from a distribution q: the sum of exp(score - log S q) over the draws then estimates the sum of exp(score)
    over the whole catalogue, so the loss approaches full cross-entropy as S grows (subtracting log q alone
    shifts every negative by the same log S). ``uniform``: S ids uniform over 1..N (with replacement), never
    corrected (as before: the correction would be the same constant for every negative). ``popularity``: S ids
    drawn with probability ~ count ** power, corrected by log S q. ``in-batch``: the micro-batch's targets, one
    column each, corrected by log of the item's frequency among them; computed over the distinct targets (with
    the correction, each distinct item counts once; without it, an item counts as often as it is a target), so
    the logits are (M x distinct targets).
    """
    device = positives.device
    if settings.sampler == "uniform":
        return torch.randint(1, n_items + 1, (settings.negatives,), device=device), None
    if settings.sampler == "in-batch":
        distinct, counts = torch.unique(positives, return_counts=True)
        return distinct, None if settings.logq else -counts.float().log()
    counts = settings.item_counts
    if counts is None:
        raise InvalidArgumentError("The popularity sampler needs the training items' counts: build the settings "
                                   "with loss_settings(train_config, split.train, n_items) or pass item_counts "
                                   "(recnb.models.losses.item_frequencies).")
    if len(counts) != n_items + 1:
        raise InvalidArgumentError(f"item_counts holds {len(counts):,} counts but the model scores {n_items:,} "
                                   "items (+ padding): count the items of the data the model is trained on.")
    probabilities = popularity_distribution(counts, settings.popularity_power)
    drawn = torch.multinomial(probabilities, settings.negatives, replacement=True)
    log_expected = (settings.negatives * probabilities[drawn]).log().float()
    return drawn.to(device), log_expected.to(device) if settings.logq else None


def popularity_distribution(counts: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """The popularity draw's probability of each item id: count ** power, normalised; never padding, never an
    item without a count (even with power 0, where every counted item is equally likely)."""
    counts = counts.double().cpu()
    weights = torch.where(counts > 0, counts.pow(power), torch.zeros_like(counts))
    weights[0] = 0.0
    return weights / weights.sum()


def sampled_softmax(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, positives: torch.Tensor,
                    negatives: torch.Tensor, log_expected: torch.Tensor | None = None) -> torch.Tensor:
    """Summed cross-entropy of each target against the shared ``negatives`` (S,), their logits less
    ``log_expected`` (S,) where given; a negative equal to a row's target is masked out of that row."""
    positive_logit = (h * weight[positives]).sum(-1, keepdim=True)                  # (M, 1)
    negative_logits = h @ weight[negatives].T                                        # (M, S)
    if bias is not None:
        positive_logit, negative_logits = positive_logit + bias[positives, None], negative_logits + bias[negatives]
    if log_expected is not None:
        negative_logits = negative_logits.float() - log_expected
    hit = negatives[None, :] == positives[:, None]      # (M, S): a draw of the target itself is no negative
    return softmax_against_draws(positive_logit.squeeze(1), negative_logits, hit)


def softmax_against_draws(positive_logit: torch.Tensor, negative_logits: torch.Tensor,
                          hit: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of each row's target (M,) against its negatives (M, S), those where ``hit`` left out."""
    logits = torch.cat([positive_logit[:, None], negative_logits.masked_fill(hit, -torch.inf)], dim=1).float()
    zeros = torch.zeros(len(logits), dtype=torch.long, device=logits.device)      # the target is column 0
    return F.cross_entropy(logits, zeros, reduction="sum")


# ----------------------------------------------------------------------------- gBCE
def gbce_beta(negatives: int, n_items: int, t: float = 0.75) -> float:
    """gSASRec's power beta = alpha (t (1 - 1/alpha) + 1/alpha) for a sampling rate alpha = negatives / (N - 1).

    A model trained with k negatives of N - 1 learns sigmoid scores that overstate the probability of the target;
    raising the positive term's sigmoid to beta corrects that in proportion t (t = 0: beta 1, plain BCE; t = 1:
    beta = alpha, fully calibrated; Petrov and Macdonald, RecSys 2023).
    """
    alpha = min(negatives / max(n_items - 1, 1), 1.0)
    return alpha * (t * (1 - 1 / alpha) + 1 / alpha)


def generalised_bce(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, positives: torch.Tensor,
                    negatives: torch.Tensor, beta: float) -> torch.Tensor:
    """Summed gBCE: -beta log sigmoid(target's score) - sum of log(1 - sigmoid(score)) over the shared ``negatives``
    (S,), a negative equal to a row's target left out of that row. beta = 1 is binary cross-entropy."""
    positive_logit = (h * weight[positives]).sum(-1)                                 # (M,)
    negative_logits = h @ weight[negatives].T                                        # (M, S)
    if bias is not None:
        positive_logit, negative_logits = positive_logit + bias[positives], negative_logits + bias[negatives]
    hit = negatives[None, :] == positives[:, None]      # (M, S): a draw of the target itself is no negative
    return gbce_against_draws(positive_logit, negative_logits, hit, beta)


def gbce_against_draws(positive_logit: torch.Tensor, negative_logits: torch.Tensor, hit: torch.Tensor,
                       beta: float) -> torch.Tensor:
    """Summed gBCE of each row's target (M,) against its negatives (M, S), those where ``hit`` left out."""
    negative_part = F.softplus(negative_logits.float()).masked_fill(hit, 0.0)      # -log(1 - sigmoid(s))
    return beta * F.softplus(-positive_logit.float()).sum() + negative_part.sum()   # -log sigmoid(s) ** beta


# ----------------------------------------------------------------------------- negatives drawn per history
def draw_history_negatives(settings: LossSettings, histories: int, n_items: int,
                           device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(histories, negatives) item ids, a row of draws for each history, and what to subtract from their logits
    (None: nothing): as :func:`draw_negatives` does for one shared draw, uniform or by popularity."""
    shape = (histories, settings.negatives)
    if settings.sampler == "uniform":
        return torch.randint(1, n_items + 1, shape, device=device), None
    drawn, log_expected = draw_negatives(replace(settings, negatives=histories * settings.negatives),
                                         torch.zeros(0, dtype=torch.long, device=device), n_items)
    # each history's expected draws of item j are negatives x q(j), not the whole draw's
    log_expected = None if log_expected is None else log_expected - math.log(histories)
    return drawn.view(shape), None if log_expected is None else log_expected.view(shape)


def history_negative_logits(hidden: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None, drawn: torch.Tensor, log_expected: torch.Tensor | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each real position's target logit (M,), the logits of its own history's draws (M, S) less ``log_expected``
    (B, S) where given, and where a draw is that position's target (M, S).

    ``hidden`` (B, L, D), ``targets`` (B, L) with 0 for padding, ``drawn`` (B, S). The negatives' product is one
    batched (L x D) by (D x S) product a history, padding positions included (dropped afterwards).
    """
    real = targets != 0
    negative = torch.bmm(hidden, weight[drawn].transpose(1, 2))      # (B, L, S)
    if bias is not None:
        negative = negative + bias[drawn][:, None, :]
    if log_expected is not None:
        negative = negative.float() - log_expected[:, None, :]
    hit = drawn[:, None, :] == targets[:, :, None]                   # (B, L, S): the target itself is no negative
    h, positives = hidden[real], targets[real]
    positive = (h * weight[positives]).sum(-1)
    if bias is not None:
        positive = positive + bias[positives]
    return positive, negative[real], hit[real]


def history_negatives_loss(model: SASRec, hidden: torch.Tensor, targets: torch.Tensor,
                           settings: LossSettings) -> torch.Tensor:
    """The summed ``"sampled"`` or ``"gbce"`` loss with ``negatives`` drawn for each history of the micro-batch
    and shared by its positions (``negatives_per="history"``), as Klenitskiy and Vasilev's sampled softmax draws
    them; ``hidden`` (B, L, D), ``targets`` (B, L) with 0 for padding."""
    n_items = model.config.n_items
    weight, bias = output_weights(model)
    drawn, log_expected = draw_history_negatives(settings, len(hidden), n_items, hidden.device)
    positive, negative, hit = history_negative_logits(hidden, targets, weight, bias, drawn, log_expected)
    if settings.loss == "gbce":
        return gbce_against_draws(positive, negative, hit, gbce_beta(settings.negatives, n_items, settings.gbce_t))
    return softmax_against_draws(positive, negative, hit)


# ----------------------------------------------------------------------------- chunked exact cross-entropy
def items_per_chunk(positions: int, n_columns: int, memory_mib: float = CHUNK_MEMORY_MIB) -> int:
    """Items in one chunk so that its fp32 logits and their softmax (two (positions x chunk) tensors, plus one
    for the chunk's temporaries) stay within ``memory_mib``; at least 1, at most every column."""
    per_item = 3 * 4 * max(positions, 1)
    return int(min(max(int(memory_mib * 2**20 // per_item), 1), n_columns))


def chunked_cross_entropy(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                          item_chunk: int | None = None) -> torch.Tensor:
    """Summed cross-entropy of ``h @ weight.T (+ bias)`` against ``targets``, over chunks of ``item_chunk`` items.

    The value and the gradients (of ``h``, ``weight`` and ``bias``) are full cross-entropy's, to rounding; memory
    is O(M x chunk) instead of O(M x items): the forward pass keeps a running logsumexp of each row, and the
    backward pass recomputes each chunk's logits to turn them into that chunk's softmax. Every column counts,
    padding's (0) included, as in ``F.cross_entropy`` over the full logits. Under autocast the products run in
    the autocast type and the softmax in fp32, as the full loss's do.
    """
    chunk = item_chunk if item_chunk is not None else items_per_chunk(len(h), len(weight))
    if not _is_count(chunk):
        raise InvalidArgumentError(f"item_chunk must be a whole number of at least 1, not {chunk!r}.")
    return _ChunkedCrossEntropy.apply(h, weight, bias, targets, int(chunk))


def _compute_dtype(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    """The type of the products: autocast's when it is on for this device (as ``model.logits`` would run)."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return dtype


def _chunk_logits(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, start: int,
                  stop: int) -> torch.Tensor:
    """Logits of the columns start..stop-1, (M, stop - start), in fp32 (fp64 for fp64 inputs)."""
    w = weight[start:stop]
    logits = h @ w.T if bias is None else F.linear(h, w, bias[start:stop])
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


class _ChunkedCrossEntropy(torch.autograd.Function):
    """Full cross-entropy, summed, with the logits made one chunk of items at a time (forward and backward)."""

    @staticmethod
    def forward(ctx, h, weight, bias, targets, chunk):
        dtype = _compute_dtype(h.device, h.dtype)
        with torch.autocast(h.device.type, enabled=False):
            hc, wc = h.to(dtype), weight.to(dtype)
            bc = None if bias is None else bias.to(dtype)
            exact = torch.promote_types(dtype, torch.float32)   # the softmax's type
            lse = torch.full((len(h),), -torch.inf, dtype=exact, device=h.device)
            target_logit = torch.zeros(len(h), dtype=exact, device=h.device)
            for start in range(0, len(weight), chunk):
                stop = min(start + chunk, len(weight))
                logits = _chunk_logits(hc, wc, bc, start, stop)                      # (M, C)
                lse = torch.logaddexp(lse, torch.logsumexp(logits, dim=1))
                inside = (targets >= start) & (targets < stop)
                column = (targets - start).clamp(0, stop - start - 1)
                target_logit = torch.where(inside, logits.gather(1, column[:, None]).squeeze(1), target_logit)
        ctx.save_for_backward(h, weight, bias, targets, lse)
        ctx.chunk, ctx.dtype = chunk, dtype
        return (lse - target_logit).sum()

    @staticmethod
    def backward(ctx, grad_output):
        h, weight, bias, targets, lse = ctx.saved_tensors
        chunk, dtype = ctx.chunk, ctx.dtype
        need_h, need_weight, need_bias = ctx.needs_input_grad[:3]
        with torch.autocast(h.device.type, enabled=False):
            hc, wc = h.to(dtype), weight.to(dtype)
            bc = None if bias is None else bias.to(dtype)
            exact = lse.dtype
            grad_h = torch.zeros(h.shape, dtype=exact, device=h.device) if need_h else None
            grad_weight = torch.zeros(weight.shape, dtype=exact, device=h.device) if need_weight else None
            grad_bias = torch.zeros(bias.shape, dtype=exact, device=h.device) if need_bias else None
            rows = torch.arange(len(h), device=h.device)
            scale = grad_output.to(exact)
            for start in range(0, len(weight), chunk):
                stop = min(start + chunk, len(weight))
                # d loss / d logits = softmax - one-hot of the target, times the incoming gradient
                probabilities = _chunk_logits(hc, wc, bc, start, stop).sub_(lse[:, None]).exp_()   # (M, C)
                inside = (targets >= start) & (targets < stop)
                probabilities[rows[inside], targets[inside] - start] -= 1.0
                probabilities.mul_(scale)
                d_logits = probabilities.to(dtype)
                if grad_h is not None:
                    grad_h.add_(d_logits @ wc[start:stop])
                if grad_weight is not None:
                    grad_weight[start:stop] = d_logits.T @ hc
                if grad_bias is not None:
                    grad_bias[start:stop] = probabilities.sum(0)
        return (None if grad_h is None else grad_h.to(h.dtype),
                None if grad_weight is None else grad_weight.to(weight.dtype),
                None if grad_bias is None else grad_bias.to(bias.dtype), None, None)
