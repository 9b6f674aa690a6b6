"""A hyper-parameter search for SASRec with Optuna: ``python -m recnb tune``.

Each trial trains SASRec with settings drawn from :data:`SEARCH_SPACE` (everything
else is the committed recipe, ``--recipe compact --preset compact``) for a short,
equal budget (``trial_epochs``, the cosine schedule decaying within them, and
``trial_minutes``), reports its validation NDCG@10 after every epoch so a poor
trial is pruned, and is scored by its best validation NDCG@10. The first trial of
a new study is the committed recipe itself, so every setting is compared with
the recipe under the same budget. The test split is sealed (:func:`sealed_split`):
a search that chose settings by test figures would report them too kindly.

The best trial's settings are then retrained in full with
:func:`best_trial_command`, ``python -m recnb train ... --recipe compact`` and
only the options that differ from the recipe: the recipe's 50 epochs, not a
trial's few (a learning rate that wins in 5 epochs need not win in 50: check
the retrained model's validation figures against the committed checkpoint's).

Optuna is an optional dependency (``pip install -e '.[tune]'``): it is imported
inside the functions that use it, so this module imports without it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recnb.config import check_seed
from recnb.data.sequences import SequenceData
from recnb.data.split import LeaveOneOutSplit
from recnb.errors import InvalidArgumentError, MissingToolError
from recnb.models.sasrec import PRESETS, SASRecConfig, config_from_preset
from recnb.models.training import RULES, TrainConfig, train_recipe, train_sasrec

#: Where a retrained model goes by default (``best_trial_command``).
TUNED_CHECKPOINT = "checkpoints/tuned_sasrec.pt"


@dataclass(frozen=True)
class Span:
    """Numbers from ``low`` to ``high`` (both included): log-uniform when ``log``, whole numbers when ``integer``."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __contains__(self, value) -> bool:
        return bool(isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
                    and self.low <= value <= self.high and (not self.integer or float(value).is_integer()))


#: The search space, in one place: a tuple is a choice among its values, a :class:`Span` a range. Every other
#: setting is the recipe's and the preset's. A study remembers the space it ran with and refuses another on resume.
SEARCH_SPACE: dict[str, tuple | Span] = {
    # the model (SASRecConfig fields)
    "d_model": (32, 64, 128),                   # width; every head count below divides every width
    "n_heads": (1, 2, 4),
    "n_layers": Span(1, 3, integer=True),
    "dropout": Span(0.0, 0.5),
    "max_len": (50, 100, 200),                  # shorter is faster: with all_windows every interaction still counts
    # training (TrainConfig fields)
    "lr": Span(3e-4, 1e-2, log=True),           # the peak of the cosine schedule
    "use_weight_decay": (False, True),          # the recipe has none: 0 cannot sit on a log scale, so a switch ...
    "weight_decay": Span(1e-6, 1e-3, log=True),  # ... and, when on, Adam's L2 weight decay
    "loss": ("ce", "sampled"),                  # full cross-entropy, or over the target and `negatives` items
    "negatives": Span(64, 2048, log=True, integer=True),  # with loss "sampled" only (uniform sampler)
}
MODEL_KNOBS = ("d_model", "n_heads", "n_layers", "dropout", "max_len")
TRAIN_KNOBS = ("lr", "weight_decay", "loss", "negatives")

#: The ``train`` options of the model knobs (``recnb.cli.MODEL_OPTIONS`` read the other way; a test checks them).
MODEL_FLAGS = {"d_model": "--d-model", "n_layers": "--layers", "n_heads": "--heads", "max_len": "--max-len",
               "dropout": "--dropout"}

#: What :func:`tune` checks, by argument: (test, how to say it).
TUNE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_trials": RULES["count"], "budget_minutes": RULES["positive"], "trial_epochs": RULES["count"],
    "trial_minutes": RULES["optional_positive"],
}


class SealedTestSplitError(RuntimeError):
    """Something read the test targets during a search: a bug, so it keeps its traceback."""


class SealedTargets:
    """Stands in for a split's test targets during a search: every use of them raises.

    Not a check that passes today but a guarantee: whatever a trial calls, the
    targets it might pick settings by are not there to be read.
    """

    def __init__(self, n_users: int):
        self.n_users = n_users

    def _refuse(self, *args, **kwargs):
        raise SealedTestSplitError("A hyper-parameter search read the test targets: settings chosen on them would "
                                   "report the test figures too kindly. Only the validation targets may be used.")

    __array__ = __getitem__ = __iter__ = __len__ = __eq__ = __index__ = __int__ = __float__ = __bool__ = _refuse
    __hash__ = None  # type: ignore[assignment]

    def __getattr__(self, name):  # .shape, .copy(), .tolist(), ...: anything not defined above
        if name.startswith("__"):
            raise AttributeError(name)  # Python's own probes (copy, pickle) get the usual answer
        self._refuse()

    def __repr__(self) -> str:
        return f"SealedTargets({self.n_users:,} users)"


def sealed_split(split: LeaveOneOutSplit) -> LeaveOneOutSplit:
    """A copy of ``split`` whose test targets cannot be read (:class:`SealedTargets`); training and validation
    as they were."""
    return LeaveOneOutSplit(train=split.train, valid=split.valid, test=SealedTargets(split.n_users),  # type: ignore
                            users=split.users, dropped_users=split.dropped_users)


# ----------------------------------------------------------------------------- the search space
def optuna_module():
    """The ``optuna`` module, or a clear error saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise MissingToolError("Optuna is not installed: pip install -e '.[tune]'") from None
    return optuna


def search_space(overrides: Mapping[str, tuple | Span] | None = None) -> dict[str, tuple | Span]:
    """:data:`SEARCH_SPACE` with some of its entries replaced (tests use tiny widths), checked."""
    space = dict(SEARCH_SPACE)
    unknown = sorted(set(overrides or {}) - set(space))
    if unknown:
        raise InvalidArgumentError(f"Unknown search-space entries {unknown}; the space has {sorted(space)}.")
    space.update(overrides or {})
    for name, values in space.items():
        if not isinstance(values, Span) and not (isinstance(values, tuple) and values):
            raise InvalidArgumentError(f"Search-space entry {name!r} must be a non-empty tuple of choices or a "
                                       f"Span, not {values!r}.")
        if isinstance(values, Span) and not values.low <= values.high:
            raise InvalidArgumentError(f"Search-space entry {name!r}: low {values.low} is above high {values.high}.")
    widths, heads = space["d_model"], space["n_heads"]
    if isinstance(widths, Span) or isinstance(heads, Span):
        raise InvalidArgumentError("Search-space entries 'd_model' and 'n_heads' must be tuples of choices, so "
                                   "that every head count can be checked to divide every width.")
    uneven = [(d, h) for d in widths for h in heads if d % h]
    if uneven:
        raise InvalidArgumentError(f"Every head count must divide every width, so any pair can be drawn: "
                                   f"{uneven[0][1]} heads do not divide d_model {uneven[0][0]}.")
    return space


def _suggest(trial, name: str, values: tuple | Span):
    if isinstance(values, Span):
        if values.integer:
            return trial.suggest_int(name, int(values.low), int(values.high), log=values.log)
        return trial.suggest_float(name, values.low, values.high, log=values.log)
    return trial.suggest_categorical(name, list(values))


def suggest_settings(trial, space: Mapping[str, tuple | Span] | None = None) -> tuple[dict, dict]:
    """Draw one trial's settings: ``(model_overrides, train_overrides)``, every knob of the space.

    ``model_overrides`` go to :func:`~recnb.models.sasrec.config_from_preset`, ``train_overrides`` to
    :func:`~recnb.models.training.train_recipe`. ``space`` is :func:`search_space`'s (default
    :data:`SEARCH_SPACE`). Works with any Optuna trial, ``optuna.trial.FixedTrial(params)`` included.
    """
    space = search_space() if space is None else space
    model = {name: _suggest(trial, name, space[name]) for name in MODEL_KNOBS}
    train = {"lr": _suggest(trial, "lr", space["lr"])}
    train["weight_decay"] = (_suggest(trial, "weight_decay", space["weight_decay"])
                             if _suggest(trial, "use_weight_decay", space["use_weight_decay"]) else 0.0)
    train["loss"] = _suggest(trial, "loss", space["loss"])
    if train["loss"] == "sampled":
        train["negatives"] = _suggest(trial, "negatives", space["negatives"])
    return model, train


def _plain(value):
    """NumPy scalars as Python ones (Optuna stores JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def recipe_params(preset: str = "compact", recipe: str = "compact",
                  space: Mapping[str, tuple | Span] | None = None) -> dict[str, Any]:
    """The preset's and the recipe's own values of the knobs, as trial parameters: the search's first trial.

    Raises :class:`InvalidArgumentError` when one is not in ``space`` (the recipe must be a point of the search).
    """
    space = search_space() if space is None else space
    if preset not in PRESETS:
        raise InvalidArgumentError(f"Unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
    plain_model = {f: SASRecConfig.__dataclass_fields__[f].default for f in MODEL_KNOBS}
    train = asdict(train_recipe(recipe))
    params = {name: _plain({**plain_model, **PRESETS[preset]}[name]) for name in MODEL_KNOBS}
    params["lr"] = train["lr"]
    params["use_weight_decay"] = bool(train["weight_decay"])
    if params["use_weight_decay"]:
        params["weight_decay"] = train["weight_decay"]
    params["loss"] = train["loss"]
    if train["loss"] == "sampled":
        params["negatives"] = train["negatives"]
    outside = [f"{name} {value!r} (space {space[name]!r})" for name, value in params.items()
               if value not in space[name]]
    if outside:
        raise InvalidArgumentError(f"Preset {preset!r} and recipe {recipe!r} are not a point of the search space: "
                                   + "; ".join(outside) + ". Widen the space so the first trial can be the recipe.")
    return params


# ----------------------------------------------------------------------------- commands
def _train_flag(name: str) -> str:
    """The ``train`` option of a TrainConfig field (as ``recnb.cli.train_flag``, which this layer cannot import)."""
    meta = {f.name: f.metadata for f in fields(TrainConfig)}[name]
    return meta["flag"] or "--" + name.replace("_", "-")


def retrain_command(dataset: str, model_settings: Mapping[str, Any], train_settings: Mapping[str, Any], *,
                    preset: str = "compact", recipe: str = "compact", checkpoint: str = TUNED_CHECKPOINT,
                    data_arguments: Sequence[str] = ()) -> str:
    """The ``python -m recnb train`` command that trains these settings in full: the recipe's epochs and
    schedule, with only the options whose value differs from the preset's and the recipe's."""
    import shlex

    base_model = {**{f: SASRecConfig.__dataclass_fields__[f].default for f in MODEL_FLAGS}, **PRESETS[preset]}
    base_train = asdict(train_recipe(recipe))
    words = ["python", "-m", "recnb", "train", "--dataset", dataset, *data_arguments, "--checkpoint",
             str(checkpoint), "--preset", preset, "--recipe", recipe]
    for name, value in model_settings.items():
        if name not in MODEL_FLAGS:
            raise InvalidArgumentError(f"{name!r} has no train option; the model options are {sorted(MODEL_FLAGS)}.")
        if value != base_model[name]:
            words += [MODEL_FLAGS[name], repr(_plain(value))]
    for name, value in train_settings.items():
        if value != base_train[name]:
            words += [_train_flag(name), str(_plain(value)) if isinstance(value, str) else repr(_plain(value))]
    return shlex.join(words)


def best_trial_command(study, dataset: str | None = None, *, checkpoint: str = TUNED_CHECKPOINT,
                       data_arguments: Sequence[str] | None = None) -> str:
    """The ``train`` command that retrains the study's best trial in full (default data: the study's own)."""
    trial = best_completed_trial(study)
    if trial is None:
        raise InvalidArgumentError(f"Study {study.study_name!r} has no completed trial yet: run more trials.")
    attrs = study.user_attrs
    return retrain_command(dataset or attrs["dataset"], trial.user_attrs["model_settings"],
                           trial.user_attrs["train_settings"], preset=attrs["preset"], recipe=attrs["recipe"],
                           checkpoint=checkpoint,
                           data_arguments=attrs.get("data_arguments", ()) if data_arguments is None else data_arguments)


def best_completed_trial(study):
    """The completed trial with the highest value, or None (``study.best_trial`` raises when there is none)."""
    optuna = optuna_module()
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(done, key=lambda t: t.value, default=None)


def recipe_trial(study):
    """The study's completed run of the committed recipe (its first trial, or that trial's re-run), or None."""
    optuna = optuna_module()
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return next((t for t in done if t.user_attrs.get("recipe")), None)


def trials_table(study) -> pd.DataFrame:
    """One row per trial: number, state, value (its best validation NDCG@10; a pruned trial's best before it
    was stopped), each parameter (empty where a trial did not draw it), epochs run and minutes."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        rows.append({"number": t.number, "state": t.state.name,
                     "value": attrs.get("valid_NDCG@10", t.value), "recipe": bool(attrs.get("recipe")),
                     **t.params, "epochs_run": attrs.get("epochs_run"), "minutes": attrs.get("minutes")})
    columns = ["number", "state", "value", "recipe", *[n for n in SEARCH_SPACE if any(n in r for r in rows)],
               "epochs_run", "minutes"]
    return pd.DataFrame(rows, columns=columns)


# ----------------------------------------------------------------------------- the search
def check_tune_settings(settings: Mapping[str, Any], name: Callable[[str], str] = str) -> None:
    """Raise :class:`InvalidArgumentError` for the first of :func:`tune`'s numbers its rule refuses (``name``
    says how to call it: the command line passes its flag), and for a bad seed or storage URL."""
    for key, value in settings.items():
        if key == "seed":
            try:
                check_seed(value)
            except InvalidArgumentError as error:  # "seed must be ..." -> "--seed must be ..."
                raise InvalidArgumentError(name(key) + str(error).removeprefix("seed")) from None
        elif key == "storage":
            check_storage(value, name(key))
        elif not TUNE_RULES[key][0](value):
            raise InvalidArgumentError(f"{name(key)} {TUNE_RULES[key][1]}, not {value!r}.")


def check_storage(url: str | None, name: str = "storage") -> None:
    """A study's storage: None (in memory), ``sqlite:///path.db`` whose folder exists, or another SQLAlchemy URL."""
    import re

    if url is None:
        return
    if not isinstance(url, str) or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
        raise InvalidArgumentError(f"{name} {url!r} is not a database URL: give sqlite:///path/to/study.db (or "
                                   "another SQLAlchemy URL, such as postgresql://user@host/db).")
    if not url.startswith("sqlite:"):
        return
    if not url.startswith("sqlite:///"):
        raise InvalidArgumentError(f"{name} {url}: a SQLite URL has three slashes before a relative path "
                                   "(sqlite:///tuning/study.db); an absolute path adds its own slash after them.")
    path = url[len("sqlite:///"):].split("?")[0]
    if path in ("", ":memory:"):
        return
    target = Path(path)
    if target.is_dir():
        raise InvalidArgumentError(f"{name} {url}: {target} is a folder; give a file name inside it, "
                                   f"e.g. sqlite:///{target / 'study.db'}.")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidArgumentError(f"{name} {url}: the folder {folder} does not exist; create it first "
                                   f"(mkdir -p {folder}).")
    if target.is_file() and target.stat().st_size:
        with open(target, "rb") as file:
            if file.read(16) != b"SQLite format 3\x00":
                raise InvalidArgumentError(f"{name} {url}: {target} is not a SQLite database; give a new file "
                                           "name, or the database of an earlier study.")


def default_pruner(trial_epochs: int):
    """MedianPruner for a study of few trials (about 10 in 30 minutes on 2 CPU cores).

    - ``n_startup_trials=3``: nothing is pruned before the recipe and two other trials have completed, so the
      median is a median of several runs, not one noisy run (more would leave too few trials to prune);
    - ``n_warmup_steps=2``: never at epoch 1 (reports are epochs, from 1), where the learning rate is still
      warming up and every setting looks alike;
    - ``n_min_trials=2``: at least two trials must have reached an epoch before it is judged.
    """
    optuna = optuna_module()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=min(2, trial_epochs), n_min_trials=2)


def _study_settings(data: SequenceData, split: LeaveOneOutSplit, preset: str, recipe: str, trial_epochs: int,
                    trial_minutes: float | None, seed: int, space: Mapping, data_arguments: Sequence[str]) -> dict:
    """What makes the trials of one study comparable: a resumed study must be run with the same."""
    return {"dataset": data.name, "data": f"{split.n_users} users, {data.n_items} items, "
                                          f"{sum(len(t) for t in split.train)} training interactions",
            "preset": preset, "recipe": recipe, "trial_epochs": int(trial_epochs),
            "trial_minutes": None if trial_minutes is None else float(trial_minutes), "seed": int(seed),
            "space": {k: asdict(v) if isinstance(v, Span) else list(v) for k, v in space.items()},
            "data_arguments": list(data_arguments)}


def _requeue_interrupted(study) -> list[int]:
    """Re-run the trials an interrupted process left: RUNNING ones (a killed process) are marked failed, and
    they and the trials stopped by Ctrl-C are enqueued again with the same parameters. Returns their numbers."""
    optuna = optuna_module()
    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    rerun = {t.user_attrs.get("rerun_of") for t in trials}
    requeued = []
    for t in trials:
        if t.state == state.RUNNING:   # its process is gone: one study is run by one process at a time
            study.tell(t.number, state=state.FAIL)
        elif not (t.state == state.FAIL and t.user_attrs.get("interrupted")):
            continue
        if t.number in rerun:
            continue
        study.enqueue_trial(t.params, user_attrs={"rerun_of": t.number,
                                                  **({"recipe": True} if t.user_attrs.get("recipe") else {})})
        requeued.append(t.number)
    return requeued


def tune(data: SequenceData, split: LeaveOneOutSplit, n_trials: int, budget_minutes: float, *,
         storage: str | None = None, study_name: str = "sasrec", trial_epochs: int = 5,
         trial_minutes: float | None = None, seed: int = 0, pruner=None, progress: bool = True,
         verbose: bool = True, preset: str = "compact", recipe: str = "compact",
         space: Mapping[str, tuple | Span] | None = None, data_arguments: Sequence[str] = (),
         device: str = "auto"):
    """Search SASRec's settings on the validation split; returns the ``optuna.Study``.

    Parameters
    ----------
    n_trials : int
        Stop once the study holds this many finished (complete or pruned) trials, counting those of earlier
        runs on the same storage.
    budget_minutes : float
        Stop after this many minutes of this call, whichever comes first. A trial is not begun when the time
        left is less than ``trial_minutes`` (without it, the longest trial so far): every trial gets the same
        budget. The last trial is capped at the time left, and flagged ``budget_cut`` if that stopped it.
    storage, study_name : str
        ``"sqlite:///path.db"`` (or another SQLAlchemy URL) and a name keep the study on disk: the same call
        again resumes it (``load_if_exists``) with the same settings (refused otherwise). A trial that an
        interrupted process left unfinished (Ctrl-C, or a killed process: RUNNING) is marked failed and run
        again with the same parameters. One study is run by one process at a time. Default: in memory.
    trial_epochs, trial_minutes : int, float
        Each trial's budget: its epochs (the recipe's cosine schedule decays to 0 at the last) and wall-clock
        minutes (``TrainConfig.max_minutes``).
    seed : int
        The sampler's seed (``TPESampler(seed=seed)``) and every trial's training seed, so trials differ by
        their settings alone. A repeated run draws the same trials while the clock decides nothing: a trial
        cut by ``trial_minutes`` or the study's budget, and a resumed study (its sampler starts afresh), may
        differ from run to run.
    pruner : optuna pruner, optional
        Default :func:`default_pruner`.
    progress, verbose : bool
        Optuna's progress bar; one line per finished trial.
    preset, recipe, space :
        The model preset and training recipe every trial starts from, and :func:`search_space` overrides.
    data_arguments : list of str
        The data options of the ``train`` command stored with each trial (``["--min-user", "10"]``).

    Each trial trains with :func:`~recnb.models.training.train_sasrec` on :func:`sealed_split` (the test
    targets cannot be read), reports its validation NDCG@10 every epoch and is pruned when the pruner says
    so. Its user attributes: ``best_epoch``, ``epochs_run``, ``minutes``, ``valid_HR@10``,
    ``valid_NDCG@10``, ``valid_MRR``, ``model_settings``, ``train_settings`` and ``command`` (the retrain
    command), ``recipe`` for the committed recipe's trial.
    """
    optuna = optuna_module()
    check_tune_settings({"n_trials": n_trials, "budget_minutes": budget_minutes, "trial_epochs": trial_epochs,
                         "trial_minutes": trial_minutes, "seed": seed, "storage": storage})
    space = search_space(space)
    first = recipe_params(preset, recipe, space)
    settings = _study_settings(data, split, preset, recipe, trial_epochs, trial_minutes, seed, space,
                               data_arguments)
    state = optuna.trial.TrialState
    began = time.perf_counter()
    deadline = began + 60 * budget_minutes
    sealed = sealed_split(split)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the lines below replace Optuna's own
    try:
        study = _open_study(optuna, storage, study_name, seed, pruner if pruner is not None
                            else default_pruner(trial_epochs))
        if not study.get_trials(deepcopy=False):
            for key, value in settings.items():
                study.set_user_attr(key, value)
            study.enqueue_trial(first, user_attrs={"recipe": True})
        else:
            _check_same_study(study, settings)
            for number in _requeue_interrupted(study):
                _say(verbose, f"trial {number} was interrupted: it runs again with the same parameters")
        finished = len(study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED)))
        if finished >= n_trials:
            _say(verbose, f"study {study_name!r} already has {finished} finished trials (of {n_trials} asked for)")
            return study
        durations: list[float] = []

        def objective(trial) -> float:
            model_settings, train_settings = suggest_settings(trial, space)
            left = (deadline - time.perf_counter()) / 60
            limit = max(min(trial_minutes or math.inf, left), 0.01)
            model_config = config_from_preset(preset, data.n_items, len(data.genre_names),
                                              len(data.year_bucket_labels), **model_settings)
            train_config = train_recipe(recipe, **train_settings, epochs=trial_epochs, patience=trial_epochs,
                                        max_minutes=limit, seed=seed, device=device, progress=False, verbose=False)
            pruned: list[int] = []

            def on_epoch(record: dict) -> bool:
                trial.report(record["valid_NDCG@10"], record["epoch"])
                if trial.should_prune():
                    pruned.append(record["epoch"])
                return bool(pruned)

            try:
                result = train_sasrec(data, sealed, model_config, train_config, on_epoch=on_epoch)
            except KeyboardInterrupt:
                trial.set_user_attr("interrupted", True)   # Optuna marks it failed: the next run repeats it
                raise
            epochs_run = int(result.history["epoch"].iloc[-1])
            train_settings = {**train_settings, "seed": seed}
            for key, value in {
                "best_epoch": int(result.best_epoch), "epochs_run": epochs_run, "minutes": float(result.minutes),
                **{f"valid_{k}": float(result.best_valid[k]) for k in ("HR@10", "NDCG@10", "MRR")},
                "model_settings": {k: _plain(v) for k, v in model_settings.items()},
                "train_settings": {k: _plain(v) for k, v in train_settings.items()},
                "command": retrain_command(data.name, model_settings, train_settings, preset=preset,
                                           recipe=recipe, data_arguments=data_arguments),
                "budget_cut": not pruned and epochs_run < trial_epochs and limit < (trial_minutes or math.inf),
            }.items():
                trial.set_user_attr(key, value)
            if pruned:
                raise optuna.TrialPruned(f"pruned after epoch {pruned[0]}")
            durations.append(result.minutes)
            return float(result.best_valid["NDCG@10"])

        def after_trial(study, trial) -> None:
            _say(verbose, _trial_line(study, trial))
            # never begin a trial that could not get its full budget (the comparison would not be fair)
            expected = trial_minutes if trial_minutes is not None else max(durations, default=0.0)
            if (deadline - time.perf_counter()) / 60 < expected:
                study.stop()

        study.optimize(objective, n_trials=n_trials - finished, timeout=60 * budget_minutes,
                       callbacks=[after_trial], show_progress_bar=progress)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return study


def _open_study(optuna, storage: str | None, study_name: str, seed: int, pruner):
    """Create the study, or load it from ``storage``; a database that cannot be read is a clear error."""
    import sqlalchemy.exc

    try:
        study = optuna.create_study(
            storage=storage, study_name=study_name, direction="maximize", load_if_exists=True,
            # TPE's default of 10 random trials would leave a 30-minute study on 2 cores (about 10 trials) no
            # guided one: 5 random trials (the recipe among them), then TPE
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5), pruner=pruner)
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise InvalidArgumentError(f"storage {storage} cannot be opened as an Optuna study database "
                                   f"({getattr(error, 'orig', None) or error}).") from error
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise InvalidArgumentError(f"Study {study_name!r} in {storage} minimizes: it is not a study of this search. "
                                   "Give another study name.")
    return study


def _check_same_study(study, settings: dict) -> None:
    stored = study.user_attrs
    changed = [f"{key} {stored.get(key)!r} there, {value!r} now" for key, value in settings.items()
               if key != "data_arguments" and stored.get(key) != value]
    if changed:
        raise InvalidArgumentError(f"Study {study.study_name!r} in this storage was run with other settings ("
                                   + "; ".join(changed) + "): its trials would not be comparable. Resume it with "
                                   "the same settings, or start a new study (another study name).")


def _say(verbose: bool, line: str) -> None:
    if verbose:
        tqdm.write(line)   # above Optuna's progress bar, not through it


def _trial_line(study, trial) -> str:
    """``trial 3 COMPLETE: valid NDCG@10 0.1234 (best 0.1300, trial 1); 5 epochs, 3.2 min; d_model=64 ...``"""
    attrs = trial.user_attrs
    best = best_completed_trial(study)
    figures = (f"valid NDCG@10 {attrs['valid_NDCG@10']:.4f}" if "valid_NDCG@10" in attrs else "no figures")
    where = f" (best {best.value:.4f}, trial {best.number})" if best is not None else ""
    spent = (f"; {attrs['epochs_run']} epochs, {attrs['minutes']:.1f} min" if "epochs_run" in attrs else "")
    params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    label = " (the recipe)" if attrs.get("recipe") else ""
    return f"trial {trial.number}{label} {trial.state.name}: {figures}{where}{spent}; {params}"
