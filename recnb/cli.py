"""The ``python -m recnb`` command line.

Each sub-command is a function ``run_<name>(args) -> int`` registered with its
arguments in :func:`build_parser`; later chapters add ``train``, ``evaluate``
and ``compare`` the same way. Expected failures (bad input, missing data) print
one clear ``error:`` line and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
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


def check_train_arguments(args: argparse.Namespace) -> None:
    """Every number and path of ``train`` checked before the data are read: nonsense never trains."""
    from recnb.models.devices import choose_device
    from recnb.models.sasrec import PRESETS

    _seed(args.seed)
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size),
                        ("--accumulation", args.accumulation), ("--patience", args.patience)):
        _require(value >= 1, f"{flag} must be a whole number of at least 1, not {value}.")
    for flag, value in (("--d-model", args.d_model), ("--layers", args.layers), ("--heads", args.heads),
                        ("--max-len", args.max_len)):
        _require(value is None or value >= 1, f"{flag} must be at least 1, not {value}.")
    # comparisons with NaN are all False, so "not (x > 0)" also refuses nan; inf is refused by name
    _require(math.isfinite(args.lr) and args.lr > 0, f"--lr must be a number above 0, not {args.lr}.")
    _require(math.isfinite(args.weight_decay) and args.weight_decay >= 0,
             f"--weight-decay must be a number of 0 or more, not {args.weight_decay}.")
    _require(math.isfinite(args.warmup_epochs) and args.warmup_epochs >= 0,
             f"--warmup-epochs must be a number of 0 or more, not {args.warmup_epochs}.")
    _require(args.max_minutes is None or (math.isfinite(args.max_minutes) and args.max_minutes > 0),
             f"--max-minutes must be a number above 0 (leave it out for no limit), not {args.max_minutes}.")
    _require(args.dropout is None or 0 <= args.dropout < 1, f"--dropout must be in [0, 1), not {args.dropout}.")
    width = args.d_model if args.d_model is not None else PRESETS[args.preset]["d_model"]
    heads = args.heads if args.heads is not None else PRESETS[args.preset]["n_heads"]
    _require(width % heads == 0, f"--heads {heads} must divide the model width {width} (--d-model, or preset "
                                 f"{args.preset!r}): each head gets width / heads dimensions.")
    choose_device(args.device)  # an unknown device, or one this machine lacks, fails here
    check_output_file(args.checkpoint, "--checkpoint")
    _require(args.resume is None or Path(args.resume).is_file(), f"--resume {args.resume}: no such checkpoint file.")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments every command that reads a data set shares."""
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default="ml-1m", choices=[*RELEASES, "synthetic"],
                       help="MovieLens release, or the generated 'synthetic' set (default: ml-1m)")
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

    model, _ = load_checkpoint(args.checkpoint, data, split=split)  # refuses other items, or a moved split
    return model


def _check_checkpoint_argument(args: argparse.Namespace) -> None:
    """A missing, damaged or foreign checkpoint fails before the data are read, not after."""
    from recnb.models.checkpoints import read_checkpoint_file

    if args.model != "sasrec":
        _require(not args.checkpoint, f"--checkpoint applies only to --model sasrec, not {args.model}.")
        return
    _require(bool(args.checkpoint),
             "--model sasrec needs --checkpoint PATH (for example checkpoints/sasrec_compact_ml1m.pt).")
    read_checkpoint_file(args.checkpoint)


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
            "dataset": args.dataset, "split": args.split, "users": len(result.ranks), "items": data.n_items,
            "protocol": result.protocol, "metrics": result.metrics, "fit_seconds": round(fit_seconds, 3),
            "eval_seconds": round(result.seconds, 3), "wall_seconds": round(wall_seconds, 3),
        }))
        return 0
    print(f"Hit Rate @ 10: {result['HR@10']:.4f}")
    print(f"NDCG@10: {result['NDCG@10']:.4f}")
    print(f"MRR: {result['MRR']:.4f}")
    print(f"{args.model} on {args.dataset}, {args.split} split, {len(result.ranks):,} users ({result.protocol}); "
          f"fit {fit_seconds:.2f} s, evaluation {result.seconds:.2f} s, total {wall_seconds:.2f} s")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Train SASRec, print one line per epoch and the test metrics; train_sasrec writes the checkpoint."""
    from recnb.config import seed_everything
    from recnb.data.sequences import build_sequences, read_dataset
    from recnb.data.split import leave_one_out
    from recnb.models.sasrec import config_from_preset
    from recnb.models.training import TrainConfig, train_sasrec

    check_train_arguments(args)
    seed_everything(args.seed)
    data = build_sequences(read_dataset(args.dataset, args.data_dir, download=not args.no_download),
                           args.min_user, args.min_item, args.dataset)
    split = leave_one_out(data.sequences)
    overrides = {key: value for key, value in (("d_model", args.d_model), ("n_layers", args.layers),
                 ("n_heads", args.heads), ("max_len", args.max_len), ("dropout", args.dropout)) if value is not None}
    if args.no_genre:
        overrides["use_genre"] = False
    if args.no_year:
        overrides["use_year"] = False
    if args.linear_head:
        overrides["tied_head"] = False
    model_config = config_from_preset(args.preset, data.n_items, len(data.genre_names),
                                      len(data.year_bucket_labels), **overrides)
    train_config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, accumulation=args.accumulation, lr=args.lr,
        weight_decay=args.weight_decay, amp=args.amp, patience=args.patience, seed=args.seed, device=args.device,
        max_minutes=args.max_minutes, progress=not args.no_progress, schedule=args.schedule,
        warmup_epochs=args.warmup_epochs, bucket_by_length=not args.no_bucketing,
        all_windows=args.all_windows, loss=args.loss)
    print(f"{data}; preset {args.preset}: {model_config}")
    if Path(args.checkpoint).exists() and not args.overwrite and args.resume != args.checkpoint:
        raise InvalidArgumentError(f"{args.checkpoint} already exists. Pass --resume {args.checkpoint} to continue it, "
                         "--overwrite to replace it, or another --checkpoint path.")
    command = " ".join(["python -m recnb", *sys.argv[1:]]) if args.record_command else None
    # the checkpoint: the best epoch's weights and training state, labelled with that epoch, the history of every
    # epoch run, and at the end the test metrics, minutes, peak memory and command
    result = train_sasrec(data, split, model_config, train_config, checkpoint=args.checkpoint, resume=args.resume,
                          command=command)
    test = result.test
    print(f"Best epoch {result.best_epoch} (valid NDCG@10 {result.best_valid['NDCG@10']:.4f}); "
          f"{result.minutes:.1f} min; peak memory {result.peak_memory_mib:.0f} MiB; checkpoint {args.checkpoint}")
    print(f"Test: Hit Rate @ 10: {test['HR@10']:.4f} | NDCG@10: {test['NDCG@10']:.4f} | MRR: {test['MRR']:.4f}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write an inference-only copy of a checkpoint (no optimizer state)."""
    from recnb.models.checkpoints import export_checkpoint

    check_output_file(args.output, "--output", example="sasrec_export.pt")
    if Path(args.output).exists() and not args.overwrite:
        raise InvalidArgumentError(f"{args.output} already exists; pass --overwrite to replace it.")
    out = export_checkpoint(args.checkpoint, args.output)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB) from {args.checkpoint}")
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
    """A compact SASRec trained now with the committed checkpoint's recipe (``train.compact_recipe``)."""
    from recnb.models.sasrec import config_from_preset
    from recnb.models.training import compact_recipe, train_sasrec

    config = config_from_preset("compact", data.n_items, len(data.genre_names), len(data.year_bucket_labels))
    train_config = compact_recipe(epochs=args.epochs, patience=args.epochs, seed=args.seed)
    return train_sasrec(data, split, config, train_config).model


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
    evaluate.add_argument("--checkpoint", default=None, help="sasrec only: the trained checkpoint to load")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=run_evaluate)

    train = commands.add_parser("train", help="train SASRec and save the best checkpoint")
    add_data_arguments(train)
    train.add_argument("--preset", default="compact", choices=["seed", "compact", "quick"])
    train.add_argument("--epochs", type=int, default=200)
    train.add_argument("--batch-size", type=int, default=128, help="micro-batch size")
    train.add_argument("--accumulation", type=int, default=1, help="micro-batches per optimizer step")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--amp", action="store_true",
                       help="mixed precision (fp16+GradScaler on CUDA, bf16 on CPU)")
    train.add_argument("--patience", type=int, default=10)
    train.add_argument("--schedule", default="constant", choices=["constant", "cosine"],
                       help="learning-rate schedule; cosine warms up, then decays to 0 at --epochs")
    train.add_argument("--warmup-epochs", type=float, default=1.0)
    train.add_argument("--no-bucketing", action="store_true", help="random batches instead of length buckets")
    train.add_argument("--loss", default="ce", choices=["ce", "bce"],
                       help="ce: full cross-entropy over every item (default); "
                            "bce: one sampled negative, as the SASRec paper")
    train.add_argument("--all-windows", action="store_true",
                       help="also train on the part of a history older than --max-len, in windows of max-len")
    train.add_argument("--max-minutes", type=float, default=None, help="stop after the epoch past this budget")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    train.add_argument("--checkpoint", default="checkpoints/sasrec.pt")
    train.add_argument("--resume", default=None, help="continue from this checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace an existing --checkpoint file")
    for name in ("d-model", "layers", "heads", "max-len"):
        train.add_argument(f"--{name}", type=int, default=None, help="override the preset")
    train.add_argument("--dropout", type=float, default=None, help="override the preset")
    train.add_argument("--no-genre", action="store_true", help="switch the genre embedding off")
    train.add_argument("--no-year", action="store_true", help="switch the year embedding off")
    train.add_argument("--linear-head", action="store_true", help="a separate Linear(D -> items) output head")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument("--record-command", action="store_true", help="store this command line in the checkpoint")
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

    export = commands.add_parser("export", help="copy a checkpoint without its training state, for sharing")
    export.add_argument("--checkpoint", required=True)
    export.add_argument("--output", required=True)
    export.add_argument("--overwrite", action="store_true")
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
    args = build_parser().parse_args(argv)
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
