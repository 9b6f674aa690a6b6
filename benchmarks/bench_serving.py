"""Benchmark: serving SASRec's top 10 on ML-1M with PyTorch eager against ONNX Runtime (recnb.serve), 1 and 2 threads.

Prints figures; it is not a test. The numbers depend on the machine and on whatever else runs on it: run
with nothing else busy for figures worth quoting.

    RECNB_DATA_DIR=path/to/data python benchmarks/bench_serving.py [--checkpoint PATH] [--onnx model.onnx]

What it measures, for the committed checkpoint (or ``--checkpoint``) on ML-1M:

- latency: one user's top-10 list (scores of every film, seen films left out, recnb's tie rule), timed
  one user at a time over ``--users`` real users' full histories (their most recent ``max_len`` films),
  after ``--warmup`` calls; p50 and p99 in milliseconds. PyTorch: ``model.score`` under
  ``torch.inference_mode()`` and :func:`recnb.evaluation.evaluator.top_columns`; ONNX Runtime:
  :meth:`recnb.serve.OnnxRecommender.top_items`;
- throughput: the lists of all 6,040 users, ``--batch-size`` users a batch, users of similar lengths together
  (the same batches for both), in users per second and total seconds;
- at each of ``--threads`` (``torch.set_num_threads``; ONNX Runtime's intra-op threads);
- the sizes of the checkpoint and of the ONNX file (exported here unless ``--onnx`` gives one).

Both engines' lists are compared: the last column counts the users whose top 10 differ (float32 rounding can
swap two films whose scores tie to about 1e-6; expect 0).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recnb import load_dataset
from recnb.data.split import pad_histories
from recnb.evaluation.evaluator import candidate_mask, top_columns
from recnb.models.checkpoints import load_checkpoint
from recnb.models.onnx_export import export_onnx
from recnb.models.zoo import default_checkpoint
from recnb.serve import OnnxRecommender


def torch_top(model, histories: list[np.ndarray], k: int) -> np.ndarray:
    """PyTorch eager: the top ``k`` of one batch of histories, as the evaluator ranks them."""
    with torch.inference_mode():
        padded = pad_histories(histories)
        scores = model.score(padded)
        return top_columns(scores, k, candidate_mask(padded, None, scores.shape[1])).numpy()


def length_batches(histories: list[np.ndarray], batch_size: int) -> list[np.ndarray]:
    """Rows of ``batch_size`` users of similar lengths: what OnnxRecommender.top_items does inside."""
    order = np.argsort([len(h) for h in histories], kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def latency_ms(recommend_one, histories, warmup: int) -> tuple[float, float]:
    for history in histories[:warmup]:
        recommend_one(history)
    times = []
    for history in histories:
        start = time.perf_counter()
        recommend_one(history)
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--checkpoint", default=None, help="default: the committed checkpoints/sasrec_compact_ml1m.pt")
    parser.add_argument("--onnx", default=None, help="an export of that checkpoint (default: export one now)")
    parser.add_argument("--users", type=int, default=300, help="users timed one at a time (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls first (default 20)")
    parser.add_argument("--batch-size", type=int, default=256, help="users a batch for the throughput (default 256)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()

    checkpoint = Path(args.checkpoint or default_checkpoint())
    data = load_dataset("ml-1m", progress=False)
    model, _ = load_checkpoint(checkpoint, data)
    max_len, k = model.config.max_len, args.k
    histories = [s[-max_len:] for s in data.sequences]   # each user's full history, as much as the model reads
    sampled = [histories[u] for u in np.random.default_rng(0).choice(len(histories), args.users, replace=False)]
    with tempfile.TemporaryDirectory() as folder:
        if args.onnx:
            onnx_path = Path(args.onnx)
        else:
            start = time.perf_counter()
            onnx_path = export_onnx(checkpoint, Path(folder) / "model.onnx", data).path
            print(f"exported {checkpoint.name} to ONNX in {time.perf_counter() - start:.1f} s")
        onnx_mib = onnx_path.stat().st_size / 2**20
        batches = length_batches(histories, args.batch_size)
        rows = []
        reference = None
        for threads in args.threads:
            torch.set_num_threads(threads)
            p50, p99 = latency_ms(lambda h: torch_top(model, [h], k), sampled, args.warmup)
            start = time.perf_counter()
            lists = np.zeros((len(histories), k), dtype=np.int64)
            for rows_of_batch in batches:
                lists[rows_of_batch] = torch_top(model, [histories[r] for r in rows_of_batch], k)
            seconds = time.perf_counter() - start
            reference = lists if reference is None else reference
            rows.append(("PyTorch eager", threads, p50, p99, len(histories) / seconds, seconds,
                         int((lists != reference).any(1).sum())))

            recommender = OnnxRecommender(onnx_path, threads=threads)
            p50, p99 = latency_ms(lambda h: recommender.top_items([h], k), sampled, args.warmup)
            start = time.perf_counter()
            lists, _ = recommender.top_items(histories, k, batch_size=args.batch_size)
            seconds = time.perf_counter() - start
            rows.append(("ONNX Runtime", threads, p50, p99, len(histories) / seconds, seconds,
                         int((lists != reference).any(1).sum())))
    table = pd.DataFrame(rows, columns=["engine", "threads", "p50 ms", "p99 ms", "users/s", "all users s",
                                        "lists differing"])
    print(f"ML-1M, {len(histories):,} users, top {k} of {data.n_items:,} films (seen left out); latency over "
          f"{args.users} users after {args.warmup} warm-up calls; throughput in batches of {args.batch_size}")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print(f"files: checkpoint {checkpoint.name} {checkpoint.stat().st_size / 2**20:.2f} MiB; "
          f"ONNX {onnx_mib:.2f} MiB (weights, graph and the films' metadata); torch {torch.__version__}, "
          f"onnxruntime {__import__('onnxruntime').__version__}")


if __name__ == "__main__":
    main()
