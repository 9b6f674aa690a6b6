"""Study: can one SASRec learn what two seeds know together? Distillation from their ensemble, against a control.

Prints figures; it is not a test. Scoring two seeds as one (``recnb.models.ensemble``) beats each of them on
validation, at twice the cost of every score. Knowledge distillation (Hinton, Vinyals and Dean 2015; with a
student of the teacher's own size, "born-again networks", Furlanello et al. 2018) trains one model towards the
ensemble's whole distribution over the next film, not only towards the film that came: if that carries the
pair's gain into one model, scoring costs one model again.

This study fine-tunes a trained SASRec (``--start``, for example the committed seed 0) for a few more epochs of
the compact recipe's data (every window, random batches), with a fresh Adam, a linear warm-up to ``--lr`` and a
cosine decay to 0. Its loss at every position is

    (1 - alpha) x cross-entropy(film that came)  +  alpha x cross-entropy(teachers' softmax, student's softmax)

where the teachers' softmax is that of the mean of their logits (what ``Ensemble`` scores):
``recnb.models.losses.distillation_loss``. ``--alpha 0`` is the
control: the same extra epochs with the plain loss, so a gain can be told from what more training alone does.
Each epoch is validated; the best one is kept, saved as a checkpoint ``evaluate`` reads, and tested once:

    RECNB_DATA_DIR=path/to/data python benchmarks/study_distillation.py --alpha 0.5 --out runs/distil.pt \\
        --start checkpoints/sasrec_compact_ml1m.pt \\
        --teachers checkpoints/sasrec_compact_ml1m.pt checkpoints/sasrec_compact_ml1m_seed1.pt

The run's history (``NAME.history.jsonl``, the format ``train`` writes) goes beside the checkpoint. When no epoch
beats the start's validation NDCG@10, nothing is saved and the history's end line names epoch 0, the start.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from recnb import __version__, evaluate_split, leave_one_out, load_dataset
from recnb.models.checkpoints import load_checkpoint, run_fields, save_checkpoint
from recnb.models.devices import keep_freed_memory
from recnb.models.ensemble import load_ensemble
from recnb.models.history import HistoryWriter, history_path
from recnb.models.losses import distillation_loss
from recnb.models.training import (
    epoch_batches,
    learning_rate_factor,
    optimizer_step,
    train_recipe,
    training_tensors,
    trim_padding,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", required=True, help="the checkpoint whose weights the student starts from")
    parser.add_argument("--teachers", nargs="+", required=True, help="checkpoints scored together as the teacher")
    parser.add_argument("--alpha", type=float, default=0.5, help="the soft part's share of the loss (0: control)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=5e-4, help="the peak of the warm-up and cosine decay")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="the student's checkpoint (refused if it exists)")
    args = parser.parse_args()
    if not 0 <= args.alpha <= 1 or args.temperature <= 0:
        raise SystemExit("--alpha must be from 0 to 1 and --temperature above 0.")
    for path in (args.out, history_path(args.out)):
        if path.exists():
            raise SystemExit(f"{path} exists: give another --out, or move it away first.")
    keep_freed_memory()
    torch.manual_seed(args.seed)
    data = load_dataset("ml-1m", progress=False)
    split = leave_one_out(data.sequences)
    student, start = load_checkpoint(args.start, data, split=split)
    teachers = load_ensemble(args.teachers, data, split=split)[0].models
    for teacher in teachers:
        teacher.eval()
    recipe = train_recipe("compact", epochs=args.epochs, lr=args.lr, seed=args.seed, progress=False)
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
    inputs, targets = training_tensors(split.train, student.config.max_len, all_windows=True)
    lengths = (inputs != 0).sum(1).numpy()
    steps_per_epoch = math.ceil(len(inputs) / recipe.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(
        step, steps_per_epoch * args.epochs, steps_per_epoch, "cosine"))   # one epoch of warm-up
    scaler = torch.amp.GradScaler("cpu", enabled=False)

    start_valid = start["metrics"]["valid"]["NDCG@10"]
    print(f"start: {args.start} (valid NDCG@10 {start_valid:.5f}); teachers: {', '.join(args.teachers)}; "
          f"alpha {args.alpha}, temperature {args.temperature}, {args.epochs} epochs to lr {args.lr}", flush=True)
    command = " ".join(["python", *map(shlex.quote, sys.argv)])
    writer = HistoryWriter(history_path(args.out))
    writer.start({"command": command, "checkpoint": str(args.out), "dataset": data.name, "data": str(data),
                  "model_config": student.config.to_dict(), "train_config": asdict(recipe), "device": "cpu",
                  "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "versions": {"recnb": __version__, "torch": torch.__version__},
                  "notes": [f"benchmarks/study_distillation.py: fine-tuned from {args.start} (its valid NDCG@10 "
                            f"{start_valid:.5f}) with a fresh Adam; teachers {', '.join(args.teachers)}; alpha "
                            f"{args.alpha}, temperature {args.temperature}; train_config is the compact recipe with "
                            "these epochs and peak lr, warm-up one epoch"]})
    history, best, best_state, began = [], (start_valid, 0), None, time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        student.train()
        rng = np.random.default_rng([args.seed, epoch])
        total, positions = 0.0, 0
        for rows in epoch_batches(lengths, recipe.batch_size, rng, bucket_by_length=False):
            x, y = trim_padding(inputs[torch.from_numpy(rows)], targets[torch.from_numpy(rows)], "cpu")
            loss_sum, count = distillation_loss(student, teachers, x, y, args.alpha, args.temperature)
            (loss_sum / count).backward()
            optimizer_step(student, optimizer, scaler, recipe.clip_norm)
            scheduler.step()
            total, positions = total + float(loss_sum.detach()), positions + count
        train_seconds = time.perf_counter() - epoch_start
        valid = evaluate_split(student, split, "valid").metrics
        record = {"epoch": epoch, "loss": total / positions, "valid_HR@10": valid["HR@10"],
                  "valid_NDCG@10": valid["NDCG@10"], "valid_MRR": valid["MRR"],
                  "seconds": time.perf_counter() - epoch_start, "train_seconds": train_seconds,
                  "skipped_steps": 0, "lr": optimizer.param_groups[0]["lr"],
                  "elapsed_minutes": (time.perf_counter() - began) / 60}
        history.append(record)
        writer.epoch(record)
        print(f"epoch {epoch}: loss {record['loss']:.4f}, valid HR@10 {valid['HR@10']:.4f} NDCG@10 "
              f"{valid['NDCG@10']:.5f} ({record['seconds']:.0f} s)", flush=True)
        if valid["NDCG@10"] > best[0]:
            best, best_state = (valid["NDCG@10"], epoch), {k: v.clone() for k, v in student.state_dict().items()}
    if best_state is None:
        print(f"no epoch beat the start's validation NDCG@10 ({start_valid:.5f}): nothing is saved")
        writer.end({"best_epoch": 0, "epochs_run": args.epochs, "valid": start["metrics"]["valid"],
                    "minutes": (time.perf_counter() - began) / 60})
        return
    student.load_state_dict(best_state)
    student.eval()
    test = evaluate_split(student, split, "test").metrics
    minutes = (time.perf_counter() - began) / 60
    best_valid = next(row for row in history if row["epoch"] == best[1])
    valid = {"HR@10": best_valid["valid_HR@10"], "NDCG@10": best_valid["valid_NDCG@10"], "MRR": best_valid["valid_MRR"]}
    save_checkpoint(args.out, student, data, split=split, train_config=asdict(recipe), command=command,
                    notes=[f"benchmarks/study_distillation.py; history {writer.path.name}"],
                    metrics={"valid": valid, "test": test}, train_minutes=minutes,
                    **run_fields(best[1], history, {}))
    writer.end({"best_epoch": best[1], "epochs_run": args.epochs, "valid": valid, "test": test, "minutes": minutes})
    print(f"kept epoch {best[1]}: valid NDCG@10 {best[0]:.5f} (start {start_valid:.5f}); test HR@10 "
          f"{test['HR@10']:.4f} NDCG@10 {test['NDCG@10']:.4f} MRR {test['MRR']:.4f}; {minutes:.1f} minutes")


if __name__ == "__main__":
    main()
