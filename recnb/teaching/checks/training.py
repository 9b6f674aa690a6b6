"""Assignment 4: the loss over real positions, gradient accumulation, one mixed-precision optimizer step."""

from __future__ import annotations

import copy
import math
import warnings
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recnb.models import training as recnb_train
from recnb.models.sasrec import SASRec, SASRecConfig
from recnb.models.training import accumulate_gradients, optimizer_step, sequence_loss, training_tensors
from recnb.teaching.checks._core import (
    Reference,
    StudentError,
    as_float,
    call,
    cases_in_order,
    describe,
    failure,
    name_of,
    raised,
    run_check,
)

#: Sequences the training checks train on: different lengths, so micro-batches hold different numbers
#: of real (non-padding) target positions.
_STEP_SEQUENCES = [[1, 2, 3, 4, 5, 6, 7, 8], [2, 3], [3, 1], [8, 7], [4, 5, 6], [7, 8, 1, 2], [5, 6, 7, 8, 2]]

#: Default set-ups of the accumulation and training-step checks, smallest first: sequences per
#: micro-batch, autocast dtype, gradient clipping norm (the accumulation check ignores the norm).
STEP_CASES = [dict(micro_batches=(2,), amp_dtype=torch.bfloat16, clip_norm=None),
              dict(micro_batches=(1, 3), amp_dtype=torch.bfloat16, clip_norm=None),
              dict(micro_batches=(1, 3), amp_dtype=torch.bfloat16, clip_norm=0.05)]

_LOSS_HINT = ("Run the model, keep the positions whose target is not 0 (targets != 0), compute the cross-entropy "
              "of model.logits(hidden) at those positions with F.cross_entropy(..., reduction='sum'), and count "
              "them. Return the summed loss as a tensor (it is backpropagated later) and the count as an int. "
              "Notebook 06b, section 4.")
_ACCUMULATION_HINT = ("Count the real target positions of the whole group first. Then, for each micro-batch, "
                      "compute its summed loss under torch.autocast, divide it by the group's count, and call "
                      "scaler.scale(...).backward(): gradients add up across backward calls. Do not zero them "
                      "in between, and do not step. Notebook 07, section 4.")
_STEP_HINT = ("Order matters: accumulate the group's gradients (your accumulate_gradients), then, once: unscale, "
              "clip, step and update through the scaler, then zero the gradients. The steps are listed above the "
              "exercise; notebook 07 explains autocast, GradScaler and accumulation.")


def _loss_references() -> list[Reference]:
    return [Reference(recnb_train.sequence_loss, "recnb.models.training.sequence_loss")]


def _accumulation_references() -> list[Reference]:
    return [Reference(recnb_train.accumulate_gradients, "recnb.models.training.accumulate_gradients"),
            Reference(recnb_train.train_sasrec, "recnb.models.training.train_sasrec"),
            Reference(_accumulated, "recnb.teaching.checks' reference accumulation"),
            Reference(_full_batch_gradient, "recnb.teaching.checks' reference gradient")]


def _step_references() -> list[Reference]:
    return [*_accumulation_references(), Reference(recnb_train.optimizer_step, "recnb.models.training.optimizer_step"),
            Reference(_variant_step, "recnb.teaching.checks' reference step")]


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


#: The scale the checks' GradScaler starts at: large enough to show in the gradients, small enough that
#: float16 losses do not overflow.
SCALE = 2.0 ** 8


def _scaler(spy: bool = False) -> torch.amp.GradScaler:
    # enabled on the CPU too, so the check sees it used
    return (_SpyScaler if spy else torch.amp.GradScaler)("cpu", init_scale=SCALE, enabled=True)


def _tiny_model(seed: int = 0) -> SASRec:
    """A tiny SASRec without dropout, so that two runs compute the same thing."""
    torch.manual_seed(seed)
    return SASRec(SASRecConfig(n_items=8, d_model=16, n_layers=1, n_heads=2, max_len=8, dropout=0.0,
                               ffn_multiplier=2, use_genre=False, use_year=False))


def _step_setup(case: dict, seed: int = 0):
    """The tiny SASRec and the case's micro-batches, (inputs, targets) pairs of different real positions."""
    model = _tiny_model(seed)
    inputs, targets = training_tensors([np.asarray(s) for s in _STEP_SEQUENCES], model.config.max_len)
    if sum(case["micro_batches"]) > len(_STEP_SEQUENCES):
        raise ValueError(f"The training checks have {len(_STEP_SEQUENCES)} sequences; micro_batches "
                         f"{case['micro_batches']} asks for more.")
    starts = np.cumsum((0, *case["micro_batches"]))
    return model, [(inputs[a:b], targets[a:b]) for a, b in zip(starts[:-1], starts[1:])]


def _describe_setup(case: dict, micro_batches) -> str:
    positions = [int((y != 0).sum()) for _, y in micro_batches]
    return (f"{len(micro_batches)} micro-batch(es) of {list(case['micro_batches'])} sequences holding "
            f"{positions} real target positions; amp_dtype = {case['amp_dtype']}")


def _linear_dtypes(model: nn.Module):
    """Hooks that record the output dtype of every Linear layer (autocast makes them 16-bit), and the list."""
    dtypes: list[torch.dtype] = []
    hooks = [module.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
             for module in model.modules() if isinstance(module, nn.Linear)]
    return hooks, dtypes


def _gradient(model: nn.Module) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in model.parameters()])


def _distance(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).norm() / expected.norm().clamp_min(1e-12))


# ----------------------------------------------------------------------------- 1. the loss over real positions
#: Default inputs of the loss check, (sequences, seed), smallest first.
LOSS_CASES = [([[1, 2]], 0), ([[1, 2, 3]], 1), ([[1, 2], [3, 4, 5]], 2), ([[8, 7, 6, 5, 4], [2, 3], [1, 5, 1]], 3)]


def check_masked_loss_sum(masked_loss_sum, cases=None, strict: bool | None = None) -> None:
    """Check ``masked_loss_sum(model, inputs, targets) -> (loss_sum tensor, positions int)``.

    The reference is :func:`recnb.models.training.sequence_loss` (full cross-entropy summed over the
    positions whose target is not padding) on a tiny SASRec. ``cases``: extra
    ``(sequences, seed)``, sequences lists of item ids 1..8 of at least two items.
    """
    name = name_of(masked_loss_sum, "masked_loss_sum")
    all_cases = cases_in_order(LOSS_CASES, cases, lambda case: sum(map(len, case[0])))

    def body():
        for case in all_cases:
            raw, seed = case.value
            model = _tiny_model(seed)
            inputs, targets = training_tensors([np.asarray(s) for s in raw], model.config.max_len)
            width = max(int((inputs != 0).sum(1).max()), 1) + 1  # some padding in every row
            inputs, targets = inputs[:, -width:], targets[:, -width:]
            with torch.no_grad():
                expected, positions = sequence_loss(model, inputs, targets)
            shown = f"inputs =\n{inputs}\ntargets =\n{targets}\n(a tiny SASRec, torch.manual_seed({seed}))"
            expected_text = f"({float(expected):.6g}, {positions})"
            try:
                result = call(masked_loss_sum, model, inputs.clone(), targets.clone(), refuse=_loss_references(),
                              hidden=case.hidden)
            except StudentError as error:
                raise raised(name, error, shown, expected_text, _LOSS_HINT, case.hidden) from None
            if not (isinstance(result, tuple) and len(result) == 2):
                raise failure(name, "it should return two values, (summed loss, number of positions).", shown,
                              expected_text, describe(result), _LOSS_HINT, case.hidden)
            loss, count = result
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise failure(name, "the summed loss should be a one-number tensor, so it can be backpropagated.",
                              shown, expected_text, describe(loss), _LOSS_HINT, case.hidden)
            if not loss.requires_grad:
                raise failure(name, "the summed loss carries no gradient: return the tensor itself, not a number "
                              "made from it (no .item(), float() or .detach()), and do not compute it under "
                              "torch.no_grad().", shown, "a tensor with requires_grad=True",
                              describe(loss), _LOSS_HINT, case.hidden)
            got_count = as_float(count)
            got = float(loss.detach())
            if got_count != positions:
                raise failure(name, _count_diagnosis(inputs, targets, got_count), shown, expected_text,
                              f"({got:.6g}, {count!r})", _LOSS_HINT, case.hidden)
            if not math.isclose(got, float(expected), rel_tol=1e-4, abs_tol=1e-6):
                raise failure(name, _loss_diagnosis(model, inputs, targets, got), shown, expected_text,
                              f"({got:.6g}, {count!r})", _LOSS_HINT, case.hidden)
        return f"matches recnb.models.training.sequence_loss on {len(all_cases)} inputs."

    run_check(name, body, strict)


def _count_diagnosis(inputs: torch.Tensor, targets: torch.Tensor, got) -> str:
    if got == targets.numel():
        return "it counts every position; count only those whose target is a real item (targets != 0)."
    return "the number of positions is wrong: count the positions whose target is a real item (targets != 0)."


def _loss_diagnosis(model, inputs, targets, got: float) -> str:
    with torch.no_grad():
        logits = model.logits(model(inputs)).float()                  # (B, L, N + 1)
        real = targets != 0
        every = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
        mean = F.cross_entropy(logits[real], targets[real])
    if math.isclose(got, float(every), rel_tol=1e-4):
        return ("it includes the padding positions: their target is 0, not a film. Keep the positions whose "
                "target is not 0 (or pass ignore_index=0).")
    if math.isclose(got, float(mean), rel_tol=1e-4):
        return ("it returns the mean over positions; return the sum, so that micro-batches with different "
                "numbers of positions can be added up and divided once.")
    return "the summed loss differs from recnb.models.training.sequence_loss."


# ----------------------------------------------------------------------------- 2. gradient accumulation
def check_accumulate_gradients(accumulate_gradients, cases=None, strict: bool | None = None) -> None:
    """Check ``accumulate_gradients(model, micro_batches, scaler, amp_dtype) -> (loss_sum, positions)``.

    The property: after the call, the gradients divided by the scaler's scale equal the gradient
    of the mean loss over every real position of the whole group computed as one batch, although
    the micro-batches hold different numbers of real positions. ``cases``: extra dicts like
    :data:`STEP_CASES`.
    """
    name = name_of(accumulate_gradients, "accumulate_gradients")
    all_cases = cases_in_order(STEP_CASES, cases, lambda case: (sum(case["micro_batches"]),
                                                                len(case["micro_batches"])))

    def body():
        seen = set()
        for case in all_cases:
            key = (tuple(case.value["micro_batches"]), case.value["amp_dtype"], case.hidden)
            if key not in seen:  # the clipping norm plays no part here
                seen.add(key)
                _check_accumulation(name, accumulate_gradients, case)
        return (f"gives the full-batch gradient of the mean loss on {len(seen)} groups of micro-batches "
                f"with different numbers of real positions.")

    run_check(name, body, strict)


def _full_batch_gradient(model, micro_batches, amp_dtype) -> tuple[torch.Tensor, float, int]:
    """The gradient of the group's mean loss computed as one batch, the summed loss and the positions."""
    model = copy.deepcopy(model)
    inputs = torch.cat([x for x, _ in micro_batches])
    targets = torch.cat([y for _, y in micro_batches])
    with torch.autocast("cpu", dtype=amp_dtype):
        loss_sum, positions = sequence_loss(model, inputs, targets)
    (loss_sum / positions).backward()
    return _gradient(model), float(loss_sum.detach()), positions


def _accumulated(model, micro_batches, amp_dtype, divide: str, scale: bool = True, keep: str = "all"):
    """The gradient (unscaled) after accumulating with a known mistake, for naming the student's."""
    model = copy.deepcopy(model)
    group = sum(int((y != 0).sum()) for _, y in micro_batches)
    for x, y in micro_batches:
        if keep == "last":
            model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=amp_dtype):
            loss, positions = sequence_loss(model, x, y)
        divisor = {"group": group, "own": positions, "own_k": positions * len(micro_batches), "none": 1}[divide]
        ((loss / divisor) * (SCALE if scale else 1.0)).backward()
    return _gradient(model) / SCALE


def _require_autocast(dtypes: list, amp_dtype, fail) -> None:
    """The student's forward passes ran, under autocast: ``fail(problem, expected, got)`` makes the error."""
    if not dtypes:
        raise fail("the model was never called.", "a forward pass per micro-batch", "none")
    if any(dtype != amp_dtype for dtype in dtypes):
        raise fail("the forward pass did not run under autocast: its layers computed in float32.",
                   f"layer outputs in {amp_dtype}", f"layer outputs in {sorted(set(map(str, dtypes)))}")


def _check_accumulation(name: str, function, case) -> None:
    model, micro_batches = _step_setup(case.value)
    amp_dtype = case.value["amp_dtype"]
    shown = _describe_setup(case.value, micro_batches) + f"; a GradScaler enabled with scale {SCALE:g}"
    expected, expected_sum, expected_positions = _full_batch_gradient(model, micro_batches, amp_dtype)
    student = copy.deepcopy(model)
    scaler = _scaler(spy=True)
    hooks, dtypes = _linear_dtypes(student)

    def fail(problem: str, expected_text: str, got_text: str) -> Exception:
        return failure(name, problem, shown, expected_text, got_text, _ACCUMULATION_HINT, case.hidden)

    try:
        result = call(function, student, [(x.clone(), y.clone()) for x, y in micro_batches], scaler, amp_dtype,
                      refuse=_accumulation_references(), hidden=case.hidden)
    except StudentError as error:
        raise raised(name, error, shown, "the summed loss and the number of positions", _ACCUMULATION_HINT,
                     case.hidden) from None
    finally:
        for hook in hooks:
            hook.remove()
    _require_autocast(dtypes, amp_dtype, fail)
    if "step" in scaler.calls or "update" in scaler.calls:
        raise fail("it steps the optimizer: accumulation only adds up gradients; the step comes once, after it "
                   "(train_step).", "scaler.scale only", f"scaler calls {scaler.calls}")
    got = _gradient(student) / SCALE
    if not bool(got.ne(0).any()):
        raise fail("there are no gradients: call backward on each micro-batch's scaled loss.",
                   "gradients in every parameter", "none")
    if _distance(got, expected) > 2e-2:
        raise fail(_accumulation_diagnosis(model, micro_batches, amp_dtype, got, "scale" in scaler.calls),
                   f"a gradient of norm {float(expected.norm()):.4g} (after dividing by the scale)",
                   f"a gradient of norm {float(got.norm()):.4g}, {_distance(got, expected):.0%} away from it")
    if not (isinstance(result, tuple) and len(result) == 2):
        raise fail("it should return two numbers, (summed loss, positions of the group).",
                   f"({expected_sum:.6g}, {expected_positions})", describe(result))
    got_sum, got_positions = (as_float(v) for v in result)
    if got_positions != expected_positions or got_sum is None or not math.isclose(got_sum, expected_sum,
                                                                                    rel_tol=1e-2):
        raise fail("the gradients are right, but it should return the group's summed loss (as a float) and its "
                   "number of real target positions.", f"({expected_sum:.6g}, {expected_positions})",
                   f"{result!r}")


def _accumulation_diagnosis(model, micro_batches, amp_dtype, got, scaled: bool) -> str:
    if not scaled:
        return ("the loss was not scaled: call scaler.scale(loss).backward(), so small float16 gradients do not "
                "underflow (the gradients come out 1 / scale of what the optimizer expects).")
    variants = [
        (dict(divide="own"), "each micro-batch's loss is divided by its own real positions; divide by the "
                             "positions of the whole group, so that the parts add up to the group's mean."),
        (dict(divide="own_k"), "each micro-batch's mean loss is divided by the number of micro-batches; they hold "
                               "different numbers of positions, so divide the summed loss by the group's positions."),
        (dict(divide="none"), "the summed loss is not divided by the group's real positions: that is the gradient "
                              "of the sum, not of the mean."),
        (dict(divide="group", keep="last"), "only the last micro-batch's gradient is left: the gradients were "
                                            "zeroed between micro-batches. Backward adds to them; zero them only "
                                            "after the optimizer step."),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for options, text in variants:
            if _distance(got, _accumulated(model, micro_batches, amp_dtype, **options)) <= 2e-2:
                return text
    return "the gradient differs from the full-batch gradient of the group's mean loss."


# ----------------------------------------------------------------------------- 3. one optimizer step
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
    :func:`recnb.models.training.accumulate_gradients` followed by :func:`recnb.models.training.optimizer_step`
    on a tiny SASRec with plain SGD (so the size of the gradient shows in the update)
    and an enabled GradScaler. The function must return the group's mean loss per
    target position. ``cases``: extra dicts like :data:`STEP_CASES`.
    """
    name = name_of(train_step, "train_step")
    all_cases = cases_in_order(STEP_CASES, cases, lambda case: (sum(case["micro_batches"]), len(case["micro_batches"]),
                                                                bool(case["clip_norm"])))

    def body():
        for case in all_cases:
            _check_one_step(name, train_step, case)
        return f"matches recnb.models.training (accumulate_gradients + optimizer_step) on {len(all_cases)} set-ups."

    run_check(name, body, strict)


def _check_one_step(name: str, train_step, case) -> None:
    model, micro_batches = _step_setup(case.value)
    amp_dtype, clip_norm = case.value["amp_dtype"], case.value["clip_norm"]
    shown = (_describe_setup(case.value, micro_batches) + f", clip_norm = {clip_norm}; SGD(lr=0.1), GradScaler "
             f"enabled with scale {SCALE:g}")
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
    hooks, dtypes = _linear_dtypes(student)

    def fail(problem: str, expected_text: str, got_text: str) -> Exception:
        return failure(name, problem, shown, expected_text, got_text, _STEP_HINT, case.hidden)

    not_scaled = ("the loss was not scaled: call scaler.scale(loss).backward() so small fp16 gradients do not "
                  "underflow.")
    try:
        result = call(train_step, student, optimizer, scaler, [(x.clone(), y.clone()) for x, y in micro_batches],
                      amp_dtype=amp_dtype, clip_norm=clip_norm, refuse=_step_references(), hidden=case.hidden)
    except StudentError as error:
        if dtypes and "scale" not in scaler.calls:  # the scaler refuses to unscale or step an unscaled loss
            raise fail(not_scaled, "scaler.scale called once per micro-batch", error.describe()) from None
        raise raised(name, error, shown, f"mean loss {expected_loss:.6g} and one optimizer step",
                     _STEP_HINT, case.hidden) from None
    finally:
        for hook in hooks:
            hook.remove()

    _require_autocast(dtypes, amp_dtype, fail)
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
    got_loss = as_float(result)
    if got_loss is None or not math.isclose(got_loss, expected_loss, rel_tol=1e-2):
        problem = "it should return the group's mean loss per target position (summed loss / all positions)."
        if got_loss is not None and math.isclose(got_loss, loss_sum, rel_tol=1e-2):
            problem = "it returns the summed loss; return it divided by the group's target positions."
        raise fail(problem, f"{expected_loss:.6g}", describe(result) if got_loss is None else f"{got_loss:.6g}")
    got = nn.utils.parameters_to_vector(student.parameters()).detach() - before

    distance = _distance(got, expected)
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
                         "the gradients were not clipped: clip their norm to clip_norm with "
                         "torch.nn.utils.clip_grad_norm_ (no clipping when clip_norm is None)."))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for options, text in variants:
            update = _variant_step(model, micro_batches, amp_dtype, clip_norm, **options) - before
            if _distance(got, update) <= 2e-2:
                return text
    return ("the parameter update differs from one step of recnb.models.training's accumulate_gradients + "
            "optimizer_step.")
