"""What every check shares: the verdict, the student's call, shortcuts refused, hidden inputs kept hidden."""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import os
import sys
import sysconfig
import textwrap
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

import recnb
from recnb.config import torch_threads

_RED, _BOLD, _RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"

#: What a failure on a hidden input says instead of the input, expected and got.
HIDDEN_NOTE = ("This happened on one of the grader's hidden inputs. They are not shown, so that the assignment "
               "can be set again next term: look for a case the visible checks do not cover.")


class CheckFailed(AssertionError):
    """A check's verdict: what is wrong, the smallest failing input, expected against got, and a hint."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback: the message alone, its first line in red."""
        head, _, rest = str(self).partition("\n")
        return [f"{_RED}{_BOLD}{head}{_RESET}", *rest.splitlines()]


class _NotAnswered(Exception):
    """The student's function (or one it calls: ``where``) still raises the stub's bare ``NotImplementedError()``."""

    def __init__(self, where: str | None = None):
        super().__init__(where)
        self.where = where


@dataclass(frozen=True)
class Reference:
    """An implementation of the exercise that the student's function must not call.

    ``target`` is a Python function (recnb's own, found by its code object however it was imported or
    renamed) or a torch function (found through torch's function-override hook); ``label`` names it.
    """

    target: object
    label: str


class _Shortcut(Exception):
    """The student's function called a :class:`Reference`: recnb's answer, not theirs."""

    def __init__(self, labels: list[str]):
        super().__init__(", ".join(labels))
        self.labels = labels


@dataclass(frozen=True)
class Case:
    """One input of a check; ``hidden`` inputs (the ``cases=`` of the grader's hidden tests) are never shown."""

    value: object
    hidden: bool


def cases_in_order(defaults: Iterable, extra: Iterable | None, size: Callable) -> list[Case]:
    """The visible default inputs and the extra (hidden) ones, smallest first by ``size``."""
    cases = [Case(value, False) for value in defaults] + [Case(value, True) for value in (extra or [])]
    return sorted(cases, key=lambda case: size(case.value))


# ----------------------------------------------------------------------------- running a check
def strict_mode(strict: bool | None) -> bool:
    if strict is not None:
        return strict
    return os.environ.get("NBGRADER_EXECUTION") in ("validate", "autograde")


def name_of(function, default: str) -> str:
    return getattr(function, "__name__", default)


def run_check(name: str, body: Callable[[], str], strict: bool | None) -> None:
    """Run a check body; print its one-line success, or 'not answered yet' (raised when strict).

    A shortcut through recnb's own implementation fails here, whatever the body was comparing.
    """
    try:
        with torch_threads(1):  # the inputs are tiny: more threads only cost time, and much of it on a busy CPU
            passed = body()
    except _NotAnswered as error:
        message = (f"✗ {name} is not answered yet: it still raises NotImplementedError.\n"
                   f"  Replace `raise NotImplementedError()` in the exercise cell with your code, run that "
                   f"cell, then run this check again.")
        if error.where:
            message = (f"✗ {name} is not answered yet: it calls {error.where}, which still raises "
                       f"NotImplementedError.\n  Replace `raise NotImplementedError()` in {error.where}'s exercise "
                       f"cell with your code, run that cell and this one's, then run this check again.")
        if strict_mode(strict):
            raise CheckFailed(message) from None
        print(message)
        return
    except _Shortcut as shortcut:
        raise CheckFailed(shortcut_message(name, shortcut.labels)) from None
    print(f"✓ {name} {passed}")


def shortcut_message(name: str, labels: list[str]) -> str:
    used = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    return (f"✗ {name} calls {used}: that computes the exercise for you.\n"
            f"The point of the exercise is to write it yourself. The check compares your function with recnb's "
            f"own implementation, so a function that calls it (directly, under another name, or through "
            f"another function that does) passes nothing and scores nothing.\n"
            f"Hint: replace the call with your own code; torch and NumPy operations are fine.")


def _code_of(target) -> object | None:
    function = getattr(target, "__func__", target)
    return getattr(function, "__code__", None)


class _TorchWatch(TorchFunctionMode):
    """Notes calls of given torch functions (fused kernels written in C++ have no Python code object)."""

    def __init__(self, functions: dict, used: list[str]):
        super().__init__()
        self.functions, self.used = functions, used

    def __torch_function__(self, func, types, args=(), kwargs=None):
        label = self.functions.get(func)
        if label is not None and label not in self.used:
            self.used.append(label)
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def watching(references: Iterable[Reference]) -> Iterator[list[str]]:
    """Yield a list that fills with the labels of the references called inside the block."""
    used: list[str] = []
    references = list(references)
    if not references:
        yield used
        return
    codes = {code: r.label for r in references if (code := _code_of(r.target)) is not None}
    functions = {r.target: r.label for r in references if _code_of(r.target) is None}
    previous = sys.getprofile()

    def profile(frame, event, arg):
        if event == "call":
            label = codes.get(frame.f_code)
            if label is not None and label not in used:
                used.append(label)
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(profile)
    try:
        with _TorchWatch(functions, used) if functions else contextlib.nullcontext():
            yield used
    finally:
        sys.setprofile(previous)


@contextlib.contextmanager
def _quiet(hidden: bool) -> Iterator[None]:
    """On a hidden input, what the student's function prints is dropped: it could print the input."""
    if not hidden:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def call(function, *args, refuse: Iterable[Reference] = (), hidden: bool = False, **kwargs):
    """Call the student's function: its result, or 'not answered', a refused shortcut, or its error to report."""
    outcome = None
    with warnings.catch_warnings(), _quiet(hidden), watching(refuse) as used:
        warnings.simplefilter("ignore")  # nbgrader scores any stderr output (warnings included) as a failure
        try:
            result = function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - any error of the student's code (a CheckFailed of theirs too,
            outcome = error         # whose message could quote a hidden input) is reported, not re-raised
    if used:
        raise _Shortcut(used)
    if isinstance(outcome, NotImplementedError) and not str(outcome):  # the stub; torch's have messages
        raise _NotAnswered(_raised_in(outcome, function)) from None
    if outcome is not None:
        raise StudentError(outcome, hidden) from None
    return result


def _raised_in(error: BaseException, function) -> str | None:
    """The function whose stub raised, when it is not ``function`` itself (an unanswered exercise it calls)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = frames[-1].name if frames else None
    return where if where and where != getattr(function, "__name__", None) else None


class StudentError(Exception):
    """An exception raised inside the student's function, kept for the report."""

    def __init__(self, error: BaseException, hidden: bool = False):
        super().__init__(str(error))
        self.error, self.hidden = error, hidden

    def describe(self) -> str:
        library = (os.path.dirname(os.path.abspath(recnb.__file__)), sysconfig.get_paths()["purelib"],
                   sysconfig.get_paths()["stdlib"])  # recnb's own frames, installed packages, the standard library
        frames = [frame for frame in traceback.extract_tb(self.error.__traceback__)
                  if not os.path.abspath(frame.filename).startswith(library)]  # the student's frames only
        lines = [f"line {frame.lineno} in {frame.name}: {frame.line}" for frame in frames[-3:] if frame.line]
        where = ("\n" + "\n".join(lines)) if lines else ""
        if self.hidden:  # a message can quote the input (shapes, values)
            return f"{type(self.error).__name__} (its message is not shown for hidden inputs){where}"
        return f"{type(self.error).__name__}: {self.error}{where}"


# ----------------------------------------------------------------------------- the verdict
def failure(name: str, problem: str, inputs: str, expected: str, got: str, hint: str,
            hidden: bool = False, detail: str | None = None) -> CheckFailed:
    """A CheckFailed with the standard layout; on a hidden input, without input, expected and got."""
    def block(title: str, text: str) -> str:
        return f"{title}\n{textwrap.indent(text, '    ')}"
    if hidden:
        parts = [f"✗ {name}: {problem}", *([textwrap.indent(detail, "    ")] if detail else []), HIDDEN_NOTE]
    else:
        parts = [f"✗ {name}: {problem}", block("Smallest failing input:", inputs), block("Expected:", expected),
                 block("Got:", got)]
    return CheckFailed("\n".join([*parts, f"Hint: {hint}"]))


def raised(name: str, error: StudentError, inputs: str, expected: str, hint: str, hidden: bool = False) -> CheckFailed:
    return failure(name, "it raised an error.", inputs, expected, error.describe(), hint, hidden,
                   detail=error.describe())


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


def require_vectorized(function, name: str, hint: str) -> None:
    loops = _loops(function)
    if loops:
        raise CheckFailed(
            f"✗ {name}: its results are right, but it loops in Python, and the exercise asks for a "
            f"vectorized version (no `for` or `while`):\n    " + "\n    ".join(loops) + f"\nHint: {hint}")


def as_float(value):
    """The student's return value as a float, or None if it is not a single number."""
    if isinstance(value, torch.Tensor):
        return float(value.detach()) if value.numel() == 1 else None
    if isinstance(value, (np.ndarray, np.generic)):
        return float(value) if np.size(value) == 1 else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def grid(mask: torch.Tensor) -> str:
    """A 2-D boolean mask as rows of 0 and 1 (rows: query positions, columns: key positions)."""
    return "\n".join(" ".join("1" if v else "0" for v in row) for row in mask.tolist())
