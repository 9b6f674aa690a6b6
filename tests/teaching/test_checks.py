"""recnb.teaching.checks: the assignments' checks pass right answers, teach on wrong ones, refuse recnb's own
implementation as an answer, and never show a hidden input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recnb.evaluation import metrics
from recnb.evaluation.evaluator import candidate_mask, full_ranks
from recnb.models.baselines import MarkovChain, dense_rows
from recnb.models.sasrec import SASRecConfig, SelfAttention, attention_mask
from recnb.models.training import accumulate_gradients, optimizer_step, sequence_loss
from recnb.teaching import checks


def not_answered(*args, **kwargs):
    raise NotImplementedError()  # what nbgrader leaves in the student version


def failure(check, function, **kwargs) -> str:
    with pytest.raises(checks.CheckFailed) as caught:
        check(function, **kwargs)
    return str(caught.value)


# ----------------------------------------------------------------------------- right answers, written by hand
def hit_rate(ranks, k):
    return float((ranks <= k).double().mean())


def ndcg(ranks, k):
    ranks = ranks.double()
    return float(torch.where(ranks <= k, 1.0 / torch.log2(ranks + 1.0), 0.0).mean())


def mrr(ranks):
    return float((1.0 / ranks.double()).mean())


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


def causal_mask(length):
    return torch.ones(length, length, dtype=torch.bool).tril()


def padding_mask(histories):
    return (histories != 0)[:, None, None, :]


def full_mask(histories):
    length = histories.shape[1]
    return (causal_mask(length) & padding_mask(histories)) | torch.eye(length, dtype=torch.bool)


def attention_with(*, scale="head", masking="fill", softmax_dim=-1, split="view", merge="transpose", project=True):
    """multi_head_attention written by hand, with one deliberate mistake (or none, with the defaults)."""
    def multi_head_attention(x, mask, params, n_heads):
        B, L, D = x.shape
        d = D // n_heads
        q, k, v = (x @ params[f"w_{n}"] + params[f"b_{n}"] for n in "qkv")
        q, k, v = ((t.view(B, L, n_heads, d).transpose(1, 2) if split == "view" else t.reshape(B, n_heads, L, d))
                   for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / {"head": math.sqrt(d), "model": math.sqrt(D), "none": 1.0}[scale]
        if masking == "fill":
            scores = scores.masked_fill(~mask, float("-inf"))
        elif masking == "inverted":
            scores = scores.masked_fill(mask, float("-inf"))
        weights = scores.softmax(softmax_dim)
        if masking == "after":
            weights = weights * mask
        context = weights @ v
        context = context.transpose(1, 2).reshape(B, L, D) if merge == "transpose" else context.reshape(B, L, D)
        return (context @ params["w_o"] + params["b_o"] if project else context), weights
    return multi_head_attention


def loss_with(*, padding=False, reduction="sum", count="real", detach=False):
    def masked_loss_sum(model, inputs, targets):
        logits = model.logits(model(inputs)).float()
        real = targets != 0 if not padding else torch.ones_like(targets, dtype=torch.bool)
        loss = F.cross_entropy(logits[real], targets[real], reduction=reduction)
        n = int((targets != 0).sum()) if count == "real" else targets.numel()
        return (loss.detach() if detach else loss), n
    return masked_loss_sum


def accumulate_with(*, autocast=True, scale=True, divide="group", zero_between=False, step=False):
    def accumulate(model, micro_batches, scaler, amp_dtype):
        group = sum(int((y != 0).sum()) for _, y in micro_batches)
        total = 0.0
        for x, y in micro_batches:
            if zero_between:
                model.zero_grad()
            with torch.autocast("cpu", dtype=amp_dtype, enabled=autocast):
                loss, positions = loss_with()(model, x, y)
            divisor = {"group": group, "own": positions, "own_k": positions * len(micro_batches), "none": 1}[divide]
            (scaler.scale(loss / divisor) if scale else loss / divisor).backward()
            total += float(loss.detach())
        if step:
            scaler.step(torch.optim.SGD(model.parameters(), lr=0.1))
            scaler.update()
        return total, group
    return accumulate


def step_with(*, autocast=True, scale=True, scaler_step=True, divide="group", unscale=True, clip=True,
              zero_grad=True, returns="mean"):
    """A train_step with one deliberate mistake (or none, with the defaults)."""
    def train_step(model, optimizer, scaler, micro_batches, amp_dtype=torch.bfloat16, clip_norm=1.0):
        group = sum(int((y != 0).sum()) for _, y in micro_batches)
        total = 0.0
        for x, y in micro_batches:
            with torch.autocast("cpu", dtype=amp_dtype, enabled=autocast):
                loss, positions = loss_with()(model, x, y)
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


def rank_among(scores, targets, candidates):
    return ((scores >= scores.gather(1, targets[:, None])) & candidates).sum(1)


def sample_with(*, generator_used=True, replacement=False, first=False, seen=False):
    def sample_candidates(histories, targets, n_items, n_negatives, generator):
        users = torch.arange(len(histories))
        eligible = torch.ones(len(histories), n_items + 1, dtype=torch.bool)
        eligible[:, 0] = False
        if not seen:
            eligible.scatter_(1, histories, False)
        eligible[users, targets] = False
        if first:
            keys = torch.arange(n_items + 1.0).expand(len(histories), -1).clone()
        else:
            keys = torch.rand(len(histories), n_items + 1, generator=generator if generator_used else None)
        keys[~eligible] = float("inf")
        if replacement:
            picks = torch.multinomial(eligible.float(), n_negatives, replacement=True, generator=generator)
            chosen = torch.zeros_like(eligible).scatter_(1, picks, True)
        else:
            values, picks = keys.topk(min(n_negatives, n_items + 1), dim=1, largest=False)
            chosen = torch.zeros_like(eligible).scatter_(1, picks, values.isfinite())
        chosen[users, targets] = True
        return chosen
    return sample_candidates


def paired_with(*, ddof=1, paired=True, sign=1, standard_error=True):
    def paired_difference(ranks_a, ranks_b, k):
        a, b = (np.where(r <= k, 1 / np.log2(r + 1.0), 0.0) for r in (ranks_a, ranks_b))
        d = sign * (a - b)
        spread = d.std(ddof=ddof) if paired else math.sqrt(a.var(ddof=ddof) + b.var(ddof=ddof))
        return float(d.mean()), float(spread / math.sqrt(len(d)) if standard_error else spread)
    return paired_difference


CORRECT = [
    (checks.check_hit_rate, hit_rate),
    (checks.check_ndcg, ndcg),
    (checks.check_mrr, mrr),
    (checks.check_transition_counts, counts_vectorized),
    (checks.check_markov_scores, scores_vectorized),
    (checks.check_causal_mask, causal_mask),
    (checks.check_padding_mask, padding_mask),
    (checks.check_attention_mask, full_mask),
    (checks.check_multi_head_attention, attention_with()),
    (checks.check_masked_loss_sum, loss_with()),
    (checks.check_accumulate_gradients, accumulate_with()),
    (checks.check_train_step, step_with()),
    (checks.check_rank_among, rank_among),
    (checks.check_sample_candidates, sample_with()),
    (checks.check_paired_difference, paired_with()),
]


@pytest.mark.parametrize(("check", "function"), CORRECT, ids=lambda x: getattr(x, "__name__", ""))
def test_a_correct_answer_passes_with_one_line_and_returns_nothing(check, function, capsys):
    assert check(function) is None  # a number returned by a test cell would be partial credit in nbgrader
    printed = capsys.readouterr()
    assert printed.out.startswith("✓ ") and printed.out.count("\n") == 1
    assert printed.err == ""


def test_the_checks_reference_attention_is_recnbs_layer():
    """The hand-written attention above and recnb's SelfAttention agree, so the check's reference is right."""
    x, mask, params, histories = checks.attention_example(batch=2, length=5, d_model=8, n_heads=4, seed=3)
    layer = SelfAttention(SASRecConfig(n_items=1, d_model=8, n_heads=4, dropout=0.0))
    with torch.no_grad():
        layer.qkv.weight.copy_(torch.cat([params["w_q"], params["w_k"], params["w_v"]], dim=1).T)
        layer.qkv.bias.copy_(torch.cat([params["b_q"], params["b_k"], params["b_v"]]))
        layer.out.weight.copy_(params["w_o"].T)
        layer.out.bias.copy_(params["b_o"])
        expected = layer(x, mask, return_weights=True)
    got = attention_with()(x, mask, params, 4)
    assert all(torch.allclose(g, e, atol=1e-6) for g, e in zip(got, expected))
    assert torch.equal(mask, attention_mask(histories)) and bool((histories == 0).any())


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


def test_an_answer_that_calls_an_unanswered_exercise_names_it(capsys, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)

    def accumulate_gradients(model, micro_batches, scaler, amp_dtype):
        raise NotImplementedError()

    def train_step(model, optimizer, scaler, micro_batches, amp_dtype=torch.bfloat16, clip_norm=1.0):
        return accumulate_gradients(model, micro_batches, scaler, amp_dtype)

    checks.check_train_step(train_step)
    assert "train_step is not answered yet: it calls accumulate_gradients" in capsys.readouterr().out


def test_a_not_implemented_error_with_a_message_is_a_bug_not_an_unanswered_exercise():
    def sparse_by_mistake(ranks, k):
        raise NotImplementedError("Could not run 'aten::foo' with arguments from the 'SparseCPU' backend")

    message = failure(checks.check_hit_rate, sparse_by_mistake, strict=False)
    assert "it raised an error" in message and "SparseCPU" in message


# ----------------------------------------------------------------------------- recnb's own answer is refused
def mrr_through_an_alias(ranks):
    from recnb.evaluation.metrics import (
        mrr as helper,  # renamed: found by what runs, not by its name
    )
    return helper(ranks)


def scores_through_recnb(counts, histories):
    rows = dense_rows(counts.to_sparse_csr(), histories[:, -1])
    return rows / rows.sum(1, keepdim=True).clamp_min(1)


def attention_through_recnbs_layer(x, mask, params, n_heads):
    layer = SelfAttention(SASRecConfig(n_items=1, d_model=x.shape[-1], n_heads=n_heads, dropout=0.0))
    with torch.no_grad():
        layer.qkv.weight.copy_(torch.cat([params["w_q"], params["w_k"], params["w_v"]], dim=1).T)
        layer.qkv.bias.copy_(torch.cat([params["b_q"], params["b_k"], params["b_v"]]))
        layer.out.weight.copy_(params["w_o"].T)
        layer.out.bias.copy_(params["b_o"])
        return layer(x, mask, return_weights=True)


def attention_through_torch(x, mask, params, n_heads):
    B, L, D = x.shape
    q, k, v = ((x @ params[f"w_{n}"] + params[f"b_{n}"]).view(B, L, n_heads, -1).transpose(1, 2) for n in "qkv")
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return context.transpose(1, 2).reshape(B, L, D) @ params["w_o"] + params["b_o"], attention_with()(
        x, mask, params, n_heads)[1]


def step_through_recnb(model, optimizer, scaler, micro_batches, amp_dtype=torch.bfloat16, clip_norm=1.0):
    loss_sum, positions = accumulate_gradients(model, micro_batches, scaler, amp_dtype)
    optimizer_step(model, optimizer, scaler, clip_norm)
    return loss_sum / positions


def sample_through_recnb(histories, targets, n_items, n_negatives, generator):
    allowed = candidate_mask(histories, targets, n_items + 1)
    return allowed & (torch.rand(allowed.shape, generator=generator) < 0.5) | allowed.scatter(1, targets[:, None], 0)


@pytest.mark.parametrize(("check", "shortcut", "named"), [
    (checks.check_hit_rate, metrics.hit_rate, "recnb.evaluation.metrics.hit_rate"),
    (checks.check_ndcg, lambda r, k: metrics.metrics_from_ranks(r, (k,))[f"NDCG@{k}"], "recnb.evaluation.metrics.ndcg"),
    (checks.check_mrr, mrr_through_an_alias, "recnb.evaluation.metrics.mrr"),
    (checks.check_transition_counts, lambda s, n: MarkovChain(n).fit(s).transitions.to_dense(),
     "recnb.models.baselines.consecutive_items"),
    (checks.check_markov_scores, scores_through_recnb, "recnb.models.baselines.dense_rows"),
    (checks.check_causal_mask, lambda n: attention_mask(torch.ones(1, n, dtype=torch.int64))[0, 0],
     "recnb.models.sasrec.attention_mask"),
    (checks.check_padding_mask, lambda h: attention_mask(h, causal=False)[:, :, -1:],
     "recnb.models.sasrec.attention_mask"),
    (checks.check_attention_mask, attention_mask, "recnb.models.sasrec.attention_mask"),
    (checks.check_multi_head_attention, attention_through_recnbs_layer, "recnb.models.sasrec.SelfAttention"),
    (checks.check_multi_head_attention, attention_through_torch, "torch.nn.functional.scaled_dot_product_attention"),
    (checks.check_masked_loss_sum, sequence_loss, "recnb.models.training.sequence_loss"),
    (checks.check_accumulate_gradients, accumulate_gradients, "recnb.models.training.accumulate_gradients"),
    (checks.check_train_step, step_through_recnb,
     "recnb.models.training.accumulate_gradients and recnb.models.training.optimizer_step"),
    (checks.check_rank_among, full_ranks, "recnb.evaluation.evaluator.full_ranks"),
    (checks.check_sample_candidates, sample_through_recnb, "recnb.evaluation.evaluator.candidate_mask"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_recnbs_own_implementation_is_refused_with_a_teaching_message(check, shortcut, named):
    message = failure(check, shortcut)
    first = message.splitlines()[0]
    assert " calls " in first and named in first
    assert "The point of the exercise is to write it yourself" in message


def test_a_shortcut_is_refused_under_nbgrader_too(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert "calls recnb.evaluation.metrics.ndcg" in failure(checks.check_ndcg, metrics.ndcg, strict=True)


def test_watching_for_shortcuts_leaves_no_profiler_behind():
    with pytest.raises(checks.CheckFailed):
        checks.check_ndcg(metrics.ndcg)
    import sys
    assert sys.getprofile() is None


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
    assert not any("Traceback" in line or "checks" in line for line in rendered)


def test_an_error_in_the_students_code_is_reported_with_their_line():
    def ndcg_with_a_typo(ranks, k):
        gains = 1.0 / torch.log2(ranks + 1.0)
        return float(gains.means())

    message = failure(checks.check_ndcg, ndcg_with_a_typo)
    assert "AttributeError" in message and "return float(gains.means())" in message
    assert "_core.py" not in message and "ranking.py" not in message


# ----------------------------------------------------------------------------- hidden inputs stay hidden
def test_extra_cases_are_checked_and_a_failure_on_one_hides_the_input(capsys):
    def hit_rate_wrong_on_big_batches(ranks, k):
        print("my input:", ranks.tolist(), k)  # what a student might print to see the grader's inputs
        return hit_rate(ranks, k) if len(ranks) < 8 else float((ranks < k).double().mean())

    checks.check_hit_rate(hit_rate_wrong_on_big_batches)  # the default cases are small
    assert "my input: [1] 1" in capsys.readouterr().out  # on visible inputs a student sees their prints
    message = failure(checks.check_hit_rate, hit_rate_wrong_on_big_batches, cases=[([7] * 8 + [1], 7)])
    assert message.startswith("✗ hit_rate_wrong_on_big_batches: counts rank K as a miss")
    assert "hidden inputs" in message and "Hint: " in message
    for shown in ("7, 7, 7", "Smallest failing input", "Expected", "Got"):
        assert shown not in message
    assert "7, 7, 7" not in capsys.readouterr().out  # what it printed on the hidden input was dropped


def test_an_error_on_a_hidden_input_shows_the_students_line_but_not_the_message():
    def mrr_that_quotes_its_input(ranks):
        if len(ranks) > 6:
            raise ValueError(f"cannot handle {ranks.tolist()}")
        return mrr(ranks)

    message = failure(checks.check_mrr, mrr_that_quotes_its_input, cases=[([5, 4, 3, 2, 1, 9, 9], None)])
    assert "ValueError (its message is not shown for hidden inputs)" in message
    assert "raise ValueError(f\"cannot handle {ranks.tolist()}\")" in message
    assert "5, 4, 3" not in message


def test_a_check_failure_raised_by_the_students_code_is_their_error_and_hides_a_hidden_input():
    def ndcg_raising_a_verdict(ranks, k):
        if len(ranks) > 6:
            raise checks.CheckFailed(f"the input was {ranks.tolist()}")
        return ndcg(ranks, k)

    message = failure(checks.check_ndcg, ndcg_raising_a_verdict, cases=[([2] * 8, 10)])
    assert message.startswith("✗ ndcg_raising_a_verdict: it raised an error.")
    assert "CheckFailed (its message is not shown for hidden inputs)" in message and "2, 2, 2" not in message


@pytest.mark.parametrize(("check", "function", "hidden", "secret"), [
    (checks.check_causal_mask, lambda n: causal_mask(n) if n < 10 else causal_mask(n).T, [12], "12"),
    (checks.check_attention_mask, lambda h: full_mask(h) if h.shape[1] < 6 else full_mask(h).transpose(-1, -2),
     [[[0, 0, 0, 0, 0, 5, 6]]], "0, 0, 0, 0, 0, 5, 6"),
    (checks.check_multi_head_attention,
     lambda x, m, p, h: attention_with()(x, m, p, h) if x.shape[-1] < 10 else attention_with(scale="model")(
         x, m, p, h),
     [(3, 6, 12, 3, 11)], "seed=11"),
    (checks.check_train_step,
     lambda *a, **k: step_with()(*a, **k) if len(a[3]) < 3 else step_with(divide="own")(*a, **k),
     [dict(micro_batches=(2, 1, 3), amp_dtype=torch.bfloat16, clip_norm=0.02)], "[2, 1, 3]"),
    (checks.check_paired_difference, lambda a, b, k: paired_with()(a, b, k) if len(a) < 60 else paired_with(
        paired=False)(a, b, k), [(80, 10, 7)], "seed=7"),
], ids=lambda x: getattr(x, "__name__", ""))
def test_every_kind_of_check_hides_a_hidden_input(check, function, hidden, secret):
    check(function)  # right on the visible inputs
    message = failure(check, function, cases=hidden)
    assert "hidden inputs" in message and secret not in message and "Smallest failing input" not in message


# ----------------------------------------------------------------------------- named mistakes: assignment 1
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


# ----------------------------------------------------------------------------- assignment 2
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


# ----------------------------------------------------------------------------- assignment 3
def mask_without_causal(histories):
    return (padding_mask(histories) | torch.eye(histories.shape[1], dtype=torch.bool)).expand(
        -1, -1, histories.shape[1], -1)


@pytest.mark.parametrize(("check", "wrong", "expected"), [
    (checks.check_causal_mask, lambda n: torch.ones(n, n, dtype=torch.bool).triu(),
     "query 0 may attend to key 1, a later position"),
    (checks.check_causal_mask, lambda n: torch.ones(n, n).tril(), "should return a bool tensor"),
    (checks.check_causal_mask, lambda n: ~torch.ones(n, n, dtype=torch.bool).tril(), "True and False are swapped"),
    (checks.check_padding_mask, lambda h: h != 0, "laid out (B, 1, 1, L)"),
    (checks.check_padding_mask, lambda h: (h == 0)[:, None, None, :], "True and False are swapped"),
    (checks.check_attention_mask, mask_without_causal, "the future leaks in"),
    (checks.check_attention_mask, lambda h: causal_mask(h.shape[1]).expand(len(h), 1, -1, -1), "key 0 is padding"),
    (checks.check_attention_mask, lambda h: causal_mask(h.shape[1]) & padding_mask(h),
     "row 0 is all False: a softmax over nothing is NaN"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_mask_mistakes_are_named(check, wrong, expected):
    assert expected in failure(check, wrong)


def test_a_mask_failure_draws_both_masks_as_grids():
    message = failure(checks.check_attention_mask, mask_without_causal)
    assert "Smallest failing input:\n    histories = tensor([[0, 5]])" in message
    assert "Expected:\n    1 0\n    0 1\nGot:\n    1 1\n    0 1" in message


@pytest.mark.parametrize(("mistake", "expected"), [
    (dict(masking="none"), "masked keys get attention weight"),
    (dict(masking="inverted"), "the mask is used the wrong way round"),
    (dict(masking="after"), "the mask is applied after the softmax"),
    (dict(scale="none"), "the scores are not scaled"),
    (dict(scale="model"), "divided by sqrt(D), the model width"),
    (dict(softmax_dim=-2), "the softmax runs over the queries"),
    (dict(split="reshape"), "the heads are split the wrong way"),
    (dict(merge="reshape"), "the heads are merged the wrong way"),
    (dict(project=False), "the output projection is missing"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_attention_mistakes_are_named_on_the_smallest_random_input(mistake, expected):
    message = failure(checks.check_multi_head_attention, attention_with(**mistake))
    assert expected in message.splitlines()[0]
    assert "Smallest failing input:\n    x, mask, params, histories = checks.attention_example(" in message
    assert "Hint: " in message


def test_attention_with_one_head_only_is_named():
    def one_head(x, mask, params, n_heads):
        return attention_with()(x, mask, params, 1)

    assert "it returns one head's weights" in failure(checks.check_multi_head_attention, one_head)


# ----------------------------------------------------------------------------- assignment 4
@pytest.mark.parametrize(("mistake", "expected"), [
    (dict(padding=True), "it includes the padding positions"),
    (dict(reduction="mean"), "it returns the mean over positions"),
    (dict(count="all"), "it counts every position"),
    (dict(detach=True), "the summed loss carries no gradient"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_loss_mistakes_are_named(mistake, expected):
    assert expected in failure(checks.check_masked_loss_sum, loss_with(**mistake))


@pytest.mark.parametrize(("mistake", "expected"), [
    (dict(autocast=False), "did not run under autocast"),
    (dict(scale=False), "the loss was not scaled"),
    (dict(divide="own"), "divided by its own real positions"),
    (dict(divide="own_k"), "divided by the number of micro-batches"),
    (dict(divide="none"), "is not divided by the group's real positions"),
    (dict(zero_between=True), "only the last micro-batch's gradient is left"),
    (dict(step=True), "it steps the optimizer"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_accumulation_mistakes_are_named(mistake, expected):
    message = failure(checks.check_accumulate_gradients, accumulate_with(**mistake))
    assert expected in message
    assert "real target positions" in message and "Hint: " in message


def test_a_correct_training_step_written_by_hand_passes(capsys):
    checks.check_train_step(step_with())
    assert capsys.readouterr().out.startswith("✓ train_step matches recnb.models.training")


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


def test_training_hidden_set_ups_run_float16_and_reject_too_many_sequences():
    checks.check_train_step(step_with(), cases=[dict(micro_batches=(3, 1), amp_dtype=torch.float16, clip_norm=None)])
    checks.check_accumulate_gradients(accumulate_with(), cases=[dict(micro_batches=(3, 1), amp_dtype=torch.float16,
                                                                     clip_norm=None)])
    with pytest.raises(ValueError, match="asks for more"):
        checks.check_train_step(step_with(), cases=[dict(micro_batches=(8,), amp_dtype=torch.bfloat16, clip_norm=None)])


# ----------------------------------------------------------------------------- assignment 5
@pytest.mark.parametrize(("wrong", "expected"), [
    (lambda s, t, c: 1 + ((s > s.gather(1, t[:, None])) & c).sum(1), "ties are counted for the model"),
    (lambda s, t, c: 1 + ((s >= s.gather(1, t[:, None])) & c).sum(1), "the target is counted twice"),
    (lambda s, t, c: (s >= s.gather(1, t[:, None])).sum(1), "it ranks against every item"),
    (lambda s, t, c: ((s >= s.gather(1, t[:, None])) & c).sum(1) - 1, "ranks start at 1"),
    (lambda s, t, c: ((s >= s.gather(1, t[:, None])) & c).sum(1).float(), "return an integer tensor"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_rank_mistakes_are_named(wrong, expected):
    message = failure(checks.check_rank_among, wrong)
    assert expected in message and "checks.rank_example(" in message


@pytest.mark.parametrize(("mistake", "expected"), [
    (dict(seen=True), "an item from the user's history was drawn"),
    (dict(replacement=True), "there are too few candidates: a draw with replacement"),
    (dict(generator_used=False), "it ignores the generator it is given"),
    (dict(first=True), "another seed gave the same draw"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_sampling_mistakes_are_named(mistake, expected):
    assert expected in failure(checks.check_sample_candidates, sample_with(**mistake))


def test_a_biased_sampler_fails_the_uniformity_test():
    def biased(histories, targets, n_items, n_negatives, generator):
        eligible = candidate_free_eligible(histories, targets, n_items)
        keys = torch.rand(eligible.shape, generator=generator) * torch.arange(1.0, n_items + 2) ** 2
        keys[~eligible] = float("inf")
        values, picks = keys.topk(min(n_negatives, n_items + 1), dim=1, largest=False)
        chosen = torch.zeros_like(eligible).scatter_(1, picks, values.isfinite())
        chosen[torch.arange(len(targets)), targets] = True
        return chosen

    message = failure(checks.check_sample_candidates, biased)
    assert "not drawn uniformly" in message and "chi-square" in message


def candidate_free_eligible(histories, targets, n_items):
    eligible = torch.ones(len(histories), n_items + 1, dtype=torch.bool)
    eligible[:, 0] = False
    eligible.scatter_(1, histories, False)
    eligible[torch.arange(len(targets)), targets] = False
    return eligible


# ----------------------------------------------------------------------------- assignment 6
@pytest.mark.parametrize(("mistake", "expected"), [
    (dict(paired=False), "treats the two models as independent samples"),
    (dict(ddof=0), "divides by n instead of n - 1"),
    (dict(standard_error=False), "returns the standard deviation of the differences"),
    (dict(sign=-1), "the sign is flipped"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_paired_difference_mistakes_are_named(mistake, expected):
    message = failure(checks.check_paired_difference, paired_with(**mistake))
    assert expected in message and "checks.paired_example(" in message
