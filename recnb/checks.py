"""Checks for the course assignments (``notebooks/assignments``): immediate feedback, no server needed.

A student calls a check in the cell below an exercise, e.g. ``checks.check_ndcg(ndcg)``.
Each check runs the student's function on small inputs it builds itself, compares
the result with the reference implementation in recnb, and then:

- prints one line if everything matches;
- raises :class:`CheckFailed` (an ``AssertionError``) if something does not: what is
  wrong, the smallest failing input, expected against got, and a hint where to look.
  In Jupyter only that message is shown, not the check's own traceback;
- prints a reminder and returns if the function still raises the bare
  ``NotImplementedError()`` of the student version (not answered yet), so a fresh
  notebook runs top to bottom. With ``strict=True``, or under ``nbgrader validate``
  and ``nbgrader autograde`` (which set ``NBGRADER_EXECUTION``), that raises too.

``cases=`` adds inputs (the hidden tests of the assignments use it). Checks
return ``None``: nbgrader would read a number returned by a test cell as partial credit.
"""

from __future__ import annotations

import ast
import copy
import inspect
import math
import os
import sysconfig
import textwrap
import traceback
import warnings
from collections import Counter

import numpy as np
import torch
from torch import nn

from . import metrics
from .baselines import MarkovChain, last_items
from .model import SASRec, SASRecConfig
from .model import attention_mask as reference_attention_mask
from .train import accumulate_gradients, optimizer_step, sequence_loss, training_tensors

__all__ = [
    "CheckFailed", "check_hit_rate", "check_ndcg", "check_mrr", "check_transition_counts",
    "check_markov_scores", "check_causal_mask", "check_padding_mask", "check_attention_mask",
    "check_train_step",
]

_RED, _BOLD, _RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


class CheckFailed(AssertionError):
    """A check's verdict: what is wrong, the smallest failing input, expected against got, and a hint."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback: the message alone, its first line in red."""
        head, _, rest = str(self).partition("\n")
        return [f"{_RED}{_BOLD}{head}{_RESET}", *rest.splitlines()]


class _NotAnswered(Exception):
    """The student's function still raises the bare ``NotImplementedError()`` of the student version."""


# ----------------------------------------------------------------------------- shared machinery
def _strict(strict: bool | None) -> bool:
    if strict is not None:
        return strict
    return os.environ.get("NBGRADER_EXECUTION") in ("validate", "autograde")


def _name(function, default: str) -> str:
    return getattr(function, "__name__", default)


def _run(name: str, body, strict: bool | None) -> None:
    """Run a check body; report success, or 'not answered yet' (printed, or raised when strict)."""
    try:
        passed = body()
    except _NotAnswered:
        message = (f"✗ {name} is not answered yet: it still raises NotImplementedError.\n"
                   f"  Replace `raise NotImplementedError()` in the exercise cell with your code, run that "
                   f"cell, then run this check again.")
        if _strict(strict):
            raise CheckFailed(message) from None
        print(message)
        return
    print(f"✓ {name} {passed}")


def _call(function, *args, **kwargs):
    """Call the student's function, turning its exceptions into a 'not answered' or a failure to report."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbgrader scores any stderr output (warnings included) as a failure
        try:
            return function(*args, **kwargs)
        except NotImplementedError as error:
            if not str(error):  # the student version's stub; torch's own NotImplementedErrors have messages
                raise _NotAnswered from None
            raise _StudentError(error) from None
        except CheckFailed:
            raise
        except Exception as error:  # noqa: BLE001 - any error of the student's code is reported, not re-raised
            raise _StudentError(error) from None


class _StudentError(Exception):
    """An exception raised inside the student's function, kept for the report."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error

    def describe(self) -> str:
        library = (os.path.dirname(os.path.abspath(__file__)), sysconfig.get_paths()["purelib"],
                   sysconfig.get_paths()["stdlib"])
        frames = [frame for frame in traceback.extract_tb(self.error.__traceback__)
                  if not os.path.abspath(frame.filename).startswith(library)]  # the student's frames only
        lines = [f"line {frame.lineno} in {frame.name}: {frame.line}" for frame in frames[-3:] if frame.line]
        where = ("\n" + "\n".join(lines)) if lines else ""
        return f"{type(self.error).__name__}: {self.error}{where}"


def _failure(name: str, problem: str, inputs: str, expected: str, got: str, hint: str) -> CheckFailed:
    """A CheckFailed with the standard layout."""
    def block(title: str, text: str) -> str:
        return f"{title}\n{textwrap.indent(text, '    ')}"
    return CheckFailed("\n".join([
        f"✗ {name}: {problem}",
        block("Smallest failing input:", inputs),
        block("Expected:", expected),
        block("Got:", got),
        f"Hint: {hint}",
    ]))


def _raised(name: str, error: _StudentError, inputs: str, expected: str, hint: str) -> CheckFailed:
    return _failure(name, "it raised an error.", inputs, expected, error.describe(), hint)


def _loops(function) -> list[str]:
    """The ``for`` and ``while`` statements in a function's source ('line N: code'); [] if unreadable."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
        first = inspect.getsourcelines(function)[1]
    except (OSError, TypeError):
        return []
    try:
        tree = ast.parse(source)
    except SyntaxError:  # e.g. a lambda inside a larger expression: nothing to read
        return []
    lines = source.splitlines()
    return [f"line {first + node.lineno - 1}: {lines[node.lineno - 1].strip()}"
            for node in ast.walk(tree) if isinstance(node, (ast.For, ast.While, ast.AsyncFor))]


def _require_vectorized(function, name: str, hint: str) -> None:
    loops = _loops(function)
    if loops:
        raise CheckFailed(
            f"✗ {name}: its results are right, but it loops in Python, and the exercise asks for a "
            f"vectorized version (no `for` or `while`):\n    " + "\n    ".join(loops) + f"\nHint: {hint}")


def _as_float(value):
    """The student's return value as a float, or None if it is not a single number."""
    if isinstance(value, torch.Tensor):
        return float(value.detach()) if value.numel() == 1 else None
    if isinstance(value, (np.ndarray, np.generic)):
        return float(value) if np.size(value) == 1 else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def _grid(mask: torch.Tensor) -> str:
    """A 2-D boolean mask as rows of 0 and 1 (rows: query positions, columns: key positions)."""
    return "\n".join(" ".join("1" if v else "0" for v in row) for row in mask.tolist())


# ----------------------------------------------------------------------------- assignment 1: ranking metrics
#: Default inputs of the metric checks, (ranks, k), smallest first.
METRIC_CASES = [([1], 1), ([1], 10), ([10], 10), ([11], 10), ([2], 1), ([3], 5), ([1, 2], 1), ([1, 4, 9], 4),
                ([3, 1, 12, 5], 5), ([1, 1, 50, 7, 2, 10], 10)]

_METRIC_HINTS = {
    "hit_rate": "HR@K is the share of users whose held-out item is in the top K, and rank K itself is a hit. "
                "A comparison gives a bool tensor: make it floating point before averaging. Notebook 02, section 4.",
    "ndcg": "With one relevant item, a hit at rank r (r <= K) gains 1 / log2(r + 1), so rank 1 gains exactly 1, "
            "and a miss gains 0; NDCG@K is the average gain over users. Notebook 02, section 4.",
    "mrr": "Each user contributes the reciprocal of their rank (rank 4 gives 0.25), with no cut-off; MRR is "
           "the average over users. Notebook 02, section 4.",
}


def _metric_diagnosis(metric: str, ranks: torch.Tensor, k: int | None, got: float) -> str:
    """Name a common mistake when ``got`` equals what that mistake computes."""
    r = ranks.double()
    def gain(cut, discount):
        return torch.where(cut, discount, torch.zeros_like(r)).mean()

    mistakes = {
        "hit_rate": [
            ("counts rank K as a miss: use <= K, not < K.", lambda: (r < k).double().mean()),
            ("returns the number of hits; HR@K is their share (average over users).", lambda: (r <= k).double().sum()),
        ],
        "ndcg": [
            ("uses log2(rank); the discount is 1 / log2(rank + 1).", lambda: gain(r <= k, 1.0 / torch.log2(r))),
            ("uses the natural logarithm; the discount is base 2.", lambda: gain(r <= k, 1.0 / torch.log(r + 1.0))),
            ("ignores the cut-off: ranks beyond K must score 0.", lambda: (1.0 / torch.log2(r + 1.0)).mean()),
            ("counts rank K as a miss: use <= K, not < K.", lambda: gain(r < k, 1.0 / torch.log2(r + 1.0))),
        ],
        "mrr": [
            ("averages the ranks; MRR averages their reciprocals, 1 / rank.", lambda: r.mean()),
            ("takes the reciprocal of the mean rank; MRR is the mean of the reciprocals.", lambda: 1.0 / r.mean()),
            ("sums the reciprocal ranks; MRR averages them.", lambda: (1.0 / r).sum()),
        ],
    }[metric]
    for text, value in mistakes:
        if math.isclose(got, float(value()), rel_tol=1e-6, abs_tol=1e-12):
            return text
    return "the value differs from recnb.metrics."


def _check_metric(metric: str, function, cases, strict) -> None:
    reference = {"hit_rate": metrics.hit_rate, "ndcg": metrics.ndcg, "mrr": metrics.mrr}[metric]
    name = _name(function, metric)
    all_cases = sorted(METRIC_CASES + list(cases or []), key=lambda case: (len(case[0]), sum(case[0])))

    def body():
        for values, k in all_cases:
            ranks = torch.tensor(values, dtype=torch.int64)
            args = (ranks,) if metric == "mrr" else (ranks, k)
            shown = f"ranks = {ranks}" + ("" if metric == "mrr" else f", k = {k}")
            expected = reference(*args)
            try:
                result = _call(function, *(a.clone() if isinstance(a, torch.Tensor) else a for a in args))
            except _StudentError as error:
                raise _raised(name, error, shown, f"{expected:.6g}", _METRIC_HINTS[metric]) from None
            got = _as_float(result)
            if got is None:
                raise _failure(name, "it should return one number, the average over users.", shown,
                               f"{expected:.6g}", _describe(result), _METRIC_HINTS[metric])
            if not math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9):
                raise _failure(name, _metric_diagnosis(metric, ranks, k, got), shown, f"{expected:.6g}",
                               f"{got:.6g}", _METRIC_HINTS[metric])
        return f"matches recnb.metrics.{metric} on {len(all_cases)} inputs."

    _run(name, body, strict)


def check_hit_rate(hit_rate, cases=None, strict: bool | None = None) -> None:
    """Check ``hit_rate(ranks, k) -> float`` (HR@K) against :func:`recnb.metrics.hit_rate`.

    ``cases``: extra ``(ranks, k)`` pairs, ranks a list of ints >= 1.
    """
    _check_metric("hit_rate", hit_rate, cases, strict)


def check_ndcg(ndcg, cases=None, strict: bool | None = None) -> None:
    """Check ``ndcg(ranks, k) -> float`` (NDCG@K) against :func:`recnb.metrics.ndcg`."""
    _check_metric("ndcg", ndcg, cases, strict)


def check_mrr(mrr, cases=None, strict: bool | None = None) -> None:
    """Check ``mrr(ranks) -> float`` against :func:`recnb.metrics.mrr` (no cut-off); ``cases`` as (ranks, k)."""
    _check_metric("mrr", mrr, cases, strict)


# ----------------------------------------------------------------------------- assignment 2: Markov chain
#: Default training sets of the Markov checks, (sequences, n_items), smallest first.
MARKOV_CASES = [([[1, 2]], 2), ([[1, 2, 1]], 2), ([[1, 2], [3, 1]], 3), ([[2, 2, 2]], 2), ([[1], [2, 1]], 2),
                ([[1, 2, 3, 1, 2], [2, 3], [3, 1, 3]], 4)]

_COUNT_HINT = ("counts[a, b] is how often item b directly follows item a inside one user's sequence. Join the "
               "sequences (np.concatenate), pair each item with the next one, and drop the pairs that cross "
               "from one user to the next (np.repeat can number each item's user). Add the pairs up with an "
               "operation that accumulates repeats (np.add.at, np.bincount, or index_put_ with accumulate=True). "
               "Notebook 04.")
_SCORE_HINT = ("With left padding, each history's most recent item sits in the last column (0 if the history "
               "is empty). Its row of counts, divided by the row's total, is P(next | last item); a row that "
               "sums to 0 has no evidence and must stay all 0 (clamp the total). Notebook 04.")


def _sequences(raw) -> list[np.ndarray]:
    return [np.asarray(s, dtype=np.int64) for s in raw]


def _reference_chain(raw, n_items: int) -> MarkovChain:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MarkovChain(n_items).fit(_sequences(raw))


def _as_matrix(value, shape) -> torch.Tensor | None:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
        return None
    if value.is_sparse or value.layout != torch.strided:
        value = value.to_dense()
    return value.double()


def check_transition_counts(transition_counts, cases=None, strict: bool | None = None) -> None:
    """Check ``transition_counts(sequences, n_items) -> (N + 1, N + 1)`` dense counts, vectorized.

    The reference is :class:`recnb.baselines.MarkovChain`'s ``transitions`` (row a, column b:
    how often b follows a). ``cases``: extra ``(sequences, n_items)``, sequences lists of item ids.
    """
    name = _name(transition_counts, "transition_counts")
    all_cases = sorted(MARKOV_CASES + list(cases or []), key=lambda case: sum(map(len, case[0])))

    def body():
        for raw, n_items in all_cases:
            expected = _reference_chain(raw, n_items).transitions.to_dense()
            shown = f"sequences = {[list(s) for s in raw]}, n_items = {n_items}"
            try:
                result = _call(transition_counts, _sequences(raw), n_items)
            except _StudentError as error:
                raise _raised(name, error, shown, f"counts\n{expected.int()}", _COUNT_HINT) from None
            got = _as_matrix(result, (n_items + 1, n_items + 1))
            if got is None:
                raise _failure(name, f"it should return an (N + 1, N + 1) = ({n_items + 1}, {n_items + 1}) "
                               "tensor of counts (row 0 and column 0 are padding and stay 0).", shown,
                               f"a tensor of shape {tuple(expected.shape)}", _describe(result), _COUNT_HINT)
            if not torch.equal(got, expected):
                raise _failure(name, _count_diagnosis(raw, n_items, got, expected), shown,
                               f"counts\n{expected.int()}", f"counts\n{got.int()}" if torch.equal(
                                   got, got.round()) else f"{got}", _COUNT_HINT)
        _require_vectorized(transition_counts, name, _COUNT_HINT)
        return f"matches recnb.baselines.MarkovChain's transition counts on {len(all_cases)} inputs."

    _run(name, body, strict)


def _count_diagnosis(raw, n_items: int, got: torch.Tensor, expected: torch.Tensor) -> str:
    joined = _reference_chain([[i for s in raw for i in s]], n_items).transitions.to_dense()
    if torch.equal(got, expected.T):
        return "rows and columns are swapped: row a, column b counts b following a."
    if torch.equal(got, joined):
        return "it counts the pair from one user's last item to the next user's first item, which is not a transition."
    if torch.equal(got, expected.clamp_max(1)):
        return "a pair that occurs several times is counted once (indexed assignment does not accumulate)."
    return "the counts differ from recnb.baselines.MarkovChain's."


#: Default inputs of the scorer check, (sequences, n_items, histories), smallest first.
SCORE_CASES = [([[1, 2]], 2, [[1]]), ([[1, 2, 1, 1]], 2, [[0, 1]]), ([[1, 2], [2, 1]], 2, [[0, 0]]),
               ([[1, 2, 3], [2, 3]], 3, [[0, 3]]), ([[1, 2, 3, 1, 2], [2, 3], [3, 1, 3]], 4, [[0, 0, 3], [1, 2, 1]]),
               ([[1, 2, 3, 1, 2], [2, 3], [3, 1, 3]], 4, [[0, 0, 0, 2], [0, 4, 1, 3], [0, 0, 0, 0]])]


def check_markov_scores(markov_scores, cases=None, strict: bool | None = None) -> None:
    """Check ``markov_scores(counts, histories) -> (B, N + 1)``: P(next | last item), vectorized.

    ``counts`` is the reference dense count matrix (so this check does not depend on
    ``transition_counts``); the reference scores are
    :meth:`recnb.baselines.MarkovChain.next_item_probabilities` of each history's last item.
    ``cases``: extra ``(sequences, n_items, histories)``, histories left-padded lists of lists.
    """
    name = _name(markov_scores, "markov_scores")
    all_cases = sorted(SCORE_CASES + list(cases or []), key=lambda case: np.size(case[2]))

    def body():
        for raw, n_items, histories in all_cases:
            chain = _reference_chain(raw, n_items)
            counts = chain.transitions.to_dense()
            histories = torch.tensor(histories, dtype=torch.int64)
            expected = chain.next_item_probabilities(last_items(histories, 1)[:, 0])
            shown = f"counts =\n{counts.int()}\nhistories = {histories}"
            try:
                result = _call(markov_scores, counts.clone(), histories.clone())
            except _StudentError as error:
                raise _raised(name, error, shown, f"{expected}", _SCORE_HINT) from None
            got = _as_matrix(result, tuple(expected.shape))
            if got is None:
                raise _failure(name, f"it should return one row of N + 1 = {n_items + 1} scores per history.",
                               shown, f"a tensor of shape {tuple(expected.shape)}", _describe(result), _SCORE_HINT)
            if not torch.allclose(got, expected, atol=1e-6, equal_nan=False):
                raise _failure(name, _score_diagnosis(counts, histories, got), shown, f"{expected}", f"{got}",
                               _SCORE_HINT)
        _require_vectorized(markov_scores, name, _SCORE_HINT)
        return f"matches recnb.baselines.MarkovChain's probabilities on {len(all_cases)} inputs."

    _run(name, body, strict)


def _score_diagnosis(counts: torch.Tensor, histories: torch.Tensor, got: torch.Tensor) -> str:
    if torch.isnan(got).any():
        return "some scores are NaN: a row without evidence (or the padding row 0) divided 0 by 0."
    first = counts[histories[:, 0]]
    if torch.allclose(got, first / first.sum(1, keepdim=True).clamp_min(1)):
        return "it uses the first column; with left padding the most recent item is in the last column."
    if torch.allclose(got, counts[histories[:, -1]]):
        return "it returns the raw counts; divide each row by its total to get probabilities."
    return "the scores differ from P(next | last item)."


# ----------------------------------------------------------------------------- assignment 3: attention masks
#: Default histories of the mask checks (left-padded, 0 = padding), smallest first.
MASK_CASES = [[[5]], [[0, 5]], [[3, 5]], [[0, 0, 3, 4]], [[0, 2, 7], [4, 1, 6]], [[0, 0, 0], [0, 0, 9], [1, 2, 3]]]
_MASK_HINT = ("True means 'may attend'; rows are query positions, columns key positions. Causal: query i may "
              "see key j only when j <= i (torch.tril). Padding: only real items (not 0) may be seen, with "
              "singleton axes so one row per history broadcasts over heads and queries. The full mask combines "
              "both and lets every position see itself (torch.eye). Notebook 06, section 3.")


def _check_mask(name: str, kind: str, function, inputs: list, expected_of, call_args, strict) -> None:
    def body():
        for case in inputs:
            expected = expected_of(case)
            args, shown = call_args(case)
            shape = f"bool tensor of shape {tuple(expected.shape)}"
            if kind != "causal":
                layout = "(B, 1, 1, L)" if kind == "padding" else "(B, 1, L, L)"
                shape += f", laid out {layout} to broadcast over the attention heads"
            try:
                result = _call(function, *args)
            except _StudentError as error:
                raise _raised(name, error, shown, f"a {shape}", _MASK_HINT) from None
            if not isinstance(result, torch.Tensor) or tuple(result.shape) != tuple(expected.shape):
                raise _failure(name, f"it should return a {shape}.", shown, f"a {shape}", _describe(result),
                               _MASK_HINT)
            if result.dtype != torch.bool:
                raise _failure(name, "it should return a bool tensor: attention reads a float mask as numbers "
                               "to add to the scores, not as allowed/forbidden.", shown, "dtype torch.bool",
                               f"dtype {result.dtype}", _MASK_HINT)
            if not torch.equal(result, expected):
                raise _mask_failure(name, kind, shown, expected, result)
        return f"matches recnb.model.attention_mask on {len(inputs)} inputs."

    _run(name, body, strict)


def _mask_failure(name: str, kind: str, shown: str, expected: torch.Tensor, got: torch.Tensor) -> CheckFailed:
    """Show the first differing 2-D slice as 0/1 grids, with what the first wrong entry means."""
    expected_2d, got_2d = expected.reshape(-1, *expected.shape[-2:]), got.reshape(-1, *got.shape[-2:])
    first = int((expected_2d != got_2d).flatten(1).any(1).nonzero()[0])
    e, g = expected_2d[first], got_2d[first]
    where = f" (batch row {first}, shown below)" if expected_2d.shape[0] > 1 else ""
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
    return _failure(name, problem + where, shown, _grid(e), _grid(g), _MASK_HINT)


def check_causal_mask(causal_mask, cases=None, strict: bool | None = None) -> None:
    """Check ``causal_mask(length) -> (L, L)`` bool, True where j <= i (``recnb.model.attention_mask``
    of a history without padding). ``cases``: extra lengths."""
    lengths = sorted({1, 2, 3, 5, *(cases or [])})
    _check_mask(
        _name(causal_mask, "causal_mask"), "causal", causal_mask, lengths,
        lambda length: reference_attention_mask(torch.ones(1, length, dtype=torch.int64))[0, 0],
        lambda length: ((length,), f"length = {length}"), strict)


def _histories(case) -> torch.Tensor:
    return torch.as_tensor(case, dtype=torch.int64)


def check_padding_mask(padding_mask, cases=None, strict: bool | None = None) -> None:
    """Check ``padding_mask(histories) -> (B, 1, 1, L)`` bool, True where key j is a real item.

    This is the key-padding term of :func:`recnb.model.attention_mask`.
    ``cases``: extra left-padded histories (lists of lists).
    """
    inputs = sorted(MASK_CASES + list(cases or []), key=np.size)
    _check_mask(
        _name(padding_mask, "padding_mask"), "padding", padding_mask, inputs,
        lambda case: (_histories(case) != 0)[:, None, None, :],
        lambda case: ((_histories(case),), f"histories = {_histories(case)}"), strict)


def check_attention_mask(attention_mask, cases=None, strict: bool | None = None) -> None:
    """Check ``attention_mask(histories) -> (B, 1, L, L)`` against :func:`recnb.model.attention_mask`.

    ``cases``: extra left-padded histories (lists of lists).
    """
    inputs = sorted(MASK_CASES + list(cases or []), key=np.size)
    _check_mask(
        _name(attention_mask, "attention_mask"), "attention", attention_mask, inputs,
        lambda case: reference_attention_mask(_histories(case)),
        lambda case: ((_histories(case),), f"histories = {_histories(case)}"), strict)


# ----------------------------------------------------------------------------- assignment 4: one training step
#: Default set-ups of the training-step check, smallest first: sequences per micro-batch, autocast
#: dtype, gradient clipping norm.
STEP_CASES = [dict(micro_batches=(2,), amp_dtype=torch.bfloat16, clip_norm=None),
              dict(micro_batches=(1, 3), amp_dtype=torch.bfloat16, clip_norm=None),
              dict(micro_batches=(1, 3), amp_dtype=torch.bfloat16, clip_norm=0.05)]

_STEP_HINT = ("Order matters: scale each micro-batch's share of the group loss before backward; once all are "
              "in, unscale, clip, step and update through the scaler, then zero the gradients. The steps are "
              "listed above the exercise; notebook 07 explains autocast, GradScaler and accumulation.")

#: Sequences the training-step check trains on: different lengths, so micro-batches hold
#: different numbers of target positions.
_STEP_SEQUENCES = [[1, 2, 3, 4, 5, 6, 7, 8], [2, 3], [3, 1], [8, 7], [4, 5, 6], [7, 8, 1, 2], [5, 6, 7, 8, 2]]


class _SpyScaler(torch.amp.GradScaler):
    """A GradScaler that records which of its methods were called, in order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def scale(self, outputs):
        self.calls.append("scale")
        return super().scale(outputs)

    def unscale_(self, optimizer):
        self.calls.append("unscale_")
        return super().unscale_(optimizer)

    def step(self, optimizer, *args, **kwargs):
        self.calls.append("step")
        return super().step(optimizer, *args, **kwargs)

    def update(self, new_scale=None):
        self.calls.append("update")
        return super().update(new_scale)


def _step_setup(case: dict, seed: int = 0):
    """A tiny SASRec (no dropout, so runs are repeatable), its micro-batches and an SGD optimizer factory."""
    torch.manual_seed(seed)
    config = SASRecConfig(n_items=8, d_model=16, n_layers=1, n_heads=2, max_len=8, dropout=0.0,
                          ffn_multiplier=2, use_genre=False, use_year=False)
    model = SASRec(config)
    inputs, targets = training_tensors(_sequences(_STEP_SEQUENCES), config.max_len)
    if sum(case["micro_batches"]) > len(_STEP_SEQUENCES):
        raise ValueError(f"The training-step check has {len(_STEP_SEQUENCES)} sequences; micro_batches "
                         f"{case['micro_batches']} asks for more.")
    starts = np.cumsum((0, *case["micro_batches"]))
    micro_batches = [(inputs[a:b], targets[a:b]) for a, b in zip(starts[:-1], starts[1:])]
    return model, micro_batches


def _scaler(spy: bool = False) -> torch.amp.GradScaler:
    # enabled on the CPU too, so the check sees it used; 2**8 keeps fp16 losses from overflowing
    return (_SpyScaler if spy else torch.amp.GradScaler)("cpu", init_scale=2.0 ** 8, enabled=True)


def _variant_step(model, micro_batches, amp_dtype, clip_norm, divide: str, unscale: bool = True,
                  clip: bool = True) -> torch.Tensor:
    """The parameters after a step with a known mistake, for naming the student's one."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = _scaler()
    group = sum(int((y != 0).sum()) for _, y in micro_batches)
    for x, y in micro_batches:
        with torch.autocast("cpu", dtype=amp_dtype):
            loss, positions = sequence_loss(model, x, y)
        divisor = {"group": group, "own": positions, "own_k": positions * len(micro_batches), "none": 1}[divide]
        scaler.scale(loss / divisor).backward()
    if unscale:
        scaler.unscale_(optimizer)
    if clip_norm and clip:
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    scaler.step(optimizer)
    scaler.update()
    return nn.utils.parameters_to_vector(model.parameters()).detach()


def check_train_step(train_step, cases=None, strict: bool | None = None) -> None:
    """Check ``train_step(model, optimizer, scaler, micro_batches, amp_dtype, clip_norm) -> float``.

    One optimizer step over a group of micro-batches, compared with
    :func:`recnb.train.accumulate_gradients` followed by :func:`recnb.train.optimizer_step`
    on a tiny SASRec with plain SGD (so the size of the gradient shows in the update)
    and an enabled GradScaler. The function must return the group's mean loss per
    target position. ``cases``: extra dicts like :data:`STEP_CASES`.
    """
    name = _name(train_step, "train_step")
    all_cases = sorted(STEP_CASES + list(cases or []),
                       key=lambda case: (sum(case["micro_batches"]), len(case["micro_batches"]), bool(case["clip_norm"])))

    def body():
        for case in all_cases:
            _check_one_step(name, train_step, case)
        return f"matches recnb.train (accumulate_gradients + optimizer_step) on {len(all_cases)} set-ups."

    _run(name, body, strict)


def _check_one_step(name: str, train_step, case: dict) -> None:
    model, micro_batches = _step_setup(case)
    amp_dtype, clip_norm = case["amp_dtype"], case["clip_norm"]
    positions = [int((y != 0).sum()) for _, y in micro_batches]
    shown = (f"{len(micro_batches)} micro-batch(es) of {list(case['micro_batches'])} sequences holding "
             f"{positions} target positions; amp_dtype = {amp_dtype}, clip_norm = {clip_norm}; "
             f"SGD(lr=0.1), GradScaler enabled with scale {2 ** 8}")
    before = nn.utils.parameters_to_vector(model.parameters()).detach().clone()

    reference = copy.deepcopy(model)
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    reference_scaler = _scaler()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss_sum, group_positions = accumulate_gradients(reference, micro_batches, reference_scaler, amp_dtype)
        optimizer_step(reference, reference_optimizer, reference_scaler, clip_norm)
    expected_loss = loss_sum / group_positions
    expected = nn.utils.parameters_to_vector(reference.parameters()).detach() - before

    student = copy.deepcopy(model)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    scaler = _scaler(spy=True)
    dtypes: list[torch.dtype] = []
    hooks = [module.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
             for module in student.modules() if isinstance(module, nn.Linear)]

    def fail(problem: str, expected_text: str, got_text: str) -> CheckFailed:
        return _failure(name, problem, shown, expected_text, got_text, _STEP_HINT)

    not_scaled = ("the loss was not scaled: call scaler.scale(loss).backward() so small fp16 gradients do not "
                  "underflow.")
    try:
        result = _call(train_step, student, optimizer, scaler, [(x.clone(), y.clone()) for x, y in micro_batches],
                       amp_dtype=amp_dtype, clip_norm=clip_norm)
    except _StudentError as error:
        if dtypes and "scale" not in scaler.calls:  # the scaler refuses to unscale or step an unscaled loss
            raise fail(not_scaled, "scaler.scale called once per micro-batch", error.describe()) from None
        raise _raised(name, error, shown, f"mean loss {expected_loss:.6g} and one optimizer step",
                      _STEP_HINT) from None
    finally:
        for hook in hooks:
            hook.remove()

    if not dtypes:
        raise fail("the model was never called.", "a forward pass per micro-batch", "none")
    if any(dtype != amp_dtype for dtype in dtypes):
        raise fail("the forward pass did not run under autocast: its layers computed in float32.",
                   f"layer outputs in {amp_dtype}", f"layer outputs in {sorted(set(map(str, dtypes)))}")
    calls = Counter(scaler.calls)
    if calls["scale"] == 0:
        raise fail(not_scaled, "scaler.scale called once per micro-batch", f"scaler calls {scaler.calls}")
    if calls["step"] != 1:
        raise fail("step the optimizer through the scaler, once: scaler.step(optimizer) unscales the gradients "
                   "and skips the step if they overflowed (optimizer.step() would apply scaled gradients).",
                   "scaler.step(optimizer) called once", f"scaler calls {scaler.calls}")
    if calls["update"] != 1 or scaler.calls[-1] != "update":
        raise fail("call scaler.update() once, after scaler.step(optimizer): it adapts the scale for the next step.",
                   "... step, update", f"scaler calls {scaler.calls}")
    leftover = [p for p in student.parameters() if p.grad is not None and bool(p.grad.ne(0).any())]
    if leftover:
        raise fail("the gradients are still there after the step, so the next step would add to them: "
                   "call optimizer.zero_grad().", "no gradients (None or zeros)",
                   f"{len(leftover)} parameter tensors with gradients")
    got_loss = _as_float(result)
    if got_loss is None or not math.isclose(got_loss, expected_loss, rel_tol=1e-2):
        problem = "it should return the group's mean loss per target position (summed loss / all positions)."
        if got_loss is not None and math.isclose(got_loss, loss_sum, rel_tol=1e-2):
            problem = "it returns the summed loss; return it divided by the group's target positions."
        raise fail(problem, f"{expected_loss:.6g}", _describe(result) if got_loss is None else f"{got_loss:.6g}")
    got = nn.utils.parameters_to_vector(student.parameters()).detach() - before

    distance = float((got - expected).norm() / expected.norm())
    if distance > 2e-2:
        raise fail(_step_diagnosis(model, micro_batches, amp_dtype, clip_norm, before, got),
                   f"a parameter update of norm {float(expected.norm()):.4g}",
                   f"a parameter update of norm {float(got.norm()):.4g}, {distance:.0%} away from the expected one")


def _step_diagnosis(model, micro_batches, amp_dtype, clip_norm, before, got) -> str:
    """Name the mistake whose update matches the student's, if one does."""
    variants = [
        (dict(divide="own"), "each micro-batch's loss is divided by its own target positions; divide by the "
                             "positions of the whole group, so the sum of the parts is the mean over the group."),
        (dict(divide="own_k"), "each micro-batch's mean loss is divided by the number of micro-batches; micro-"
                               "batches hold different numbers of positions, so divide the summed loss by the "
                               "positions of the whole group."),
        (dict(divide="none"), "the summed loss is not divided by the group's target positions: the gradient "
                              "is that of the sum, not of the mean."),
    ]
    if clip_norm:
        variants.append((dict(divide="group", unscale=False),
                         "the gradients are clipped while still scaled: call scaler.unscale_(optimizer) before "
                         "clip_grad_norm_, so the clipping norm applies to the true gradients."))
        variants.append((dict(divide="group", clip=False),
                         f"the gradients were not clipped: clip their norm to clip_norm = {clip_norm} with "
                         "torch.nn.utils.clip_grad_norm_ (no clipping when clip_norm is None)."))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for options, text in variants:
            update = _variant_step(model, micro_batches, amp_dtype, clip_norm, **options) - before
            if float((got - update).norm() / update.norm()) <= 2e-2:
                return text
    return "the parameter update differs from one step of recnb.train's accumulate_gradients + optimizer_step."
