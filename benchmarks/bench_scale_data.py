"""Benchmark: the data layer at the scale of ML-25M, on generated logs of 1M, 5M and 25M interactions.

Generates (once) interaction logs in the exact ML-25M CSV layout with recnb.data.synthetic.write_synthetic_release,
then, for each size in a fresh Python process, measures reading (read_release), the k-core filter, time order +
sequences, the leave-one-out split, their total, the process's peak memory (ru_maxrss), and then, in another fresh
process, a second load through the cache (load_dataset(..., cache=True)). It prints a table and the cost per million
interactions at each size, so that growth faster than linear shows. It prints figures; it asserts nothing.

    python benchmarks/bench_scale_data.py --out scale-logs      # keep the logs (about 1 GB) for the next run
    python benchmarks/bench_scale_data.py --sizes 1000000 5000000     # skip the 25M case

Aims on a 2-core machine: the 25M case within 90 s and 8 GB. Timings depend on what else runs on the machine
(other processes sharing the cores, a cold disk cache); compare runs made under the same conditions.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RELEASE = "ml-25m"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def measure_cold(data_dir: Path, release: str) -> dict:
    """In this (fresh) process: read, filter, order, split, then write the cache for the cached run."""
    from recnb.data.cache import cache_file, cache_key, write_cache
    from recnb.data.preprocess import kcore_rows, ordered_sequences
    from recnb.data.readers import read_release
    from recnb.data.releases import get_release
    from recnb.data.sequences import sequence_data
    from recnb.data.split import leave_one_out

    folder = data_dir / release
    baseline = peak_mib()
    times = {}
    start = time.perf_counter()
    raw = read_release(release, folder)
    times["read"] = time.perf_counter() - start
    step = time.perf_counter()
    core = kcore_rows(raw.interactions["user"].to_numpy(), raw.interactions["item"].to_numpy(), 5, 5)
    times["filter"] = time.perf_counter() - step
    step = time.perf_counter()
    ordered = ordered_sequences(core, raw.interactions["timestamp"])
    data = sequence_data(release, ordered, raw.items, raw)
    times["order"] = time.perf_counter() - step
    step = time.perf_counter()
    split = leave_one_out(data.sequences)
    times["split"] = time.perf_counter() - step
    times["total"] = time.perf_counter() - start
    peak = peak_mib()
    step = time.perf_counter()
    path = cache_file(folder, release, 5, 5)
    path.unlink(missing_ok=True)
    write_cache(path, cache_key(get_release(release), folder, 5, 5), ordered, data.items)  # as load_dataset does
    times["cache_write"] = time.perf_counter() - step
    return {**times, "peak_mib": peak, "baseline_mib": baseline, "rows": len(raw.interactions),
            "users": data.n_users, "items": data.n_items, "kept": data.n_interactions, "split_users": split.n_users}


def measure_cached(data_dir: Path, release: str) -> dict:
    """In this (fresh) process: load_dataset through the cache the cold run wrote."""
    from recnb.data import load_dataset

    baseline = peak_mib()
    start = time.perf_counter()
    data = load_dataset(release, data_dir, download=False, progress=False, cache=True)
    seconds = time.perf_counter() - start
    return {"cached": seconds, "cached_peak_mib": peak_mib(), "baseline_mib": baseline, "hit": data.raw is None}


def generate(data_dir: Path, release: str, size: int, seed: int) -> dict:
    """In this (fresh) process: write the log, unless an earlier run left it there."""
    from recnb.data.synthetic import write_synthetic_release

    start = time.perf_counter()
    write_synthetic_release(data_dir / release, release, size, seed=seed, progress=False)
    return {"seconds": time.perf_counter() - start, "peak_mib": peak_mib()}


def child(mode: str, data_dir: Path, release: str, *extra: str) -> dict:
    """Run one step in a fresh interpreter, so each peak RSS is that step's alone.

    This process imports nothing of recnb and stays small: Linux carries the parent's peak RSS at the
    fork into the child's ru_maxrss, which would otherwise inflate every figure.
    """
    command = [sys.executable, __file__, "--child", mode, "--out", str(data_dir), "--release", release, *extra]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"the {mode} run on {data_dir} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for the generated logs, reused when already there "
                        "(default: a temporary folder, removed at the end)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 25_000_000],
                        help="interactions per generated log (default: 1M 5M 25M)")
    parser.add_argument("--release", default=RELEASE, help="the layout and figures to imitate (default ml-25m)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated logs (default 0)")
    parser.add_argument("--child", choices=["generate", "cold", "cached"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "generate":
        print(json.dumps(generate(args.out, args.release, args.sizes[0], args.seed)))
        return
    if args.child:
        measure = measure_cold if args.child == "cold" else measure_cached
        print(json.dumps(measure(args.out, args.release)))
        return

    out = args.out or Path(tempfile.mkdtemp(prefix="recnb-scale-"))
    rows = []
    try:
        for size in args.sizes:
            data_dir = out / f"{args.release}-{size}"
            if not (data_dir / args.release / "ratings.csv").is_file():
                made = child("generate", data_dir, args.release, "--sizes", str(size), "--seed", str(args.seed))
                print(f"generated {size:,} interactions in {made['seconds']:.1f} s (peak {made['peak_mib']:,.0f} MiB): "
                      f"{data_dir}", flush=True)
            cold = child("cold", data_dir, args.release)
            cached = child("cached", data_dir, args.release)
            rows.append((size, cold, cached))
            print(f"measured {size:,}", flush=True)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)

    print(f"\n{args.release}-shaped logs, 5-core filter; seconds, and peak RSS of each fresh process in MiB")
    print(f"{'interactions':>13} {'users':>8} {'items':>7} {'read':>6} {'filter':>6} {'order':>6} {'split':>6} "
          f"{'total':>6} {'peak MiB':>9} | {'cached':>6} {'peak MiB':>9}")
    for size, cold, cached in rows:
        print(f"{size:>13,} {cold['users']:>8,} {cold['items']:>7,} {cold['read']:>6.1f} {cold['filter']:>6.2f} "
              f"{cold['order']:>6.2f} {cold['split']:>6.2f} {cold['total']:>6.1f} {cold['peak_mib']:>9,.0f} | "
              f"{cached['cached']:>6.2f} {cached['cached_peak_mib']:>9,.0f}" + ("" if cached["hit"] else "  (miss!)"))
    print("\nper million interactions (memory: peak above the process's own after its imports, "
          f"{rows[0][1]['baseline_mib']:.0f} MiB):")
    print(f"{'interactions':>13} {'s/M total':>10} {'s/M read':>9} {'MiB/M peak':>11} {'s/M cached':>11}")
    for size, cold, cached in rows:
        millions = size / 1e6
        print(f"{size:>13,} {cold['total'] / millions:>10.2f} {cold['read'] / millions:>9.2f} "
              f"{(cold['peak_mib'] - cold['baseline_mib']) / millions:>11.1f} {cached['cached'] / millions:>11.3f}")
    size, cold, cached = rows[-1]
    print(f"\nlargest ({size:,}): total {cold['total']:.1f} s (aim < 90 s), peak {cold['peak_mib'] / 1024:.2f} GiB "
          f"(aim < 8 GiB), cached load {cached['cached']:.1f} s")


if __name__ == "__main__":
    main()
