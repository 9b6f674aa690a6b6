"""Benchmark: seconds per training epoch of SASRec on ML-1M, fp32 against bf16 autocast, and peak memory.

Prints figures; it is not a test. Each variant runs in its own process so that
its peak memory is its own. Run with nothing else busy on the machine:

    RECNB_DATA_DIR=../shared/data python benchmarks/bench_sasrec.py --presets compact seed --steps 12

An epoch of ML-1M is 48 steps of 128 users; the script times ``--steps`` steps
(after 2 warm-up steps) and scales to an epoch. Set
``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296``
to keep freed memory in the process (see notebook 07); the script reports whether it is set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def measure(preset: str, amp: bool, steps: int, batch_size: int) -> dict:
    """Time ``steps`` training steps in this process; returns seconds per step and per epoch, peak MiB."""
    import numpy as np
    import torch

    from recnb.data import load_dataset
    from recnb.model import config_from_preset
    from recnb.split import leave_one_out
    from recnb.train import (accumulate_gradients, build_model, make_scaler, optimizer_step, peak_memory_mib,
                             training_tensors)

    data = load_dataset("ml-1m", download=False, progress=False)
    split = leave_one_out(data.sequences)
    config = config_from_preset(preset, data.n_items, len(data.genre_names), len(data.year_bucket_labels))
    torch.manual_seed(0)
    model = build_model(data, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    dtype = torch.bfloat16
    scaler = make_scaler(torch.device("cpu"), dtype, amp)
    inputs, targets = training_tensors(split.train, config.max_len)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(inputs)))
    times = []
    for step in range(steps + 2):
        rows = order[(step * batch_size) % len(order):][:batch_size]
        start = time.perf_counter()
        accumulate_gradients(model, [(inputs[rows], targets[rows])], scaler, dtype if amp else None)
        optimizer_step(model, optimizer, scaler, 1.0)
        times.append(time.perf_counter() - start)
    per_step = float(np.median(times[2:]))
    steps_per_epoch = -(-len(inputs) // batch_size)
    return {"preset": preset, "precision": "bf16 autocast" if amp else "fp32", "seconds_per_step": per_step,
            "seconds_per_epoch": per_step * steps_per_epoch, "peak_memory_mib": peak_memory_mib(torch.device("cpu")),
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["compact", "seed"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--one", nargs=2, metavar=("PRESET", "AMP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child process measuring one variant
        print(json.dumps(measure(args.one[0], args.one[1] == "amp", args.steps, args.batch_size)))
        return
    print(f"torch threads: {__import__('torch').get_num_threads()}; GLIBC_TUNABLES "
          f"{'set' if os.environ.get('GLIBC_TUNABLES') else 'not set'}")
    print(f"{'preset':8} {'precision':14} {'s/step':>8} {'s/epoch':>9} {'peak MiB':>9} {'params':>10}")
    for preset in args.presets:
        for amp in (False, True):
            out = subprocess.run([sys.executable, __file__, "--one", preset, "amp" if amp else "fp32",
                                  "--steps", str(args.steps), "--batch-size", str(args.batch_size)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['preset']:8} {r['precision']:14} {r['seconds_per_step']:8.3f} {r['seconds_per_epoch']:9.1f} "
                  f"{r['peak_memory_mib']:9.0f} {r['parameters']:10,}", flush=True)


if __name__ == "__main__":
    main()
