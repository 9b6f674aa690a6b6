"""recnb: sequential recommendation on MovieLens, taught in notebooks.

The package holds the code; the notebooks in ``notebooks/`` teach with it.
Modules follow the series: ``releases``/``download``/``readers`` (getting the
data), ``preprocess``/``data``/``split`` (turning it into sequences),
``metrics``/``evaluate`` (one evaluator for every model), ``baselines``,
``synthetic`` (offline demo data) and ``cli``.
"""

__version__ = "0.1.0"

from .config import get_profile, resolve_data_dir, seed_everything  # noqa: E402
from .data import SequenceData, load_dataset, read_dataset  # noqa: E402
from .evaluate import EvaluationResult, evaluate, evaluate_split  # noqa: E402
from .split import LeaveOneOutSplit, evaluation_inputs, leave_one_out, pad_histories  # noqa: E402

__all__ = [
    "EvaluationResult", "LeaveOneOutSplit", "SequenceData", "evaluate", "evaluate_split",
    "evaluation_inputs", "get_profile", "leave_one_out", "load_dataset", "pad_histories",
    "read_dataset", "resolve_data_dir", "seed_everything",
]
