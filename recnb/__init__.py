"""recnb: sequential recommendation on MovieLens, taught in notebooks.

The package holds the code; the notebooks in ``notebooks/`` teach with it. It is
organised by concept, in layers, each using only the ones below it:

1. ``errors`` (the one base class, ``RecnbError``, of every error raised on purpose),
   ``config`` (data folder, run profile, seeds), ``files`` (atomic writing with ordinary permissions) and
   ``films`` (finding films by title or MovieLens id): used by everything;
2. ``recnb.data``: releases, download, readers, the k-core filter, sequences, the split;
3. ``recnb.evaluation``: metrics, the one evaluator for every model, analyses, the comparison table;
4. ``recnb.models``: the baselines, SASRec, training and checkpoints, recommending, tuning, the ONNX export;
5. ``recnb.serve``: recommending from an exported ONNX model with ONNX Runtime, without PyTorch;
6. ``recnb.viz``: every figure;
7. ``recnb.teaching``: widgets, the environment report, benchmarks, training logs, the assignments;
8. ``recnb.cli``: ``python -m recnb``.

The rule (checked by ``tests/test_layers.py``): a module imports from its own layer or the layers
above it in this list, never from one below. The names learners use most are importable from
``recnb`` itself.
"""

__version__ = "0.1.0"

# The names learners use most, importable from recnb itself, each loaded on first use (PEP 562): importing
# recnb costs nothing, so `recnb.serve` answers without PyTorch, and `from recnb import SASRec` works as ever.
_EXPORTS = {
    "recnb.config": ("get_profile", "resolve_data_dir", "seed_everything"),
    "recnb.data.sequences": ("SequenceData", "load_dataset", "read_dataset"),
    "recnb.data.split": ("LeaveOneOutSplit", "evaluation_inputs", "leave_one_out", "pad_histories"),
    "recnb.evaluation.evaluator": ("EvaluationResult", "evaluate", "evaluate_split"),
    "recnb.models.baselines": ("AR2", "FavouriteGenre", "Hybrid", "MarkovChain", "Popularity"),
    "recnb.models.checkpoints": ("load_checkpoint",),
    "recnb.models.sasrec": ("SASRec", "SASRecConfig", "config_from_preset"),
    "recnb.models.training": ("TrainConfig", "train_sasrec"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'recnb' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value   # later lookups are ordinary attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


__all__ = sorted(_HOME)
