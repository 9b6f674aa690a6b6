"""Getting the data and turning it into sequences: the lowest layer of recnb.

- ``releases``: the MovieLens releases recnb knows (files, checksums, layouts);
- ``download``: fetch, verify and extract an archive into the data folder;
- ``readers``: each file layout read into one standard pair of tables;
- ``synthetic``: a small generated data set in the ML-1M layout, and logs as large as ML-20M/25M/32M;
- ``preprocess``: the k-core filter, time order, item ids and metadata lookups (all vectorised);
- ``sequences``: :class:`SequenceData`, one list of item ids per user, and ``load_dataset``;
- ``cache``: the filtered sequences of a large release, stored so a second load takes seconds;
- ``split``: leave-one-out, the one rule for what a model sees (``evaluation_inputs``),
  padding, and the split fingerprint a checkpoint records.

Import rule: ``recnb.data`` uses nothing of recnb but ``recnb.errors`` and ``recnb.config``.
"""

from recnb.data.sequences import (
                                  SYNTHETIC,
                                  SequenceData,
                                  build_sequences,
                                  dataset_folder,
                                  item_counts,
                                  load_dataset,
                                  read_dataset,
)
from recnb.data.split import LeaveOneOutSplit, evaluation_inputs, leave_one_out, pad_histories

__all__ = ["SYNTHETIC", "LeaveOneOutSplit", "SequenceData", "build_sequences", "dataset_folder",
           "evaluation_inputs", "item_counts", "leave_one_out", "load_dataset", "pad_histories", "read_dataset"]
