"""The models: baselines, SASRec, its training and checkpoints, and recommending with any of them.

- ``baselines``: popularity, favourite genre, the Markov chain, the hybrid and AR(2);
- ``sasrec``: the SASRec Transformer (item, position, genre and year embeddings; causal and padding masks);
- ``training``: the training loop, the loss, gradient accumulation, length buckets, the schedule;
- ``devices``: which device, which autocast type, the GradScaler, peak memory;
- ``checkpoints``: checkpoint files, their split check, export and resume;
- ``zoo``: every model of the series fitted on one split (the hybrid's alpha chosen on validation);
- ``recommend``: a model's top K for a history, as a table of films.

Import rule: ``recnb.models`` uses ``recnb.data`` and ``recnb.evaluation``'s evaluator, never the figures
or the teaching tools above it.
"""

from recnb.models.baselines import AR2, BASELINES, FavouriteGenre, Hybrid, MarkovChain, Popularity, make_baseline
from recnb.models.sasrec import PRESETS, SASRec, SASRecConfig, config_from_preset

__all__ = ["AR2", "BASELINES", "FavouriteGenre", "Hybrid", "MarkovChain", "PRESETS", "Popularity", "SASRec",
           "SASRecConfig", "config_from_preset", "make_baseline"]
