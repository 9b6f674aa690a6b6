"""Assignment 3: causal and padding masks, and multi-head masked attention."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recnb.models import sasrec as recnb_model
from recnb.models.sasrec import SASRecConfig, SelfAttention
from recnb.teaching.checks._core import (
    Reference,
    StudentError,
    call,
    cases_in_order,
    describe,
    failure,
    grid,
    name_of,
    raised,
    run_check,
)

# ----------------------------------------------------------------------------- the masks
#: Default histories of the mask checks (left-padded, 0 = padding), smallest first.
MASK_CASES = [[[5]], [[0, 5]], [[3, 5]], [[0, 0, 3, 4]], [[0, 2, 7], [4, 1, 6]], [[0, 0, 0], [0, 0, 9], [1, 2, 3]]]
_MASK_HINT = ("True means 'may attend'; rows are query positions, columns key positions. Causal: query i may "
              "see key j only when j <= i (torch.tril). Padding: only real items (not 0) may be seen, with "
              "singleton axes so one row per history broadcasts over heads and queries. The full mask combines "
              "both and lets every position see itself (torch.eye). Notebook 06, section 3.")


def _mask_references() -> list[Reference]:
    return [Reference(recnb_model.attention_mask, "recnb.models.sasrec.attention_mask")]


def _check_mask(name: str, kind: str, function, cases: list, expected_of, call_args, strict) -> None:
    def body():
        for case in cases:
            expected = expected_of(case.value)
            args, shown = call_args(case.value)
            shape = "bool tensor of shape " + ("(L, L)" if case.hidden else f"{tuple(expected.shape)}")
            if kind != "causal":
                layout = "(B, 1, 1, L)" if kind == "padding" else "(B, 1, L, L)"
                shape += f", laid out {layout} to broadcast over the attention heads"
            try:
                result = call(function, *args, refuse=_mask_references(), hidden=case.hidden)
            except StudentError as error:
                raise raised(name, error, shown, f"a {shape}", _MASK_HINT, case.hidden) from None
            if not isinstance(result, torch.Tensor) or tuple(result.shape) != tuple(expected.shape):
                raise failure(name, f"it should return a {shape}.", shown, f"a {shape}", describe(result),
                              _MASK_HINT, case.hidden)
            if result.dtype != torch.bool:
                raise failure(name, "it should return a bool tensor: attention reads a float mask as numbers "
                              "to add to the scores, not as allowed/forbidden.", shown, "dtype torch.bool",
                              f"dtype {result.dtype}", _MASK_HINT, case.hidden)
            if not torch.equal(result, expected):
                raise _mask_failure(name, kind, shown, expected, result, case.hidden)
        return f"matches recnb.models.sasrec.attention_mask on {len(cases)} inputs."

    run_check(name, body, strict)


def _mask_failure(name: str, kind: str, shown: str, expected: torch.Tensor, got: torch.Tensor,
                  hidden: bool) -> Exception:
    """Show the first differing 2-D slice as 0/1 grids, with what the first wrong entry means."""
    expected_2d, got_2d = expected.reshape(-1, *expected.shape[-2:]), got.reshape(-1, *got.shape[-2:])
    first = int((expected_2d != got_2d).flatten(1).any(1).nonzero()[0])
    e, g = expected_2d[first], got_2d[first]
    where = f" (batch row {first}, shown below)" if expected_2d.shape[0] > 1 and not hidden else ""
    i, j = (e != g).nonzero()[0].tolist()
    if torch.equal(g, ~e):
        problem = "True and False are swapped: True means 'may attend'."
    elif kind == "padding":
        problem = (f"key {j} is padding (item 0), yet it may be attended to." if g[i, j]
                   else f"key {j} is a real item, yet it is masked.")
    elif g[i, j] and j > i:
        problem = f"query {i} may attend to key {j}, a later position: the future leaks in."
    elif g[i, j]:
        problem = f"key {j} is padding (item 0), yet query {i} may attend to it."
    elif i == j and not bool(g[i].any()):
        problem = f"row {i} is all False: a softmax over nothing is NaN. Let every position see itself."
    elif i == j:
        problem = f"position {i} may not attend to itself."
    else:
        problem = f"query {i} may not attend to key {j}, a real item before it."
    return failure(name, problem + where, shown, grid(e), grid(g), _MASK_HINT, hidden)


def check_causal_mask(causal_mask, cases=None, strict: bool | None = None) -> None:
    """Check ``causal_mask(length) -> (L, L)`` bool, True where j <= i (``recnb.models.sasrec.attention_mask``
    of a history without padding). ``cases``: extra lengths."""
    _check_mask(
        name_of(causal_mask, "causal_mask"), "causal", causal_mask, cases_in_order([1, 2, 3, 5], cases, int),
        lambda length: recnb_model.attention_mask(torch.ones(1, length, dtype=torch.int64))[0, 0],
        lambda length: ((length,), f"length = {length}"), strict)


def _histories(case) -> torch.Tensor:
    return torch.as_tensor(case, dtype=torch.int64)


def check_padding_mask(padding_mask, cases=None, strict: bool | None = None) -> None:
    """Check ``padding_mask(histories) -> (B, 1, 1, L)`` bool, True where key j is a real item.

    This is the key-padding term of :func:`recnb.models.sasrec.attention_mask`.
    ``cases``: extra left-padded histories (lists of lists).
    """
    _check_mask(
        name_of(padding_mask, "padding_mask"), "padding", padding_mask, cases_in_order(MASK_CASES, cases, np.size),
        lambda case: (_histories(case) != 0)[:, None, None, :],
        lambda case: ((_histories(case),), f"histories = {_histories(case)}"), strict)


def check_attention_mask(attention_mask, cases=None, strict: bool | None = None) -> None:
    """Check ``attention_mask(histories) -> (B, 1, L, L)`` against :func:`recnb.models.sasrec.attention_mask`.

    ``cases``: extra left-padded histories (lists of lists).
    """
    _check_mask(
        name_of(attention_mask, "attention_mask"), "attention", attention_mask,
        cases_in_order(MASK_CASES, cases, np.size),
        lambda case: recnb_model.attention_mask(_histories(case)),
        lambda case: ((_histories(case),), f"histories = {_histories(case)}"), strict)


# ----------------------------------------------------------------------------- multi-head attention
#: Default inputs of the attention check, (batch, length, d_model, n_heads, seed), smallest first.
ATTENTION_CASES = [(1, 1, 2, 1, 0), (1, 2, 2, 1, 1), (1, 3, 4, 1, 2), (1, 3, 4, 2, 3), (2, 4, 4, 2, 4),
                   (2, 5, 8, 4, 5)]
PARAMETER_NAMES = ("w_q", "w_k", "w_v", "w_o", "b_q", "b_k", "b_v", "b_o")

_ATTENTION_HINT = ("Project x to q, k and v (x @ w + b), split the width D into n_heads heads of d = D / n_heads "
                   "((B, L, D) -> view (B, L, H, d) -> transpose (B, H, L, d)), score q @ k^T / sqrt(d), set the "
                   "scores where the mask is False to -inf, softmax over the keys (the last axis), multiply by v, "
                   "merge the heads back ((B, H, L, d) -> transpose (B, L, H, d) -> reshape (B, L, D)), and "
                   "project with w_o and b_o. Notebook 06b, section 3, does it by hand.")


def attention_example(batch: int = 1, length: int = 3, d_model: int = 4, n_heads: int = 2, seed: int = 0):
    """One input of the attention check: ``x, mask, params, histories``, to try your function on.

    ``histories`` is a left-padded batch (the first row has no padding, the others a random
    amount), ``mask = recnb.models.sasrec.attention_mask(histories)``, ``x`` a (B, L, D) batch of random
    inputs and ``params`` the layer's weights: ``w_q, w_k, w_v, w_o`` of shape (D, D), applied as
    ``x @ w``, and biases ``b_q, b_k, b_v, b_o`` of shape (D,).
    """
    generator = torch.Generator().manual_seed(seed)
    real = torch.randint(1, length + 1, (batch,), generator=generator)
    real[0] = length
    items = torch.randint(1, 10, (batch, length), generator=generator)
    histories = torch.where(torch.arange(length) >= length - real[:, None], items, 0)
    x = torch.randn(batch, length, d_model, generator=generator)
    params = {name: torch.randn(d_model, d_model, generator=generator) / math.sqrt(d_model)
              for name in PARAMETER_NAMES[:4]}
    params.update({name: 0.1 * torch.randn(d_model, generator=generator) for name in PARAMETER_NAMES[4:]})
    return x, recnb_model.attention_mask(histories), params, histories


def _reference_attention(x, mask, params, n_heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """recnb's own layer, :class:`recnb.models.sasrec.SelfAttention`, holding the given weights: (output, weights)."""
    layer = SelfAttention(SASRecConfig(n_items=1, d_model=x.shape[-1], n_heads=n_heads, dropout=0.0))
    with torch.no_grad():
        layer.qkv.weight.copy_(torch.cat([params["w_q"], params["w_k"], params["w_v"]], dim=1).T)
        layer.qkv.bias.copy_(torch.cat([params["b_q"], params["b_k"], params["b_v"]]))
        layer.out.weight.copy_(params["w_o"].T)
        layer.out.bias.copy_(params["b_o"])
        return layer(x, mask, return_weights=True)


def _attention_variant(x, mask, params, n_heads: int, *, scale="head", masking="fill", softmax_dim=-1,
                       split="view", merge="transpose", project=True) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out with one known mistake (or none), for naming the student's."""
    B, L, D = x.shape
    H, d = n_heads, D // n_heads
    q, k, v = (x @ params[f"w_{n}"] + params[f"b_{n}"] for n in "qkv")
    if split == "view":
        q, k, v = (t.view(B, L, H, d).transpose(1, 2) for t in (q, k, v))
    else:  # the memory reinterpreted as (B, H, L, d): positions and heads mixed up
        q, k, v = (t.reshape(B, H, L, d) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / {"head": math.sqrt(d), "model": math.sqrt(D), "none": 1.0}[scale]
    if masking == "fill":
        scores = scores.masked_fill(~mask, float("-inf"))
    elif masking == "inverted":
        scores = scores.masked_fill(mask, float("-inf"))
    weights = scores.softmax(dim=softmax_dim)
    if masking == "after":
        weights = weights * mask
    context = weights @ v
    context = context.transpose(1, 2).reshape(B, L, D) if merge == "transpose" else context.reshape(B, L, D)
    return (context @ params["w_o"] + params["b_o"] if project else context), weights


_WEIGHT_MISTAKES = [
    (dict(masking="none"), "masked keys get attention weight: set the scores where the mask is False to -inf "
                           "before the softmax (scores.masked_fill(~mask, float('-inf')))."),
    (dict(masking="inverted"), "the mask is used the wrong way round: True means 'may attend', so fill the scores "
                               "where the mask is False (~mask) with -inf."),
    (dict(masking="after"), "the mask is applied after the softmax: the masked weights are 0, but the others no "
                            "longer sum to 1. Mask the scores before the softmax."),
    (dict(scale="none"), "the scores are not scaled: divide q @ k^T by sqrt(d), d = D / n_heads the width of one "
                         "head, so the softmax does not saturate as d grows."),
    (dict(scale="model"), "the scores are divided by sqrt(D), the model width; divide by sqrt(d) = "
                          "sqrt(D / n_heads), the width of one head."),
    (dict(softmax_dim=-2), "the softmax runs over the queries (axis -2); each query's weights over the keys (the "
                           "last axis) must sum to 1."),
    (dict(split="reshape"), "the heads are split the wrong way: reshaping (B, L, D) straight to (B, H, L, d) mixes "
                            "positions and heads. View it as (B, L, H, d), then transpose to (B, H, L, d)."),
]
_OUTPUT_MISTAKES = [
    (dict(merge="reshape"), "the heads are merged the wrong way: reshaping (B, H, L, d) straight to (B, L, D) mixes "
                            "positions and heads. Transpose to (B, L, H, d) first, then reshape."),
    (dict(project=False), "the output projection is missing: the merged heads go through x @ w_o + b_o."),
]


def _attention_references() -> list[Reference]:
    return [Reference(SelfAttention.forward, "recnb.models.sasrec.SelfAttention"),
            Reference(F.scaled_dot_product_attention, "torch.nn.functional.scaled_dot_product_attention"),
            Reference(F.multi_head_attention_forward, "torch.nn.functional.multi_head_attention_forward"),
            Reference(nn.MultiheadAttention.forward, "torch.nn.MultiheadAttention"),
            Reference(_reference_attention, "recnb.teaching.checks' reference attention"),
            Reference(_attention_variant, "recnb.teaching.checks' reference attention")]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-5, equal_nan=True)


def _matrix(t: torch.Tensor) -> str:
    return "\n".join("  ".join(f"{v:7.3f}" for v in row) for row in t.tolist())


def check_multi_head_attention(multi_head_attention, cases=None, strict: bool | None = None) -> None:
    """Check ``multi_head_attention(x, mask, params, n_heads) -> (output (B, L, D), weights (B, H, L, L))``.

    The reference is :class:`recnb.models.sasrec.SelfAttention` holding the same weights, on random
    inputs from :func:`attention_example`. The function must write the attention itself: calling
    recnb's layer or PyTorch's attention functions is refused. ``cases``: extra
    ``(batch, length, d_model, n_heads, seed)`` tuples.
    """
    name = name_of(multi_head_attention, "multi_head_attention")
    all_cases = cases_in_order(ATTENTION_CASES, cases, lambda case: (case[0] * case[1] * case[2], case[3]))

    def body():
        for case in all_cases:
            _check_attention_case(name, multi_head_attention, case)
        return f"matches recnb.models.sasrec.SelfAttention on {len(all_cases)} random inputs."

    run_check(name, body, strict)


def _check_attention_case(name: str, function, case) -> None:
    batch, length, d_model, n_heads, seed = case.value
    x, mask, params, histories = attention_example(batch, length, d_model, n_heads, seed)
    expected_output, expected_weights = _reference_attention(x, mask, params, n_heads)
    shown = (f"x, mask, params, histories = checks.attention_example(batch={batch}, length={length}, "
             f"d_model={d_model}, n_heads={n_heads}, seed={seed})\nhistories = {histories}\nn_heads = {n_heads}")
    shapes = f"output of shape (B, L, D) = {(batch, length, d_model)} and weights of shape (B, H, L, L) = " \
             f"{(batch, n_heads, length, length)}"
    if case.hidden:
        shapes = "output of shape (B, L, D) and weights of shape (B, H, L, L)"

    def fail(problem: str, expected: str, got: str) -> Exception:
        return failure(name, problem, shown, expected, got, _ATTENTION_HINT, case.hidden)

    try:
        result = call(function, x.clone(), mask.clone(), {k: v.clone() for k, v in params.items()}, n_heads,
                      refuse=_attention_references(), hidden=case.hidden)
    except StudentError as error:
        raise raised(name, error, shown, shapes, _ATTENTION_HINT, case.hidden) from None
    if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(t, torch.Tensor) for t in result)):
        raise fail("it should return two tensors, (output, weights).", shapes, describe(result))
    output, weights = (t.detach() for t in result)
    if weights.shape == (batch, 1, length, length) and n_heads > 1:
        raise fail("it returns one head's weights: split the width D into n_heads heads of d = D / n_heads, each "
                   "with its own attention weights.", shapes, f"weights of shape {tuple(weights.shape)}")
    if output.shape != expected_output.shape or weights.shape != expected_weights.shape:
        raise fail("the shapes are wrong.", shapes,
                   f"output of shape {tuple(output.shape)} and weights of shape {tuple(weights.shape)}")
    if not _close(weights, expected_weights):
        head = _first_difference(weights, expected_weights)
        raise fail(_diagnose(x, mask, params, n_heads, _WEIGHT_MISTAKES, weights, 1, "the attention weights differ "
                             "from recnb.models.sasrec.SelfAttention's."),
                   f"weights[{head[0]}, {head[1]}] =\n{_matrix(expected_weights[head])}",
                   f"weights[{head[0]}, {head[1]}] =\n{_matrix(weights[head])}")
    if not _close(output, expected_output):
        row = _first_difference(output, expected_output)[:1]
        raise fail(_diagnose(x, mask, params, n_heads, _OUTPUT_MISTAKES, output, 0, "the weights are right but the "
                             "output is not: multiply the weights by v per head, merge the heads, then project."),
                   f"output[{row[0]}] =\n{_matrix(expected_output[row])}",
                   f"output[{row[0]}] =\n{_matrix(output[row])}")


def _first_difference(got: torch.Tensor, expected: torch.Tensor) -> tuple[int, int]:
    """(batch row, head) of the first slice where the two differ."""
    differs = ~torch.isclose(got.double(), expected.double(), rtol=1e-4, atol=1e-5, equal_nan=True)
    return tuple(int(i) for i in differs.nonzero()[0][:2])


def _diagnose(x, mask, params, n_heads, mistakes, got, part: int, otherwise: str) -> str:
    with torch.no_grad():
        for options, text in mistakes:
            if _close(got, _attention_variant(x, mask, params, n_heads, **options)[part]):
                return text
    if torch.isnan(got).any():
        return "some values are NaN: a softmax over a row of -inf only. " + otherwise
    return otherwise
