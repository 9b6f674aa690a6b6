"""Study: what averaging the weights from epoch E on (``--average-from E``) would have kept, read from one run.

Prints figures; it is not a test. Two steps, with nothing else busy if the minutes matter:

    RECNB_DATA_DIR=path/to/data python benchmarks/study_weight_averaging.py train --seed 0 --folder runs/seed0
    RECNB_DATA_DIR=path/to/data python benchmarks/study_weight_averaging.py read --folder runs/seed0 --save DIR

``train`` trains ML-1M with the ``compact`` recipe as ``python -m recnb train --recipe compact --seed N`` does
(the same data, model, seed and loop: the same run, to float rounding; the committed seeds, trained again this
way with one thread, gave epoch losses within 1e-7 and the same best epochs), and also saves the weights at the end
of every epoch (``e01.pt``, ``e02.pt``, ...; about 1.4 MB each) beside the run's checkpoint ``run.pt``.

``read`` replays what ``--average-from E`` does, for several E at once, from those weights: it averages them with
the same ``AveragedModel`` the training loop uses, validates the average at every epoch from E on, keeps the
epoch with the best validation NDCG@10 (the weights themselves before E), and measures that model's test
figures once. Since averaging only reads the weights, one run answers for every E, and each row is what the
option would have left from this seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
from torch.optim.swa_utils import AveragedModel

import recnb.models.training as training
from recnb import evaluate_split, leave_one_out, load_dataset
from recnb.config import seed_everything
from recnb.data.sequences import build_sequences, read_dataset
from recnb.models.checkpoints import load_checkpoint
from recnb.models.sasrec import config_from_preset


def train(folder: Path, seed: int) -> None:
    """The compact recipe's run of ``seed``, with every epoch's weights saved in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)                 # as `python -m recnb train` does, before reading the data
    data = build_sequences(read_dataset("ml-1m", None), 5, 5, "ml-1m")
    split = leave_one_out(data.sequences)
    model_config = config_from_preset("compact", data.n_items, len(data.genre_names), len(data.year_bucket_labels))
    built, build = {}, training.build_model

    def keep_model(data, config):   # a handle on the model being trained, to save its weights after each epoch
        built["model"] = build(data, config)
        return built["model"]

    def save_weights(record: dict) -> None:
        torch.save(built["model"].state_dict(), folder / f"e{record['epoch']:02d}.pt")

    training.build_model = keep_model
    try:
        result = training.train_sasrec(data, split, model_config, training.train_recipe("compact", seed=seed,
                                                                                        progress=False),
                                       checkpoint=folder / "run.pt", on_epoch=save_weights)
    finally:
        training.build_model = build
    print(f"best epoch {result.best_epoch}: valid NDCG@10 {result.best_valid['NDCG@10']:.5f}; test HR@10 "
          f"{result.test['HR@10']:.4f} NDCG@10 {result.test['NDCG@10']:.4f}")


def read(folder: Path, starts: list[int], save: Path | None) -> pd.DataFrame:
    """One row per start epoch E: the epoch ``--average-from E`` would keep, its validation and test figures."""
    data = load_dataset("ml-1m", progress=False)
    split = leave_one_out(data.sequences)
    model, payload = load_checkpoint(folder / "run.pt", data, split=split)
    weights = {int(path.stem[1:]): path for path in sorted(folder.glob("e*.pt"))}
    raw = {row["epoch"]: row["valid_NDCG@10"] for row in payload["history"]}
    epochs = sorted(set(weights) & set(raw))       # a run still training may have saved one epoch more
    if epochs != list(range(1, len(epochs) + 1)):
        raise SystemExit(f"{folder} lacks some epochs' weights: it has {epochs}. Train again with `train`.")
    # a finished run's file holds its test figures; one still training (or stopped) is measured here
    test = payload["metrics"].get("test") or evaluate_split(model, split, "test").metrics
    rows = [{"averaged from": "none (the weights)", "best epoch": payload["best_epoch"],
             "valid NDCG@10": payload["metrics"]["valid"]["NDCG@10"], "test HR@10": test["HR@10"],
             "test NDCG@10": test["NDCG@10"], "test MRR": test["MRR"]}]
    curves = {}
    for start in starts:
        averaged, best, best_state = AveragedModel(model), (-1.0, 0), None
        for epoch in epochs:
            if epoch < start:    # before E the weights themselves are validated, as in training
                if raw[epoch] > best[0]:
                    best, best_state = (raw[epoch], epoch), torch.load(weights[epoch])
                continue
            model.load_state_dict(torch.load(weights[epoch]))
            averaged.update_parameters(model)
            ndcg = evaluate_split(averaged.module, split, "valid").metrics["NDCG@10"]
            curves[(start, epoch)] = (ndcg, raw[epoch])
            if ndcg > best[0]:
                best, best_state = (ndcg, epoch), {k: v.clone() for k, v in averaged.module.state_dict().items()}
            print(f"from {start}: epoch {epoch} valid NDCG@10 {ndcg:.5f} (the weights' own {raw[epoch]:.5f})",
                  flush=True)
        model.load_state_dict(best_state)
        test = evaluate_split(model, split, "test").metrics
        rows.append({"averaged from": start, "best epoch": best[1], "valid NDCG@10": best[0],
                     "test HR@10": test["HR@10"], "test NDCG@10": test["NDCG@10"], "test MRR": test["MRR"]})
    table = pd.DataFrame(rows).set_index("averaged from")
    print(table.round(5).to_string())
    if save is not None:   # the kept models, and every average's validation beside the weights' own
        save.mkdir(parents=True, exist_ok=True)
        seed = payload["train_config"]["seed"]
        table.to_csv(save / f"seed{seed}_kept.csv")
        curve = pd.DataFrame(curves.values(), index=pd.MultiIndex.from_tuples(curves, names=["averaged from", "epoch"]),
                             columns=["averaged valid NDCG@10", "own valid NDCG@10"])
        curve.to_csv(save / f"seed{seed}_curves.csv")
        print(f"written: {save / f'seed{seed}_kept.csv'}, {save / f'seed{seed}_curves.csv'}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    trains = steps.add_parser("train", help="train the compact recipe, saving every epoch's weights")
    trains.add_argument("--seed", type=int, default=0)
    trains.add_argument("--folder", type=Path, required=True)
    reads = steps.add_parser("read", help="what --average-from E would have kept, for each E")
    reads.add_argument("--folder", type=Path, required=True)
    reads.add_argument("--from", dest="starts", type=int, nargs="+", default=[25, 30, 35, 40, 45])
    reads.add_argument("--save", type=Path, default=None,
                       help="a folder for seedN_kept.csv (the table printed) and seedN_curves.csv (every average's "
                            "validation NDCG@10, epoch by epoch, beside the weights' own)")
    args = parser.parse_args()
    if args.step == "train":
        train(args.folder, args.seed)
    else:
        read(args.folder, args.starts, args.save)


if __name__ == "__main__":
    main()
