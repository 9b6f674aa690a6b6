"""recnb: sequential recommendation on MovieLens, taught in notebooks.

The package holds the code; the notebooks in ``notebooks/`` teach with it.
Modules follow the series:

- getting the data: ``releases``, ``download``, ``readers``, ``synthetic``;
- turning it into sequences: ``preprocess``, ``data``, ``split``;
- one evaluator for every model: ``metrics``, ``evaluate``;
- models: ``baselines``, ``model`` (SASRec), ``train``, ``recommend``;
- the notebooks' figures and measurements: ``plots``, ``baseline_plots``, ``model_plots``,
  ``training_plots``, ``analysis``, ``benchmark``, ``environment``;
- ``cli``: ``python -m recnb``;
- ``errors``: the one base class (``RecnbError``) of every error recnb raises on purpose.
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
