"""How fast notebook 09's explorers answer a change of control, on ML-1M with the committed checkpoint.

Run: ``RECNB_DATA_DIR=path/to/data python benchmarks/bench_widgets.py``
(aim: under 1 s for every control on a laptop CPU). Prints the median and the
slowest of 20 changes per control, and the process's peak memory.
"""

from __future__ import annotations

import io
import resource
import sys
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from recnb.data import load_dataset  # noqa: E402
from recnb.data.split import leave_one_out  # noqa: E402
from recnb.models.checkpoints import load_checkpoint  # noqa: E402
from recnb.models.zoo import default_checkpoint, fit_models  # noqa: E402
from recnb.teaching.widgets import AttentionExplorer, RecommendationExplorer  # noqa: E402


def peak_memory_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def timed(changes, figure_of=None) -> tuple[float, float]:
    """Median and slowest seconds per change; with ``figure_of``, including rendering the heatmap to PNG
    (what the notebook's inline backend does before the browser shows it)."""
    seconds = []
    for change in changes:
        start = time.perf_counter()
        change()
        if figure_of is not None:
            figure_of().savefig(io.BytesIO(), format="png")
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), float(np.max(seconds))


def main() -> None:
    start = time.perf_counter()
    data = load_dataset("ml-1m", download=False, progress=False)
    split = leave_one_out(data.sequences)
    sasrec, _ = load_checkpoint(default_checkpoint(), data)
    models = fit_models(data, split, sasrec=sasrec)
    recommendations = RecommendationExplorer(data, split, models)
    attention = AttentionExplorer(sasrec, data, split)
    print(f"set-up (data, 6 models, both explorers): {time.perf_counter() - start:.2f} s")
    rng = np.random.default_rng(0)
    users = [str(u) for u in rng.choice(data.user_ids[split.users], 20, replace=False)]
    rows = {
        "recommendations: new user (6 models)": [lambda u=u: setattr(recommendations.user, "value", u) for u in users],
        "recommendations: search a title": [lambda t=t: setattr(recommendations.search, "value", t)
                                            for t in ["Alien", "Godfather", "Toy Story", "Fargo", "Matrix"] * 4],
        "attention: new user (forward pass + heatmap PNG)": [lambda u=u: setattr(attention.user, "value", u)
                                                         for u in users],
        "attention: other head (heatmap PNG only)": [lambda h=h: setattr(attention.head, "value", h)
                                                 for h in [1, 0] * 10],
    }
    for name, changes in rows.items():
        median, worst = timed(changes, (lambda: attention.figure) if name.startswith("attention") else None)
        print(f"{name:48} median {median:.3f} s, slowest {worst:.3f} s")
    print(f"peak memory {peak_memory_mib():.0f} MiB")


if __name__ == "__main__":
    main()
