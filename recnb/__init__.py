"""recnb: sequential recommendation on MovieLens, taught in notebooks.

The package holds the code; the notebooks in ``notebooks/`` teach with it. It is
organised by concept, in layers, each using only the ones below it:

1. ``errors`` (the one base class, ``RecnbError``, of every error raised on purpose),
   ``config`` (data folder, run profile, seeds) and ``files`` (atomic writing with ordinary permissions):
   used by everything;
2. ``recnb.data``: releases, download, readers, the k-core filter, sequences, the split;
3. ``recnb.evaluation``: metrics, the one evaluator for every model, analyses, the comparison table;
4. ``recnb.models``: the baselines, SASRec, training and checkpoints, recommending;
5. ``recnb.viz``: every figure;
6. ``recnb.teaching``: widgets, the environment report, benchmarks, training logs, the assignments;
7. ``recnb.cli``: ``python -m recnb``.

The rule (checked by ``tests/test_layers.py``): a module imports from its own layer or the layers
above it in this list, never from one below. The names learners use most are importable from
``recnb`` itself.
"""

__version__ = "0.1.0"

from recnb.config import get_profile, resolve_data_dir, seed_everything  # noqa: E402
from recnb.data.sequences import SequenceData, load_dataset, read_dataset  # noqa: E402
from recnb.data.split import LeaveOneOutSplit, evaluation_inputs, leave_one_out, pad_histories  # noqa: E402
from recnb.evaluation.evaluator import EvaluationResult, evaluate, evaluate_split  # noqa: E402
from recnb.models.baselines import AR2, FavouriteGenre, Hybrid, MarkovChain, Popularity  # noqa: E402
from recnb.models.checkpoints import load_checkpoint  # noqa: E402
from recnb.models.sasrec import SASRec, SASRecConfig, config_from_preset  # noqa: E402
from recnb.models.training import TrainConfig, train_sasrec  # noqa: E402

__all__ = [
    "AR2", "EvaluationResult", "FavouriteGenre", "Hybrid", "LeaveOneOutSplit", "MarkovChain", "Popularity",
    "SASRec", "SASRecConfig", "SequenceData", "TrainConfig", "config_from_preset", "evaluate", "evaluate_split",
    "evaluation_inputs", "get_profile", "leave_one_out", "load_checkpoint", "load_dataset", "pad_histories",
    "read_dataset", "resolve_data_dir", "seed_everything", "train_sasrec",
]
