"""recnb.checks: the assignments' checks pass recnb's own implementations and teach on wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recnb import checks, metrics
from recnb.model import attention_mask
from recnb.train import accumulate_gradients, optimizer_step, sequence_loss


def not_answered(*args, **kwargs):
    raise NotImplementedError()  # what nbgrader leaves in the student version


def failure(check, function, **kwargs) -> str:
    with pytest.raises(checks.CheckFailed) as caught:
        check(function, **kwargs)
    return str(caught.value)


# ----------------------------------------------------------------------------- correct answers pass
def counts_vectorized(sequences, n_items):
    flat = np.concatenate(sequences)
    user = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    same = user[:-1] == user[1:]
    counts = np.zeros((n_items + 1, n_items + 1))
    np.add.at(counts, (flat[:-1][same], flat[1:][same]), 1)
    return torch.from_numpy(counts)


def scores_vectorized(counts, histories):
    rows = counts[histories[:, -1]]
    return rows / rows.sum(1, keepdim=True).clamp_min(1)


def step_reference(model, optimizer, scaler, micro_batches, amp_dtype=torch.bfloat16, clip_norm=1.0):
    loss_sum, positions = accumulate_gradients(model, micro_batches, scaler, amp_dtype)
    optimizer_step(model, optimizer, scaler, clip_norm)
    return loss_sum / positions


CORRECT = [
    (checks.check_hit_rate, metrics.hit_rate),
    (checks.check_ndcg, metrics.ndcg),
    (checks.check_mrr, metrics.mrr),
    (checks.check_transition_counts, counts_vectorized),
    (checks.check_markov_scores, scores_vectorized),
    (checks.check_causal_mask, lambda length: torch.ones(length, length, dtype=torch.bool).tril()),
    (checks.check_padding_mask, lambda histories: (histories != 0)[:, None, None, :]),
    (checks.check_attention_mask, attention_mask),
    (checks.check_train_step, step_reference),
]


@pytest.mark.parametrize(("check", "function"), CORRECT, ids=lambda x: getattr(x, "__name__", ""))
def test_a_correct_answer_passes_with_one_line_and_returns_nothing(check, function, capsys):
    assert check(function) is None  # a number returned by a test cell would be partial credit in nbgrader
    printed = capsys.readouterr()
    assert printed.out.startswith("✓ ") and printed.out.count("\n") == 1
    assert printed.err == ""


# ----------------------------------------------------------------------------- unanswered exercises
@pytest.mark.parametrize("check", [check for check, _ in CORRECT], ids=lambda c: c.__name__)
def test_an_unanswered_exercise_prints_a_reminder_instead_of_failing(check, capsys, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert check(not_answered) is None
    out = capsys.readouterr().out
    assert "✗ not_answered is not answered yet" in out and "Replace `raise NotImplementedError()`" in out


@pytest.mark.parametrize("execution", ["validate", "autograde"])
def test_an_unanswered_exercise_fails_under_nbgrader(execution, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", execution)
    assert "is not answered yet" in failure(checks.check_mrr, not_answered)


def test_strict_makes_an_unanswered_exercise_fail(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert "is not answered yet" in failure(checks.check_causal_mask, not_answered, strict=True)


def test_a_not_implemented_error_with_a_message_is_a_bug_not_an_unanswered_exercise():
    def sparse_by_mistake(ranks, k):
        raise NotImplementedError("Could not run 'aten::foo' with arguments from the 'SparseCPU' backend")

    message = failure(checks.check_hit_rate, sparse_by_mistake, strict=False)
    assert "it raised an error" in message and "SparseCPU" in message


# ----------------------------------------------------------------------------- failures teach
def test_a_failure_names_the_mistake_the_smallest_input_expected_got_and_a_hint():
    message = failure(checks.check_hit_rate, lambda ranks, k: float((ranks < k).double().mean()))
    assert message.startswith("✗ <lambda>: counts rank K as a miss")
    assert "Smallest failing input:\n    ranks = tensor([1]), k = 1" in message
    assert "Expected:\n    1\n" in message and "Got:\n    0\n" in message
    assert "Hint: " in message and "Notebook 02" in message


def test_in_ipython_a_failure_shows_its_message_without_the_checks_traceback():
    error = checks.CheckFailed("✗ f: wrong.\nHint: look here.")
    rendered = error._render_traceback_()
    assert "✗ f: wrong." in rendered[0] and rendered[1:] == ["Hint: look here."]
    assert not any("Traceback" in line or "checks.py" in line for line in rendered)


def test_an_error_in_the_students_code_is_reported_with_their_line():
    def ndcg(ranks, k):
        gains = 1.0 / torch.log2(ranks + 1.0)
        return float(gains.means())

    message = failure(checks.check_ndcg, ndcg)
    assert "AttributeError" in message and "return float(gains.means())" in message
    assert "checks.py" not in message


def test_extra_cases_are_checked_too():
    def hit_rate_wrong_on_big_batches(ranks, k):
        return metrics.hit_rate(ranks, k) if len(ranks) < 8 else 0.0

    checks.check_hit_rate(hit_rate_wrong_on_big_batches)  # the default cases are small
    message = failure(checks.check_hit_rate, hit_rate_wrong_on_big_batches, cases=[([1] * 9, 1)])
    assert "ranks = tensor([1, 1, 1, 1, 1, 1, 1, 1, 1]), k = 1" in message


@pytest.mark.parametrize(("check", "wrong", "expected"), [
    (checks.check_hit_rate, lambda r, k: float((r <= k).double().sum()), "returns the number of hits"),
    (checks.check_hit_rate, lambda r, k: (r <= k).double(), "should return one number"),
    (checks.check_ndcg, lambda r, k: float(torch.where(r <= k, 1 / torch.log2(r.double()), 0.0).mean()),
     "uses log2(rank)"),
    (checks.check_ndcg, lambda r, k: float((1 / torch.log2(r + 1.0)).mean()), "ignores the cut-off"),
    (checks.check_ndcg, lambda r, k: float(torch.where(r <= k, 1 / torch.log(r + 1.0), 0.0).mean()),
     "natural logarithm"),
    (checks.check_mrr, lambda r: float(r.double().mean()), "averages the ranks"),
    (checks.check_mrr, lambda r: float(1 / r.double().mean()), "reciprocal of the mean rank"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_common_metric_mistakes_are_named(check, wrong, expected):
    assert expected in failure(check, wrong)


def counts_transposed(sequences, n_items):
    return counts_vectorized(sequences, n_items).T


def counts_across_users(sequences, n_items):
    return counts_vectorized([np.concatenate(sequences)], n_items)


def counts_not_accumulated(sequences, n_items):
    flat = np.concatenate(sequences)
    user = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    same = user[:-1] == user[1:]
    counts = torch.zeros(n_items + 1, n_items + 1)
    counts[flat[:-1][same], flat[1:][same]] += 1
    return counts


def counts_with_a_loop(sequences, n_items):
    counts = torch.zeros(n_items + 1, n_items + 1)
    for sequence in sequences:
        for a, b in zip(sequence[:-1], sequence[1:]):
            counts[a, b] += 1
    return counts


@pytest.mark.parametrize(("wrong", "expected", "smallest"), [
    (counts_transposed, "rows and columns are swapped", "sequences = [[1, 2]]"),
    (counts_across_users, "next user's first item", "sequences = [[1], [2, 1]]"),
    (counts_not_accumulated, "counted once", "sequences = [[2, 2, 2]]"),
    (counts_with_a_loop, "loops in Python", None),
], ids=lambda x: getattr(x, "__name__", ""))
def test_transition_count_mistakes_are_named(wrong, expected, smallest):
    message = failure(checks.check_transition_counts, wrong)
    assert expected in message
    if smallest:
        assert f"Smallest failing input:\n    {smallest}" in message
    else:
        assert "for sequence in sequences:" in message


@pytest.mark.parametrize(("wrong", "expected"), [
    (lambda counts, h: counts[h[:, -1]] / counts[h[:, -1]].sum(1, keepdim=True), "NaN"),
    (lambda counts, h: scores_vectorized(counts, h[:, :1]), "uses the first column"),
    (lambda counts, h: counts[h[:, -1]], "returns the raw counts"),
    (lambda counts, h: counts[h[:, -1]][:, 1:], "one row of N + 1"),
])
def test_markov_score_mistakes_are_named(wrong, expected):
    assert expected in failure(checks.check_markov_scores, wrong)


def eye_like(histories):
    return torch.eye(histories.shape[1], dtype=torch.bool)


@pytest.mark.parametrize(("check", "wrong", "expected"), [
    (checks.check_causal_mask, lambda n: torch.ones(n, n, dtype=torch.bool).triu(),
     "query 0 may attend to key 1, a later position"),
    (checks.check_causal_mask, lambda n: torch.ones(n, n).tril(), "should return a bool tensor"),
    (checks.check_causal_mask, lambda n: ~torch.ones(n, n, dtype=torch.bool).tril(), "True and False are swapped"),
    (checks.check_padding_mask, lambda h: h != 0, "laid out (B, 1, 1, L)"),
    (checks.check_padding_mask, lambda h: (h == 0)[:, None, None, :], "True and False are swapped"),
    (checks.check_attention_mask, lambda h: attention_mask(h, causal=False), "the future leaks in"),
    (checks.check_attention_mask, lambda h: attention_mask(torch.ones_like(h)), "key 0 is padding"),
    (checks.check_attention_mask,
     lambda h: torch.ones(h.shape[1], h.shape[1], dtype=torch.bool).tril() & (h != 0)[:, None, None, :],
     "row 0 is all False: a softmax over nothing is NaN"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_mask_mistakes_are_named(check, wrong, expected):
    assert expected in failure(check, wrong)


def test_a_mask_failure_draws_both_masks_as_grids():
    message = failure(checks.check_attention_mask, lambda h: attention_mask(h, causal=False))
    assert "Smallest failing input:\n    histories = tensor([[0, 5]])" in message
    assert "Expected:\n    1 0\n    0 1\nGot:\n    1 1\n    0 1" in message


# ----------------------------------------------------------------------------- the training step
def step_with(*, autocast=True, scale=True, scaler_step=True, divide="group", unscale=True, clip=True,
              zero_grad=True, returns="mean"):
    """A train_step with one deliberate mistake (or none, with the defaults)."""
    def train_step(model, optimizer, scaler, micro_batches, amp_dtype=torch.bfloat16, clip_norm=1.0):
        group = sum(int((y != 0).sum()) for _, y in micro_batches)
        total = 0.0
        for x, y in micro_batches:
            with torch.autocast("cpu", dtype=amp_dtype, enabled=autocast):
                loss, positions = sequence_loss(model, x, y)
            divisor = {"group": group, "own": positions, "own_k": positions * len(micro_batches)}[divide]
            (scaler.scale(loss / divisor) if scale else loss / divisor).backward()
            total += float(loss.detach())
        if unscale:
            scaler.unscale_(optimizer)
        if clip and clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        if scaler_step:
            scaler.step(optimizer)
        else:
            optimizer.step()
        scaler.update()
        if zero_grad:
            optimizer.zero_grad()
        return total / group if returns == "mean" else total
    return train_step


def test_a_correct_training_step_written_by_hand_passes(capsys):
    checks.check_train_step(step_with())
    assert capsys.readouterr().out.startswith("✓ train_step matches recnb.train")


@pytest.mark.parametrize(("mistake", "expected"), [
    (dict(autocast=False), "did not run under autocast"),
    (dict(scale=False), "the loss was not scaled"),
    (dict(scaler_step=False), "step the optimizer through the scaler"),
    (dict(zero_grad=False), "call optimizer.zero_grad()"),
    (dict(returns="sum"), "it returns the summed loss"),
    (dict(divide="own"), "divided by its own target positions"),
    (dict(divide="own_k"), "divided by the number of micro-batches"),
    (dict(unscale=False), "clipped while still scaled"),
    (dict(clip=False), "were not clipped"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_training_step_mistakes_are_named(mistake, expected):
    message = failure(checks.check_train_step, step_with(**mistake))
    assert expected in message
    assert "Smallest failing input:" in message and "Hint: " in message


def test_training_step_hidden_set_ups_run_float16_and_reject_too_many_sequences():
    checks.check_train_step(step_with(), cases=[dict(micro_batches=(3, 1), amp_dtype=torch.float16, clip_norm=None)])
    with pytest.raises(ValueError, match="asks for more"):
        checks.check_train_step(step_with(), cases=[dict(micro_batches=(8,), amp_dtype=torch.bfloat16, clip_norm=None)])
