"""The ``python -m recnb`` command line.

Each sub-command is a function ``run_<name>(args) -> int`` registered with its
arguments in :func:`build_parser`; later chapters add ``train``, ``evaluate``
and ``compare`` the same way. Expected failures (bad input, missing data) print
one clear ``error:`` line and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from recnb import __version__
from recnb.data.releases import RELEASES
from recnb.errors import InvalidArgumentError, RecnbError
from recnb.models.baselines import BASELINES, make_baseline


def _require(condition: bool, message: str) -> None:
    """Stop before any work with one clear message (main() prints it as an ``error:`` line, exit 2)."""
    if not condition:
        raise InvalidArgumentError(message)


def _seed(seed: int) -> None:
    """--seed checked where it is typed, so the message names the flag."""
    from recnb.config import check_seed

    try:
        check_seed(seed)
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"--{error}") from None


def check_output_file(path: str, flag: str, example: str = "run.pt") -> None:
    """Fail before training, not after it, when ``path`` cannot be written as a file."""
    import os

    target = Path(path)
    _require(not target.is_dir(), f"{flag} {path} is a folder; give a file name inside it, e.g. {target / example}.")
    folder = target.parent if str(target.parent) else Path(".")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    _require(existing.is_dir(), f"{flag} {path}: {existing} is a file, not a folder.")
    _require(os.access(existing, os.W_OK), f"{flag} {path}: no permission to write in {existing}.")


#: Model options of ``train``: flag -> the SASRecConfig field it overrides (checked against it by the tests).
MODEL_OPTIONS = {"--d-model": "d_model", "--layers": "n_layers", "--heads": "n_heads", "--max-len": "max_len",
                 "--dropout": "dropout", "--attention-dropout": "attention_dropout",
                 "--ffn-multiplier": "ffn_multiplier"}
#: Model switches of ``train``: flag -> (SASRecConfig field, the value the flag sets, help).
MODEL_SWITCHES = {"--no-genre": ("use_genre", False, "switch the genre embedding off"),
                  "--no-year": ("use_year", False, "switch the year embedding off"),
                  "--linear-head": ("tied_head", False, "a separate Linear(D -> items) output head"),
                  "--item-bias": ("item_bias", True, "add a learned score of each item to the tied head's "
                                                     "(BERT4Rec's output layer)"),
                  "--scale-item-embedding": ("scale_item_embedding", True,
                                             "multiply the item embedding by sqrt(d_model) before adding the others")}


def train_flag(name: str) -> str:
    """The ``train`` option of a TrainConfig field: its own ``flag``, else ``--`` and the name with dashes."""
    from dataclasses import fields

    from recnb.models.training import TrainConfig

    meta = {f.name: f.metadata for f in fields(TrainConfig)}[name]
    return meta["flag"] or "--" + name.replace("_", "-")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """``train``'s options, generated from :class:`~recnb.models.training.TrainConfig`, ``RECIPES`` and ``PRESETS``.

    Every option defaults to "not given": the recipe supplies the value, and a
    given option overrides that one field (``--recipe compact --epochs 60``).
    """
    import typing
    from dataclasses import MISSING, fields

    from recnb.models.sasrec import PRESETS, SASRecConfig
    from recnb.models.training import RECIPES, TrainConfig

    parser.add_argument("--preset", default="compact", choices=list(PRESETS),
                        help="model size: " + "; ".join(f"{name} {', '.join(f'{k}={v}' for k, v in values.items())}"
                                                        for name, values in PRESETS.items()) + " (default: compact)")
    parser.add_argument("--recipe", default="compact", choices=list(RECIPES),
                        help="how to train: " + "; ".join(f"{name}: {', '.join(f'{k}={v}' for k, v in values.items())}"
                                                          if values else f"{name}: TrainConfig's defaults"
                                                          for name, values in RECIPES.items())
                             + " (default: compact, the committed checkpoint's recipe)")
    group = parser.add_argument_group("training (each overrides one field of the recipe)")
    hints = typing.get_type_hints(TrainConfig)
    for setting in fields(TrainConfig):
        meta = setting.metadata
        if not meta["cli"]:
            continue
        flag = train_flag(setting.name)
        default = setting.default if setting.default is not MISSING else None
        by_recipe = {name: values.get(setting.name, default) for name, values in RECIPES.items()}
        said = (f"default {default}" if len(set(map(repr, by_recipe.values()))) == 1
                else ", ".join(f"{name}: {value}" for name, value in by_recipe.items()))
        if hints[setting.name] is bool:  # --all-windows / --no-all-windows: either way, whatever the recipe says
            group.add_argument(flag, dest=setting.name, action=argparse.BooleanOptionalAction, default=None,
                               help=f"{meta['help']} ({said})")
            continue
        kind = next(t for t in typing.get_args(hints[setting.name]) or (hints[setting.name],) if t is not type(None))
        choices = [c for c in meta["choices"] if c is not None] if meta["choices"] else None
        group.add_argument(flag, dest=setting.name, type=kind, choices=choices, default=None,
                           metavar=flag[2:].upper().replace("-", "_") if choices is None else None,
                           help=meta["help"] + ("" if default is None else f" ({said})"))
    model = parser.add_argument_group("model (each overrides one field of the preset)")
    model_hints = typing.get_type_hints(SASRecConfig)
    for flag, name in MODEL_OPTIONS.items():
        plain = SASRecConfig.__dataclass_fields__[name].default
        model.add_argument(flag, dest=name, type=model_hints[name], default=None,
                           metavar=flag[2:].upper().replace("-", "_"),
                           help=f"{name}: " + ", ".join(f"{preset} {values.get(name, plain)}"
                                                        for preset, values in PRESETS.items()))
    for flag, (name, value, text) in MODEL_SWITCHES.items():
        model.add_argument(flag, dest=name, action="store_const", const=value, default=None, help=text)


def train_settings(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line, each checked with TrainConfig's own rule."""
    from dataclasses import fields

    from recnb.models.training import TrainConfig, check_train_settings

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if f.metadata["cli"] and getattr(args, f.name) is not None}
    check_train_settings(given, name=train_flag)
    return given


def model_overrides(args: argparse.Namespace) -> dict:
    """The SASRecConfig fields given on the command line, checked before any data are read."""
    from recnb.models.sasrec import PRESETS

    given = {name: getattr(args, name) for name in [*MODEL_OPTIONS.values(),
                                                    *(name for name, _, _ in MODEL_SWITCHES.values())]
             if getattr(args, name) is not None}
    for flag, name in MODEL_OPTIONS.items():
        if name in ("dropout", "attention_dropout"):
            _require(name not in given or 0 <= given[name] < 1, f"{flag} must be in [0, 1), not {given.get(name)}.")
        else:
            _require(name not in given or given[name] >= 1, f"{flag} must be at least 1, not {given.get(name)}.")
    width = given.get("d_model", PRESETS[args.preset]["d_model"])
    heads = given.get("n_heads", PRESETS[args.preset]["n_heads"])
    _require(width % heads == 0, f"--heads {heads} must divide the model width {width} (--d-model, or preset "
                                 f"{args.preset!r}): each head gets width / heads dimensions.")
    return given


def check_train_arguments(args: argparse.Namespace) -> tuple[dict, dict]:
    """Every number and path of ``train`` checked before the data are read: nonsense never trains.

    Returns the training settings and the model overrides given on the command line.
    """
    from recnb.models.devices import choose_device
    from recnb.models.history import history_path

    settings, overrides = train_settings(args), model_overrides(args)
    choose_device(settings.get("device", "auto"))  # an unknown device, or one this machine lacks, fails here
    check_output_file(args.checkpoint, "--checkpoint")
    _require(args.resume is None or Path(args.resume).is_file(), f"--resume {args.resume}: no such checkpoint file.")
    if not args.overwrite and args.resume != args.checkpoint:
        for path in (Path(args.checkpoint), history_path(args.checkpoint)):
            _require(not path.exists(), f"{path} already exists. Pass --resume {args.checkpoint} to continue it, "
                                        "--overwrite to replace it, or another --checkpoint path.")
    return settings, overrides


def add_data_arguments(parser: argparse.ArgumentParser, title: str = "data", dataset: str | None = "ml-1m",
                       dataset_help: str = "MovieLens release, or the generated 'synthetic' set (default: ml-1m)"
                       ) -> None:
    """Arguments every command that reads a data set shares (``export --onnx`` defaults to the checkpoint's)."""
    group = parser.add_argument_group(title)
    group.add_argument("--dataset", default=dataset, choices=[*RELEASES, "synthetic"], help=dataset_help)
    group.add_argument("--data-dir", default=None,
                       help="cache folder (default: $RECNB_DATA_DIR, else data/ in the repository)")
    group.add_argument("--min-user", type=int, default=5, help="k-core: minimum items per user (default 5)")
    group.add_argument("--min-item", type=int, default=5, help="k-core: minimum users per item (default 5)")
    group.add_argument("--no-download", action="store_true", help="fail instead of downloading")


def run_stats(args: argparse.Namespace) -> int:
    """Print users, items and interactions before and after the k-core filter."""
    from recnb.data.sequences import build_sequences, read_dataset

    raw = read_dataset(args.dataset, args.data_dir, download=not args.no_download)
    data = build_sequences(raw, args.min_user, args.min_item, args.dataset)
    lengths = np.array([len(s) for s in data.sequences])
    summary = data.summary()
    if args.json:
        print(json.dumps({
            "dataset": args.dataset, "source": str(raw.source),
            **{f"{row}_{col.split()[0]}": int(summary.loc[row, col]) for col in summary for row in summary.index},
            "kcore_passes": len(data.filter_steps) - 1, "dropped_while_reading": raw.dropped,
            "has_timestamps": raw.has_timestamps,
        }))
        return 0
    print(f"{args.dataset}  (read from {raw.source})")
    print(f"{'':28}{'users':>10}{'items':>10}{'interactions':>15}")
    for column, label in [("before filtering", "before filtering"),
                          ("after filtering", f"after {args.min_user}/{args.min_item}-core filter")]:
        users, items, inter = (int(summary.loc[row, column]) for row in ("users", "items", "interactions"))
        print(f"{label:28}{users:>10,}{items:>10,}{inter:>15,}")
    print(f"k-core passes: {len(data.filter_steps) - 1}; "
          f"items per user after filtering: min {lengths.min()}, median {int(np.median(lengths))}, max {lengths.max()}")
    order = "timestamps" if raw.has_timestamps else "file order (no timestamps in this copy)"
    print(f"time order from: {order}")
    if raw.dropped:
        print(f"rows dropped while reading: {raw.dropped}")
    return 0


def _fit_baseline(args: argparse.Namespace, data, split):
    options = {} if args.alpha is None else {"alpha": args.alpha}
    return make_baseline(args.model, data, **options).fit(split.train)


def _load_sasrec(args: argparse.Namespace, data, split):
    from recnb.models.checkpoints import load_checkpoint
    from recnb.models.ensemble import load_ensemble

    if len(args.checkpoint) > 1:   # several checkpoints: the mean of their scores (recnb.models.ensemble)
        ensemble, _ = load_ensemble(args.checkpoint, data, split=split)
        return ensemble
    model, _ = load_checkpoint(args.checkpoint[0], data, split=split)  # refuses other items, or a moved split
    return model


def _check_checkpoint_argument(args: argparse.Namespace) -> None:
    """A missing, damaged or foreign checkpoint fails before the data are read, not after."""
    from recnb.models.checkpoints import read_checkpoint_file

    if args.model != "sasrec":
        _require(not args.checkpoint, f"--checkpoint applies only to --model sasrec, not {args.model}.")
        return
    _require(bool(args.checkpoint),
             "--model sasrec needs --checkpoint PATH (for example checkpoints/sasrec_compact_ml1m.pt).")
    for path in args.checkpoint:
        read_checkpoint_file(path)


#: ``evaluate --model`` choices: name -> function(args, data, split) returning a model ready to score.
EVALUATE_MODELS = {**{name: _fit_baseline for name in BASELINES}, "sasrec": _load_sasrec}


def run_evaluate(args: argparse.Namespace) -> int:
    """Fit (or load) a model, rank every user's held-out item and print HR@10, NDCG@10 and MRR."""
    from recnb.data.sequences import load_dataset
    from recnb.data.split import leave_one_out
    from recnb.evaluation.evaluator import evaluate_split

    _check_checkpoint_argument(args)
    if args.alpha is not None and args.model != "hybrid":
        raise InvalidArgumentError(f"--alpha applies only to --model hybrid, not {args.model}.")
    start = time.perf_counter()
    data = load_dataset(args.dataset, args.data_dir, min_user_interactions=args.min_user,
                        min_item_interactions=args.min_item, download=not args.no_download,
                        progress=not args.json)
    split = leave_one_out(data.sequences)  # models are fit on split.train only
    fit_start = time.perf_counter()
    model = EVALUATE_MODELS[args.model](args, data, split)
    fit_seconds = time.perf_counter() - fit_start
    result = evaluate_split(model, split, args.split)
    wall_seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({
            "model": args.model, **({"alpha": model.alpha} if hasattr(model, "alpha") else {}),
            **({"checkpoints": args.checkpoint} if args.checkpoint else {}),
            "dataset": args.dataset, "split": args.split, "users": len(result.ranks), "items": data.n_items,
            "protocol": result.protocol, "metrics": result.metrics, "fit_seconds": round(fit_seconds, 3),
            "eval_seconds": round(result.seconds, 3), "wall_seconds": round(wall_seconds, 3),
        }))
        return 0
    print(f"Hit Rate @ 10: {result['HR@10']:.4f}")
    print(f"NDCG@10: {result['NDCG@10']:.4f}")
    print(f"MRR: {result['MRR']:.4f}")
    name = args.model + (f" (the mean of {len(args.checkpoint)} checkpoints)" if args.checkpoint and
                         len(args.checkpoint) > 1 else "")
    print(f"{name} on {args.dataset}, {args.split} split, {len(result.ranks):,} users ({result.protocol}); "
          f"fit {fit_seconds:.2f} s, evaluation {result.seconds:.2f} s, total {wall_seconds:.2f} s")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Train SASRec, print one line per epoch and the test metrics; train_sasrec writes the checkpoint and its
    history (JSON lines beside it)."""
    from recnb.models.distributed import process_group, silent_unless_main
    from recnb.models.training import train_recipe

    settings, overrides = check_train_arguments(args)
    train_config = train_recipe(args.recipe, **settings)
    # under torchrun, each process joins the group (and leaves it at the end, whatever happens): data-parallel
    # training, printed by rank 0 alone; without torchrun, one process as always
    with process_group(train_config.device) as worker, silent_unless_main(worker):
        return _train_and_report(args, train_config, overrides, worker)


def _train_and_report(args: argparse.Namespace, train_config, overrides: dict, worker=None) -> int:
    """``train`` after its checks: read the data, train, print the best epoch and the test metrics."""
    from recnb.config import seed_everything
    from recnb.data.sequences import build_sequences, read_dataset
    from recnb.data.split import leave_one_out
    from recnb.models.distributed import local_main_first
    from recnb.models.history import history_path
    from recnb.models.sasrec import config_from_preset
    from recnb.models.training import train_sasrec

    seed_everything(train_config.seed)
    with local_main_first(worker):  # a data set's first use writes it: one process per machine does
        raw = read_dataset(args.dataset, args.data_dir, download=not args.no_download)
    data = build_sequences(raw, args.min_user, args.min_item, args.dataset)
    split = leave_one_out(data.sequences)
    model_config = config_from_preset(args.preset, data.n_items, len(data.genre_names),
                                      len(data.year_bucket_labels), **overrides)
    print(f"{data}; preset {args.preset}: {model_config}")
    print(f"recipe {args.recipe}: {train_config}")
    command = shlex.join(["python", "-m", "recnb", *args.argv]) if args.record_command else None
    # the checkpoint: the best epoch's weights and training state, labelled with that epoch, the history of every
    # epoch run, and at the end the test metrics, minutes, peak memory and command; the history file beside it
    result = train_sasrec(data, split, model_config, train_config, checkpoint=args.checkpoint, resume=args.resume,
                          command=command)
    test = result.test
    print(f"Best epoch {result.best_epoch} (valid NDCG@10 {result.best_valid['NDCG@10']:.4f}); "
          f"{result.minutes:.1f} min; peak memory {result.peak_memory_mib:.0f} MiB; checkpoint {args.checkpoint}; "
          f"history {history_path(args.checkpoint)}")
    print(f"Test: Hit Rate @ 10: {test['HR@10']:.4f} | NDCG@10: {test['NDCG@10']:.4f} | MRR: {test['MRR']:.4f}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write an inference-only copy of a checkpoint (no optimizer state), or with ``--onnx`` an ONNX file that
    ONNX Runtime serves without PyTorch (``recnb.serve``), checked against PyTorch on real histories."""
    from recnb.models.checkpoints import export_checkpoint, read_checkpoint_file

    data_flags = [flag for flag, given in (("--dataset", args.dataset is not None), ("--data-dir", args.data_dir),
                                           ("--no-download", args.no_download)) if given]
    _require(args.onnx or not data_flags, f"{', '.join(data_flags)}: only with --onnx (the data set's films go "
                                          "into the ONNX file); a checkpoint copy needs no data.")
    check_output_file(args.output, "--output", example="model.onnx" if args.onnx else "sasrec_export.pt")
    if Path(args.output).exists() and not args.overwrite:
        raise InvalidArgumentError(f"{args.output} already exists; pass --overwrite to replace it.")
    if not args.onnx:
        out = export_checkpoint(args.checkpoint, args.output)
        print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB) from {args.checkpoint}")
        return 0
    from recnb.data.sequences import load_dataset
    from recnb.models.onnx_export import PARITY_TOLERANCE, export_onnx, onnx_modules

    onnx_modules()  # the missing extra is reported before any data is read
    dataset = args.dataset or read_checkpoint_file(args.checkpoint)["dataset"]["name"]
    data = load_dataset(dataset, args.data_dir, min_user_interactions=args.min_user,
                        min_item_interactions=args.min_item, download=not args.no_download)
    result = export_onnx(args.checkpoint, args.output, data, overwrite=args.overwrite)
    print(f"wrote {result.path} ({result.path.stat().st_size / 2**20:.1f} MiB) from {args.checkpoint}, with the "
          f"{data.n_items:,} films of {data.name}; ONNX Runtime matches PyTorch on real histories to "
          f"{result.max_difference:.1e} (largest score difference; limit {PARITY_TOLERANCE:g})")
    return 0


def compare_outputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """Where ``compare`` writes: the README's ``assets/`` files only for ML-1M with the benchmark's 5-core filter.

    Any other data set or filter gets files of its own name beside them
    (``comparison_synthetic.csv``), so a run on other data never replaces the
    committed ML-1M table and chart; ``--csv`` and ``--chart`` always win.
    """
    from recnb.evaluation.comparison import default_output_dir

    output = default_output_dir()
    benchmark = args.dataset == "ml-1m" and args.min_user == 5 and args.min_item == 5
    suffix = "" if benchmark else f"_{args.dataset}" + (
        "" if (args.min_user, args.min_item) == (5, 5) else f"_{args.min_user}u{args.min_item}i")
    csv = Path(args.csv) if args.csv else output / f"comparison{suffix}.csv"
    chart = Path(args.chart) if args.chart else output / f"baseline_comparison{suffix}.png"
    for path, flag, example in ((csv, "--csv", "comparison.csv"), (chart, "--chart", "comparison.png")):
        check_output_file(str(path), flag, example)
    return csv, chart


def run_compare(args: argparse.Namespace) -> int:
    """Every baseline and SASRec on the test split: print the table, write the CSV and the chart."""
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window
    import matplotlib.pyplot as plt

    from recnb.config import display_path, seed_everything
    from recnb.data.sequences import load_dataset
    from recnb.data.split import leave_one_out
    from recnb.evaluation.analysis import results_table
    from recnb.evaluation.comparison import (
        MODEL_NAMES,
        PUBLISHED,
        evaluate_models,
        format_table,
        save_figure,
        write_csv,
    )
    from recnb.models.checkpoints import load_checkpoint
    from recnb.models.zoo import default_checkpoint, fit_models
    from recnb.viz.comparison_plots import plot_comparison_chart

    if args.train and args.checkpoint:
        raise InvalidArgumentError("Give --checkpoint (use a trained model) or --train (train one now), not both.")
    _require(not args.train or args.epochs >= 1, f"--epochs must be at least 1 to train SASRec, not {args.epochs}.")
    _seed(args.seed)
    csv_target, chart_target = compare_outputs(args)
    start = time.perf_counter()
    data = load_dataset(args.dataset, args.data_dir, min_user_interactions=args.min_user,
                        min_item_interactions=args.min_item, download=not args.no_download)
    split = leave_one_out(data.sequences)
    if args.train:
        sasrec, source = _train_for_compare(args, data, split), f"trained now ({args.epochs} epochs)"
    else:
        path = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
        sasrec, _ = load_checkpoint(path, data, split=split)  # refuses other items, or a moved split
        source = display_path(path)
    seed_everything(args.seed)
    models = fit_models(data, split, sasrec=sasrec, alpha=args.alpha)
    results = evaluate_models(models, split, "test")
    table = results_table(results, names=MODEL_NAMES, relative_to="popularity")
    references = {"published SASRec": PUBLISHED["SASRec, full cross-entropy (RecSys 2023)"]["HR@10"]}
    ax = plot_comparison_chart(table, references=references,
                               title=f"HR@10 on {data.name} test: {split.n_users:,} users, full ranking over "
                                     f"{data.n_items:,} films")
    # the chart is drawn before anything is written, so a failure leaves both files as they were
    csv_path = write_csv(table, csv_target)
    chart_path = save_figure(ax.figure, chart_target)
    plt.close(ax.figure)
    print(f"{data.name}, test split, {split.n_users:,} users, full ranking over {data.n_items:,} items "
          f"(seen items masked); hybrid alpha {models['hybrid'].alpha:g} (chosen on validation unless given); "
          f"SASRec: {source}")
    print(format_table(table))
    print(f"wrote {csv_path} and {chart_path} in {time.perf_counter() - start:.1f} s")
    return 0


def _train_for_compare(args, data, split):
    """A compact SASRec trained now with the committed checkpoint's recipe (``--recipe compact``)."""
    from recnb.models.sasrec import config_from_preset
    from recnb.models.training import train_recipe, train_sasrec

    config = config_from_preset("compact", data.n_items, len(data.genre_names), len(data.year_bucket_labels))
    train_config = train_recipe("compact", epochs=args.epochs, patience=args.epochs, seed=args.seed)
    return train_sasrec(data, split, config, train_config).model


#: ``tune``'s checked options: recnb.models.tuning.tune's argument -> the flag its messages name.
TUNE_FLAGS = {"n_trials": "--trials", "budget_minutes": "--budget-minutes", "trial_epochs": "--trial-epochs",
              "trial_minutes": "--trial-minutes", "seed": "--seed", "storage": "--storage"}


def run_tune(args: argparse.Namespace) -> int:
    """Search SASRec's settings on the validation split (Optuna); print every trial, the best one beside the
    committed recipe's trial, and the command that retrains the best one in full."""
    from recnb.data.sequences import load_dataset
    from recnb.data.split import leave_one_out
    from recnb.models.tuning import (
        best_completed_trial,
        best_trial_command,
        check_tune_settings,
        optuna_module,
        recipe_trial,
        trials_table,
        tune,
    )

    optuna_module()  # a missing Optuna, then every number and the storage, fail before the data are read
    check_tune_settings({name: getattr(args, name) for name in TUNE_FLAGS}, name=TUNE_FLAGS.__getitem__)
    data_arguments = [*(["--data-dir", args.data_dir] if args.data_dir else []),
                      *(["--min-user", str(args.min_user)] if args.min_user != 5 else []),
                      *(["--min-item", str(args.min_item)] if args.min_item != 5 else [])]
    data = load_dataset(args.dataset, args.data_dir, min_user_interactions=args.min_user,
                        min_item_interactions=args.min_item, download=not args.no_download,
                        progress=not args.no_progress)
    split = leave_one_out(data.sequences)
    name = args.study or f"sasrec-{args.dataset}"
    try:
        study = tune(data, split, args.n_trials, args.budget_minutes, storage=args.storage, study_name=name,
                     trial_epochs=args.trial_epochs, trial_minutes=args.trial_minutes, seed=args.seed,
                     progress=not args.no_progress, data_arguments=data_arguments)
    except KeyboardInterrupt:
        print("interrupted: " + ("run the same command again to resume the study (the interrupted trial runs "
                                 "again)." if args.storage else "nothing was stored (give --storage to keep a "
                                 "study)."), file=sys.stderr)
        return 130
    table = trials_table(study)
    print(f"{data}; study {name!r}" + (f" in {args.storage}" if args.storage else "") + f": {len(table)} trials")
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    best, recipe = best_completed_trial(study), recipe_trial(study)
    if best is None:
        print("No trial has completed yet: give more --budget-minutes or --trials.")
        return 0
    print(f"{'validation':18}{'trial':>6}{'HR@10':>9}{'NDCG@10':>9}{'MRR':>9}{'epochs':>8}{'minutes':>9}")
    for label, trial in (("best", best), ("committed recipe", recipe)):
        if trial is not None:
            a = trial.user_attrs
            print(f"{label:18}{trial.number:>6}{a['valid_HR@10']:>9.4f}{a['valid_NDCG@10']:>9.4f}"
                  f"{a['valid_MRR']:>9.4f}{a['epochs_run']:>8}{a['minutes']:>9.1f}")
    if recipe is not None and best.number == recipe.number:
        print("The committed recipe is the best trial: nothing better to retrain.")
    else:
        print("Retrain the best trial's settings in full (the recipe's epochs, not a trial's), then compare its "
              f"validation figures with the committed checkpoint's:\n  {best_trial_command(study)}")
    return 0


def run_assignments(args: argparse.Namespace) -> int:
    """``assignments release``: the student notebooks and what students need to run them, as a folder (and a zip)."""
    from recnb.teaching.assignments import build_release

    print(build_release(args.out, course=args.course, archive=args.zip).summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recnb", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"recnb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stats = commands.add_parser("stats", help="users, items and interactions before and after filtering")
    add_data_arguments(stats)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(run=run_stats)

    evaluate = commands.add_parser("evaluate", help="fit a baseline or load SASRec, rank every user's held-out item")
    evaluate.add_argument("--model", required=True, choices=list(EVALUATE_MODELS), help="which model to evaluate")
    add_data_arguments(evaluate)
    evaluate.add_argument("--split", default="test", choices=["valid", "test"],
                          help="validation or test targets (default: test)")
    evaluate.add_argument("--alpha", type=float, default=None,
                          help="hybrid only: weight of the Markov chain in [0, 1] (default 0.5)")
    evaluate.add_argument("--checkpoint", default=None, nargs="+", metavar="PATH",
                          help="sasrec only: the trained checkpoint to load; several are scored as one model, "
                               "the mean of their scores (for example the same recipe trained with other seeds)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=run_evaluate)

    train = commands.add_parser("train", help="train SASRec and save the best checkpoint and its history")
    add_data_arguments(train)
    add_train_arguments(train)
    train.add_argument("--checkpoint", default="checkpoints/sasrec.pt",
                       help="where to write the checkpoint; its history goes beside it as NAME.history.jsonl")
    train.add_argument("--resume", default=None, help="continue from this checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace an existing --checkpoint and its history")
    train.add_argument("--record-command", action="store_true",
                       help="store this command line in the checkpoint and its history")
    train.set_defaults(run=run_train)

    compare = commands.add_parser("compare", help="every model on the test split: table, CSV and chart (the main job)")
    add_data_arguments(compare)
    compare.add_argument("--checkpoint", default=None,
                         help="SASRec checkpoint (default: the committed checkpoints/sasrec_compact_ml1m.pt)")
    compare.add_argument("--train", action="store_true", help="train a compact SASRec now instead of loading one")
    compare.add_argument("--epochs", type=int, default=40, help="with --train: epochs (default 40)")
    compare.add_argument("--alpha", type=float, default=None,
                         help="hybrid's Markov weight (default: chosen on the validation split)")
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--csv", default=None, help="where to write the table (default: assets/comparison.csv)")
    compare.add_argument("--chart", default=None,
                         help="where to draw the chart (default: assets/baseline_comparison.png)")
    compare.set_defaults(run=run_compare)

    tune = commands.add_parser("tune", help="search SASRec's settings with Optuna on the validation split "
                               "(needs pip install -e '.[tune]')")
    add_data_arguments(tune)
    tune.add_argument("--trials", dest="n_trials", type=int, default=20,
                      help="stop once the study holds this many finished trials, earlier runs' included (default 20)")
    tune.add_argument("--budget-minutes", type=float, required=True,
                      help="stop after this many minutes of this run (no trial begins that could not get its "
                           "--trial-minutes)")
    tune.add_argument("--storage", default=None,
                      help="keep the study in a database, e.g. sqlite:///tuning/ml1m.db (its folder must exist); "
                           "the same command again resumes it (default: in memory)")
    tune.add_argument("--study", default=None, help="the study's name in --storage (default: sasrec-DATASET)")
    tune.add_argument("--trial-epochs", type=int, default=5,
                      help="each trial's epochs; the recipe's cosine schedule decays within them (default 5)")
    tune.add_argument("--trial-minutes", type=float, default=None,
                      help="each trial's wall-clock budget (default: none but the study's)")
    tune.add_argument("--seed", type=int, default=0, help="the sampler's and every trial's seed (default 0)")
    tune.add_argument("--no-progress", action="store_true", help="no progress bar")
    tune.set_defaults(run=run_tune)

    export = commands.add_parser("export", help="copy a checkpoint without its training state, for sharing; "
                                 "with --onnx, an ONNX file to serve without PyTorch")
    export.add_argument("--checkpoint", required=True)
    export.add_argument("--output", required=True)
    export.add_argument("--overwrite", action="store_true")
    export.add_argument("--onnx", action="store_true",
                        help="write an ONNX file with the films' ids, titles, years and genres, for recnb.serve "
                             "(needs pip install 'recnb[serve]')")
    add_data_arguments(export, "data (with --onnx: the data set the checkpoint was trained on)", dataset=None,
                       dataset_help="default: the checkpoint's")
    export.set_defaults(run=run_export)

    assignments = commands.add_parser("assignments", help="the course assignments: build what students get")
    actions = assignments.add_subparsers(dest="action", required=True, metavar="ACTION")
    release = actions.add_parser("release", help="the student notebooks (no solutions, hidden tests or model "
                                 "answers), recnb as a wheel and a README, to hand out instead of the repository")
    release.add_argument("--out", required=True, help="the folder to write (new, or empty)")
    release.add_argument("--zip", action="store_true", help="also write OUT.zip, the same folder as one file")
    release.add_argument("--course", default=None,
                         help="the course folder (default: notebooks/assignments of this repository)")
    release.set_defaults(run=run_assignments)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; recnb's own errors and unusable paths end in one ``error:`` line, exit 2.

    Only :class:`~recnb.errors.RecnbError` (raised on purpose, with what to do)
    and the operating system's refusals of a path are caught: any other
    exception is a bug, and keeps its traceback so it can be reported.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # what --record-command stores: the arguments given, whether from a shell or a caller
    try:
        return args.run(args)
    except RecnbError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileNotFoundError) as error:
        where = f": {error.filename}" if error.filename else ""
        print(f"error: {error.strerror or error}{where}. Check the path and its permissions.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
