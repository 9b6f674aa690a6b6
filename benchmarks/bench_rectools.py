"""Benchmark: recnb's SASRec side by side with RecTools' ``SASRecModel``, same data, split, size and recipe.

Prints figures; it is not a test. RecTools is not one of recnb's dependencies: this script installs
nothing. Give it its own environment that still sees recnb and the CPU build of torch, then run it
there with nothing else busy on the machine:

    python -m venv --system-site-packages .venv-rectools
    .venv-rectools/bin/pip install "rectools[torch]==0.19.0" "torch==2.13.0"
    RECNB_DATA_DIR=path/to/data .venv-rectools/bin/python benchmarks/bench_rectools.py --epochs 3

Both libraries train the same model on the same leave-one-out training sequences of ML-1M: item ids
only (no genre or year), width 64, 2 blocks, 1 head, max length 200 (the newest 200 items of each
user), dropout 0.1, full softmax (cross-entropy over every item), Adam at a constant lr 1e-3, batch
128, the same number of epochs. recnb keeps its plain recipe's length buckets (faster; RecTools draws random
batches, which notebook 07 found to train better) and validates after each epoch (not counted in its seconds).
Each then ranks every item for the 6,040 test users (history = training items + the validation item,
seen items filtered) and the same code scores both top-10 lists. Printed: seconds per epoch (training
only) and test HR@10 / NDCG@10. Both train in this one process, so both keep freed memory for reuse, as
``python -m recnb`` does (``--default-allocator``: neither does).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from recnb import leave_one_out, load_dataset
from recnb.data.split import evaluation_inputs
from recnb.evaluation.evaluator import top_k
from recnb.models.sasrec import config_from_preset
from recnb.models.training import TrainConfig, train_sasrec
from recnb.teaching.benchmark import choose_allocator

try:
    import pytorch_lightning as pl
    from rectools import Columns
    from rectools.dataset import Dataset
    from rectools.models import SASRecModel
    from rectools.models.nn.item_net import IdEmbeddingsItemNet
except ImportError as error:   # pragma: no cover - depends on the environment
    raise SystemExit(f"RecTools is not importable here ({error}). It stays out of recnb's dependencies; install it "
                     "in an environment of its own, as this script's docstring shows, and run the script there.")


def hits(top: np.ndarray, targets: np.ndarray, k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k of top-k lists (U, k) against one target per user: the one scoring code for both."""
    found = top[:, :k] == targets[:, None]
    rank = found.argmax(1)
    hit = found.any(1)
    return {f"HR@{k}": float(hit.mean()), f"NDCG@{k}": float((hit / np.log2(rank + 2)).mean())}


def interactions(histories: list[np.ndarray]) -> pd.DataFrame:
    """RecTools' interaction table for item-id histories: users 0..U-1, a made-up clock that keeps the order."""
    users = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    order = np.concatenate([np.arange(len(h)) for h in histories])
    return pd.DataFrame({Columns.User: users, Columns.Item: np.concatenate(histories), Columns.Weight: 1.0,
                         Columns.Datetime: pd.Timestamp("2000-01-01") + pd.to_timedelta(order, unit="s")})


class EpochClock(pl.Callback):
    """Seconds of each training epoch, as Lightning runs it. Kept in a class-level list: RecTools may copy the
    trainer and its callbacks, and the copy's clock must still write where this script reads."""

    seconds: list[float] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        EpochClock.seconds.append(time.perf_counter() - self.started)


def run_rectools(split, epochs: int, seed: int) -> tuple[list[float], dict[str, float]]:
    clock = EpochClock()
    EpochClock.seconds.clear()

    def trainer() -> pl.Trainer:
        return pl.Trainer(max_epochs=epochs, min_epochs=epochs, deterministic=True, accelerator="cpu", devices=1,
                          enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                          logger=False, callbacks=[clock])

    model = SASRecModel(n_blocks=2, n_heads=1, n_factors=64, session_max_len=200, dropout_rate=0.1, lr=1e-3,
                        batch_size=128, epochs=epochs, loss="softmax", item_net_block_types=(IdEmbeddingsItemNet,),
                        deterministic=True, dataloader_num_workers=0, get_trainer_func=trainer, verbose=0)
    torch.manual_seed(seed)
    model.fit(Dataset.construct(interactions(split.train)))
    histories, targets = evaluation_inputs(split, "test")
    reco = model.recommend(users=np.arange(len(histories)), dataset=Dataset.construct(interactions(histories)),
                           k=10, filter_viewed=True)
    assert reco[Columns.User].nunique() == len(histories) and len(reco) == 10 * len(histories), \
        "RecTools did not return 10 films for every user"
    # 10 films for every user (checked above): sorted by user, then rank, the lists are the rows of a (U, 10) array
    top = reco.sort_values([Columns.User, Columns.Rank])[Columns.Item].to_numpy().reshape(len(histories), 10)
    return list(EpochClock.seconds), hits(top, targets)


def run_recnb(data, split, epochs: int, seed: int) -> tuple[list[float], dict[str, float]]:
    config = config_from_preset("compact", data.n_items, n_heads=1, ffn_multiplier=1, use_genre=False,
                                use_year=False)
    recipe = TrainConfig(epochs=epochs, patience=epochs, lr=1e-3, schedule="constant", batch_size=128,
                         all_windows=False, bucket_by_length=True, seed=seed, progress=False, verbose=False)
    result = train_sasrec(data, split, config, recipe)
    # recnb keeps the epoch best on validation; RecTools keeps the last. The same epoch while validation
    # still rises every epoch, which is printed.
    print(f"recnb validation NDCG@10 by epoch: {', '.join(f'{v:.4f}' for v in result.history['valid_NDCG@10'])}; "
          f"kept epoch {result.best_epoch}")
    histories, targets = evaluation_inputs(split, "test")
    return list(result.history["train_seconds"]), hits(top_k(result.model, histories, 10), targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--users", type=int, default=None, help="only the first N users (a quick check of the script)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as it is (both libraries train in this one process)")
    args = parser.parse_args()
    print(choose_allocator(args.default_allocator))
    data = load_dataset("ml-1m", progress=False)
    split = leave_one_out(data.sequences[:args.users] if args.users else data.sequences)
    print(f"{data}; torch {torch.__version__}, {torch.get_num_threads()} threads; {args.epochs} epochs each")
    for name, run in (("recnb", lambda: run_recnb(data, split, args.epochs, args.seed)),
                      ("RecTools 0.19", lambda: run_rectools(split, args.epochs, args.seed))):
        seconds, metrics = run()
        print(f"{name:<14} seconds per epoch {np.mean(seconds):6.1f} (each: {', '.join(f'{s:.1f}' for s in seconds)})"
              f" | test HR@10 {metrics['HR@10']:.4f}, NDCG@10 {metrics['NDCG@10']:.4f}", flush=True)


if __name__ == "__main__":
    main()
