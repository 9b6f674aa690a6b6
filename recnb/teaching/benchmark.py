"""Measuring training speed and memory, for notebook 07 and ``benchmarks/bench_sasrec.py``.

Each variant runs in a fresh process (``python -m recnb.teaching.benchmark``), so the
peak memory it reports belongs to that variant alone and one variant's freed
memory does not speed up the next. That process keeps freed memory for reuse, as
``python -m recnb`` does (:func:`recnb.models.devices.keep_freed_memory`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import torch

from recnb.models.devices import keep_freed_memory


def time_training_steps(dataset: str = "ml-1m", preset: str = "compact", amp: bool = False, steps: int = 6,
                        batch_size: int = 128, data_dir: str | None = None, all_windows: bool = False) -> dict:
    """Time ``steps`` training steps (after 2 warm-up steps) and scale them to a step and an epoch.

    Batches hold different numbers of real positions, and a step's cost grows
    with them, so both figures come from one statistic, the measured seconds
    per real position: ``seconds_per_epoch`` is it times the positions of an
    epoch, ``seconds_per_step`` it times the mean positions of the epoch's
    steps (so ``seconds_per_epoch == seconds_per_step * steps_per_epoch``).
    An epoch is the newest window of every user, or with ``all_windows`` every
    training interaction (the compact recipe). Also the process's peak memory.
    """
    from recnb.data.sequences import load_dataset
    from recnb.data.split import leave_one_out
    from recnb.models.devices import make_scaler, peak_memory_mib
    from recnb.models.sasrec import config_from_preset
    from recnb.models.training import (
        accumulate_gradients,
        build_model,
        epoch_batches,
        optimizer_step,
        training_tensors,
        trim_padding,
    )

    data = load_dataset(dataset, data_dir, download=False, progress=False)
    split = leave_one_out(data.sequences)
    config = config_from_preset(preset, data.n_items, len(data.genre_names), len(data.year_bucket_labels))
    torch.manual_seed(0)
    model = build_model(data, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    device = torch.device("cpu")
    scaler = make_scaler(device, torch.bfloat16, amp)
    inputs, targets = training_tensors(split.train, config.max_len, all_windows=all_windows)
    batches = epoch_batches((inputs != 0).sum(1).numpy(), batch_size, np.random.default_rng(0))
    # The same batches for every variant, so variants are timed on the same work.
    times, positions = [], []
    for step in range(steps + 2):
        rows = torch.from_numpy(batches[step % len(batches)])
        start = time.perf_counter()
        _, n = accumulate_gradients(model, [trim_padding(inputs[rows], targets[rows], device)], scaler,
                                    torch.bfloat16 if amp else None)
        optimizer_step(model, optimizer, scaler, 1.0)
        times.append(time.perf_counter() - start)
        positions.append(n)
    seconds, timed_positions = float(np.sum(times[2:])), int(np.sum(positions[2:]))
    per_position = seconds / timed_positions
    epoch_positions = int((targets != 0).sum())
    return {"preset": preset, "precision": "bf16 autocast" if amp else "fp32", "all_windows": all_windows,
            "steps_timed": steps, "positions_timed": timed_positions,
            "microseconds_per_position": 1e6 * per_position,
            "seconds_per_step": per_position * epoch_positions / len(batches),
            "steps_per_epoch": len(batches), "positions_per_epoch": epoch_positions,
            "seconds_per_epoch": per_position * epoch_positions,
            "peak_memory_mib": peak_memory_mib(device), "parameters": sum(p.numel() for p in model.parameters()),
            "threads": torch.get_num_threads()}


def compare_precisions(presets=("compact",), steps: int = 6, dataset: str = "ml-1m",
                       data_dir: str | None = None, all_windows: bool = False, rounds: int = 1) -> pd.DataFrame:
    """fp32 against bf16 autocast for each preset, each in its own process; one row per variant.

    With ``rounds`` > 1 the variants are timed alternately that many times and
    each keeps its fastest round (fewest seconds per real position): on a
    machine shared with other work, a busy moment slows one round, never
    speeds one up, so the fastest is the least disturbed.
    """
    rows = []
    for preset in presets:
        fastest: dict[bool, dict] = {}
        for _ in range(rounds):
            for amp in (False, True):
                command = [sys.executable, "-m", "recnb.teaching.benchmark", "--dataset", dataset, "--preset", preset,
                           "--steps", str(steps)] + (["--amp"] if amp else []) + (
                              ["--all-windows"] if all_windows else []) + (
                              ["--data-dir", str(data_dir)] if data_dir else [])
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
                record = json.loads(done.stdout.strip().splitlines()[-1])
                speed = record["microseconds_per_position"]
                if amp not in fastest or speed < fastest[amp]["microseconds_per_position"]:
                    fastest[amp] = record
        rows += [{**fastest[amp], "rounds": rounds} for amp in (False, True)]
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Time SASRec training steps in this process (prints JSON).")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--preset", default="compact")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--all-windows", action="store_true", help="an epoch of every window (the compact recipe)")
    args = parser.parse_args(argv)
    keep_freed_memory()   # measured as `python -m recnb train` runs
    print(json.dumps(time_training_steps(args.dataset, args.preset, args.amp, args.steps, data_dir=args.data_dir,
                                         all_windows=args.all_windows)))


def matmul_gflops(repeats: int = 10) -> float:
    """This CPU's multiply rate, in GFLOP/s, on a (16,384 x 64) by (64 x 3,417) product: one chunk of SASRec's
    output layer on ML-1M. The best of ``repeats`` after one warm-up, so a floor computed from it is a floor."""
    a, b = torch.randn(16384, 64), torch.randn(64, 3417)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 16384 * 64 * 3417 / best / 1e9


def choose_allocator(default: bool = False) -> str:
    """For a benchmark: keep freed memory in this process, as ``python -m recnb`` does, unless ``default``
    (glibc's own behaviour, to measure what it costs). Returns the line a printout says it with."""
    if default:
        return "allocator: the C library's default (large freed blocks go back to the system)"
    if keep_freed_memory():
        return "allocator: freed memory kept in the process (keep_freed_memory)"
    return "allocator: the C library's default (keep_freed_memory applies to Linux with glibc only)"


if __name__ == "__main__":
    main()
