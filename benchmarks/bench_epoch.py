"""Benchmark: one SASRec training epoch over every window of ML-1M, whole and part by part, for several losses.

Prints figures; it is not a test. Run with nothing else busy on the machine (freed memory is kept in the
process, as ``python -m recnb train`` keeps it; ``--default-allocator`` measures glibc's default):

    RECNB_DATA_DIR=path/to/data python benchmarks/bench_epoch.py --losses ce sampled:1000 sampled:256 \\
        [sampled:256:history] [--heads 1 --ffn-multiplier 1] [--steps 40] [--amp]

``sampled:N:history`` draws the N negatives for each history (``--negatives-per history``): its product runs
over every position of the padded batch, padding included.

For each loss, two measurements on the same length-bucketed batches:

1. **A real epoch**: ``train_sasrec`` for one epoch (``train_seconds``: every step of the epoch, the
   optimizer included, validation not) and the validation pass after it.
2. **Its parts**, over ``--steps`` batches after two warm-up ones, scaled to the epoch by real positions:
   the Transformer body forward and backward (embeddings, attention, feed-forward), the output layer and
   its softmax forward and backward, and the optimizer step. Beside each, its floor: the part's
   matrix-product FLOPs over the multiply rate measured here.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from recnb import leave_one_out, load_dataset
from recnb.models.losses import LossSettings, history_negatives_loss
from recnb.models.sasrec import config_from_preset
from recnb.models.training import (
    build_model,
    epoch_batches,
    optimizer_step,
    output_loss,
    train_recipe,
    train_sasrec,
    training_tensors,
    trim_padding,
)
from recnb.teaching.benchmark import choose_allocator, matmul_gflops


def part_flop(config, lengths: np.ndarray, columns: int) -> dict[str, float]:
    """Matrix-product FLOPs of one epoch's parts, forward + backward (3 x forward), for real-length rows.

    ``columns``: the logits per position (N + 1 for full cross-entropy, the draws + 1 for the sampled loss).
    Attention is counted over every (query, key) pair of a row, as the fused kernel computes it with a mask.
    """
    D, H = config.d_model, config.ffn_multiplier * config.d_model
    positions, pairs = float(lengths.sum()), float((lengths.astype(np.float64) ** 2).sum())
    body = config.n_layers * (positions * 2 * (4 * D * D + 2 * D * H) + pairs * 2 * 2 * D)
    return {"body": 3 * body / 1e9, "output layer": 3 * positions * 2 * D * columns / 1e9}


def time_parts(data, split, config, loss: str, negatives: int, steps: int, batch_size: int = 128,
               amp: bool = False, per_history: bool = False):
    """Seconds per real position of the body, the output layer and the optimizer, on ``steps`` batches (forward
    passes under bf16 autocast with ``amp``, as ``train --amp`` on the CPU)."""
    torch.manual_seed(0)
    model = build_model(data, config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    inputs, targets = training_tensors(split.train, config.max_len, all_windows=True)
    batches = epoch_batches((inputs != 0).sum(1).numpy(), batch_size, np.random.default_rng(0))
    spent = {"body": 0.0, "output layer": 0.0, "optimizer": 0.0}
    positions = 0
    for step in range(steps + 2):
        x, y = trim_padding(inputs[batches[step]], targets[batches[step]], torch.device("cpu"))
        real = y != 0
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            hidden = model(x)                                        # body forward
        h = (hidden if per_history else hidden[real]).detach().requires_grad_()
        middle = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            value = (history_negatives_loss(model, h, y, LossSettings(loss, negatives, negatives_per="history"))
                     if per_history else output_loss(model, h, y[real], loss, negatives))
        value.backward()                                             # output layer + softmax, both ways
        after_output = time.perf_counter()
        (hidden if per_history else hidden[real]).backward(h.grad)   # body backward
        after_body = time.perf_counter()
        optimizer_step(model, optimizer, scaler, 1.0)
        end = time.perf_counter()
        if step >= 2:
            spent["body"] += (middle - start) + (after_body - after_output)
            spent["output layer"] += after_output - middle
            spent["optimizer"] += end - after_body
            positions += int(real.sum())
    return {part: seconds / positions for part, seconds in spent.items()}, int((targets != 0).sum()), \
        (inputs != 0).sum(1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=["ce", "sampled:1000", "sampled:256"],
                        help="ce, sampled:N for the sampled softmax with N draws, sampled:N:history for N draws "
                             "a history")
    parser.add_argument("--preset", default="compact")
    parser.add_argument("--heads", type=int, default=None)
    parser.add_argument("--ffn-multiplier", type=int, default=None)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as it is, to measure what keeping freed memory saves")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast, as `python -m recnb train --amp` on a CPU")
    args = parser.parse_args()
    print(choose_allocator(args.default_allocator))
    data = load_dataset("ml-1m", progress=False)
    split = leave_one_out(data.sequences)
    overrides = {k: v for k, v in (("n_heads", args.heads), ("ffn_multiplier", args.ffn_multiplier)) if v}
    config = config_from_preset(args.preset, data.n_items, len(data.genre_names), len(data.year_bucket_labels),
                                **overrides)
    rate = matmul_gflops()
    precision = "; bf16 autocast" if args.amp else ""
    print(f"preset {args.preset} {overrides or ''}{precision}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; matrix products at {rate:.0f} GFLOP/s")
    for spec in args.losses:
        loss, draws, per = (spec.split(":") + ["", ""])[:3]
        negatives, negatives_per = int(draws or 1000), per or "batch"
        per_position, epoch_positions, lengths = time_parts(data, split, config, loss, negatives, args.steps,
                                                            amp=args.amp, per_history=negatives_per == "history")
        flop = part_flop(config, lengths, data.n_items + 1 if loss == "ce" else negatives + 1)
        recipe = train_recipe("compact", epochs=1, loss=loss, negatives=negatives, amp=args.amp, progress=False,
                              verbose=False, negatives_per=negatives_per)
        row = train_sasrec(data, split, config, recipe).history.iloc[0]
        print(f"\n{spec}: a real epoch trains in {row['train_seconds']:.1f} s ({epoch_positions:,} positions), "
              f"then validates in {row['seconds'] - row['train_seconds']:.1f} s")
        for part, seconds in per_position.items():
            floor = f"; floor {flop[part] / rate:5.1f} s ({flop[part]:,.0f} GFLOP)" if part in flop else ""
            print(f"  {part:<13} {seconds * epoch_positions:5.1f} s per epoch{floor}")


if __name__ == "__main__":
    main()
