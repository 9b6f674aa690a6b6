"""Benchmark: the output layer's memory and time against the catalogue, for full, chunked and sampled softmax.

For catalogues of ML-1M's 3,416, ML-20M's 27,278 and ML-32M's 87,585 films, one training step's output layer:
random hidden states (``--positions`` of them, 128 histories x 200 positions by default) and random item
embeddings of width 64, the loss forward and backward (the gradients of both). Each case runs in a fresh Python
process and reports its peak memory (ru_maxrss of that process minus its own after the imports and the inputs)
and the seconds per 1,000 positions (the fastest of ``--repeats``). The losses:

- ``full``: ``F.cross_entropy`` over the whole (positions x items + 1) logits, as ``--loss ce`` trains;
- ``chunked``: recnb's exact chunked cross-entropy (``--loss ce-chunked``), chunks from its 256 MiB budget;
- ``sampled:S``: the sampled softmax over S uniform negatives shared by the step (``--loss sampled``).

A case whose memory estimate exceeds ``--max-gb`` (6 by default) is not run: its estimate and "skipped" are
printed instead. It prints figures; it asserts nothing.

    python benchmarks/bench_catalogue.py
    python benchmarks/bench_catalogue.py --items 87585 --losses chunked sampled:3000 --positions 12800

Timings and memory depend on what else runs on the machine (other processes sharing the cores); compare runs
made under the same conditions.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CATALOGUES = {3416: "ML-1M", 27278: "ML-20M", 87585: "ML-32M"}
#: recnb.models.losses.CHUNK_MEMORY_MIB, repeated here so this process never imports torch (see ``child``).
CHUNK_MEMORY_MIB = 256
MIB = 2**20


def estimate_mib(loss: str, positions: int, items: int, width: int) -> float:
    """What one forward and backward should hold at its peak, beyond the inputs.

    Full softmax: the logits, their log-softmax (kept for backward) and two gradients of that size. Chunked:
    three (positions x chunk) fp32 tensors, and the gradients of the inputs. Sampled: about six (positions x S)
    tensors (logits, masked, concatenated, log-softmax and their gradients).
    """
    columns, inputs = items + 1, 4 * width * (positions + items + 1)
    if loss == "full":
        return (4 * 4 * positions * columns + inputs) / MIB
    if loss == "chunked":
        return CHUNK_MEMORY_MIB + 2 * inputs / MIB
    draws = int(loss.split(":")[1])
    return (6 * 4 * positions * (draws + 1) + inputs) / MIB


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def measure(loss: str, positions: int, items: int, width: int, repeats: int, seed: int) -> dict:
    """In this (fresh) process: time ``repeats`` forward and backward passes of one loss; its peak memory."""
    import torch
    import torch.nn.functional as F

    from recnb.models.losses import LossSettings, chunked_cross_entropy, draw_negatives, sampled_softmax

    torch.manual_seed(seed)
    h = torch.randn(positions, width).requires_grad_()
    weight = (0.1 * torch.randn(items + 1, width)).requires_grad_()
    targets = torch.randint(1, items + 1, (positions,))
    baseline = peak_mib()

    def loss_value():
        if loss == "full":
            return F.cross_entropy(h @ weight.T, targets, reduction="sum")
        if loss == "chunked":
            return chunked_cross_entropy(h, weight, None, targets)
        settings = LossSettings("sampled", int(loss.split(":")[1]))
        return sampled_softmax(h, weight, None, targets, *draw_negatives(settings, targets, items))

    seconds = []
    for _ in range(repeats):
        h.grad = weight.grad = None
        start = time.perf_counter()
        value = loss_value()
        value.backward()
        seconds.append(time.perf_counter() - start)
    return {"seconds_per_1000": 1000 * min(seconds) / positions, "peak_mib": peak_mib() - baseline,
            "loss_per_position": float(value) / positions, "threads": torch.get_num_threads()}


def child(loss: str, positions: int, items: int, width: int, repeats: int, seed: int) -> dict:
    """Run one case in a fresh interpreter, so each peak RSS is that case's alone.

    This process imports neither torch nor recnb and stays small: Linux carries the parent's peak RSS at the
    fork into the child's ru_maxrss, which would otherwise inflate every figure.
    """
    command = [sys.executable, __file__, "--child", loss, "--positions", str(positions), "--items", str(items),
               "--width", str(width), "--repeats", str(repeats), "--seed", str(seed)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"the {loss} case with {items:,} items failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, nargs="+", default=list(CATALOGUES),
                        help="catalogue sizes (default: 3416 27278 87585, ML-1M, ML-20M, ML-32M)")
    parser.add_argument("--losses", nargs="+", default=["full", "chunked", "sampled:1000", "sampled:3000"],
                        help="full, chunked, or sampled:S (default: full chunked sampled:1000 sampled:3000)")
    parser.add_argument("--positions", type=int, default=128 * 200,
                        help="positions in one step (default 25,600: 128 histories x 200 positions)")
    parser.add_argument("--width", type=int, default=64, help="model width d_model (default 64, compact)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per case; the fastest counts (default 2)")
    parser.add_argument("--max-gb", type=float, default=6.0,
                        help="skip a case whose memory estimate exceeds this many GB (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs and draws (default 0)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for loss in args.losses if not args.child else [args.child]:
        if loss not in ("full", "chunked") and not (loss.startswith("sampled:") and loss[8:].isdigit()):
            parser.error(f"--losses: {loss!r} is not full, chunked or sampled:S")
    if args.child:
        print(json.dumps(measure(args.child, args.positions, args.items[0], args.width, args.repeats, args.seed)))
        return

    print(f"output layer, forward + backward: {args.positions:,} positions, width {args.width}, "
          f"best of {args.repeats}; a case estimated above {args.max_gb:g} GB is skipped")
    header = f"{'items':>8} {'':<7} {'loss':<13} {'estimate':>10} {'peak':>10} {'s / 1k pos':>11} {'loss / pos':>11}"
    print(header)
    print("-" * len(header))
    for items in args.items:
        for loss in args.losses:
            estimate = estimate_mib(loss, args.positions, items, args.width)
            name = CATALOGUES.get(items, "")
            if estimate > args.max_gb * 1000**3 / MIB:
                print(f"{items:>8,} {name:<7} {loss:<13} {estimate:>7,.0f} MiB {'skipped':>10}", flush=True)
                continue
            row = child(loss, args.positions, items, args.width, args.repeats, args.seed)
            print(f"{items:>8,} {name:<7} {loss:<13} {estimate:>7,.0f} MiB {row['peak_mib']:>6,.0f} MiB "
                  f"{row['seconds_per_1000']:>11.4f} {row['loss_per_position']:>11.4f}", flush=True)
    print("(peak: the process's ru_maxrss less its own after imports and inputs; threads per case as torch chose)")


if __name__ == "__main__":
    main()
