"""A SASRec checkpoint as one ONNX file that ONNX Runtime serves without PyTorch (:mod:`recnb.serve`).

>>> export_onnx("checkpoints/sasrec_compact_ml1m.pt", "model.onnx", data)   # data: the set it was trained on

The file holds the scoring graph (left-padded item-id histories in, one score per item id out, the genre and
year lookups inside) and, in its ``metadata_props``, everything serving needs besides: the item-id mapping and
the films' titles, years and genres, the model config and the checkpoint's figures (:data:`METADATA_KEYS`).
The graph is written by ``torch.onnx.export(..., dynamo=True)``: the older TorchScript exporter records the
positions of the example's length as constants, and scores any other length wrongly.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from recnb import __version__
from recnb.config import display_path
from recnb.data.sequences import SequenceData
from recnb.data.split import pad_histories
from recnb.errors import CheckpointError, InvalidArgumentError, MissingToolError
from recnb.files import atomic_file
from recnb.models.checkpoints import load_checkpoint
from recnb.models.sasrec import SASRec

ONNX_FORMAT = "recnb-sasrec-onnx/1"
#: The largest |ONNX Runtime - PyTorch| score difference an export may have: float32 rounding is ~1e-7.
PARITY_TOLERANCE = 1e-4
#: What an exported file carries in its ``metadata_props`` (all strings; JSON where said). Item ``i`` (1..N) is
#: entry ``i - 1`` of each list of ``recnb.items``, and score column ``i``; column 0 is padding.
METADATA_KEYS = {
    "recnb.format": f"the file's format, {ONNX_FORMAT!r}",
    "recnb.version": "the recnb version that exported it",
    "recnb.config": "JSON: the SASRecConfig (n_items, max_len, d_model, ...)",
    "recnb.max_len": "the longest history the graph takes",
    "recnb.n_items": "N: the graph returns N + 1 scores a history",
    "recnb.dataset": "the data set's name (ml-1m, ...)",
    "recnb.items": 'JSON: {"movielens_id": [...], "title": [...], "year": [... or null], "genres": [[...], ...]} '
                   "for item ids 1..N",
    "recnb.checkpoint": "the checkpoint's file name",
    "recnb.metrics": "JSON: the checkpoint's metrics (valid, test), when it has them",
    "recnb.best_epoch": "the checkpoint's best epoch, when it has one",
}


class OnnxExport(NamedTuple):
    """What :func:`export_onnx` returns."""

    path: Path
    max_difference: float | None   # largest |ONNX Runtime - PyTorch| score on real histories; None unchecked


class ScoringGraph(nn.Module):
    """What the ONNX file computes: (B, L) left-padded item ids -> (B, N + 1) scores of the next item.

    The scores of :meth:`SASRec.score`, for histories already cut to ``max_len``. A tied head is written
    as ``linear(state, item embedding)`` rather than ``state @ embedding.T``, which the exporter would
    fold into a second, transposed copy of the item table: the file stays about half as large.
    """

    def __init__(self, model: SASRec):
        super().__init__()
        self.model = model

    def forward(self, histories: torch.Tensor) -> torch.Tensor:
        states = self.model(histories, last_only=True)[:, -1]                      # (B, D)
        if self.model.head is None:
            return F.linear(states, self.model.item_embedding.weight, self.model.output_bias).float()  # (B, N + 1)
        return self.model.head(states).float()


def export_onnx(checkpoint: str | os.PathLike, output: str | os.PathLike, data: SequenceData, *,
                overwrite: bool = False, check: bool = True) -> OnnxExport:
    """Write ``checkpoint`` (trained on ``data``) as an ONNX file at ``output``; check it against PyTorch.

    Histories of any batch size and of 1 to ``max_len`` films, int64, left-padded with 0; the scores are
    float32, column 0 padding. With ``check``, ONNX Runtime scores real histories of ``data`` (1 film, half
    ``max_len`` and ``max_len``, several a batch, one left-padded) and a difference from PyTorch over
    :data:`PARITY_TOLERANCE` raises :class:`CheckpointError`. The file is written atomically: an existing
    ``output`` is kept unless ``overwrite``, and a failed export or check leaves nothing behind.
    """
    output = Path(output)
    if output.is_dir():
        raise InvalidArgumentError(f"{display_path(output)} is a folder; give a file name inside it, "
                                   f"e.g. {output / 'model.onnx'}.")
    if output.exists() and not overwrite:
        raise InvalidArgumentError(f"{display_path(output)} already exists; pass overwrite=True to replace it.")
    onnx_modules()  # a clear error before the checkpoint is read, when the serve extra is missing
    model, payload = load_checkpoint(checkpoint, data)  # refuses a checkpoint trained on other items
    metadata = onnx_metadata(model, data, payload, Path(checkpoint).name)
    difference = None
    with atomic_file(output) as temporary:
        program = export_program(model)
        check_lookups(program.model, model)
        program.model.metadata_props.update(metadata)
        program.save(str(temporary), external_data=False)
        if check:
            difference = max(onnx_max_difference(model, temporary, group)
                             for group in parity_histories(data, model.config.max_len))
            if not difference <= PARITY_TOLERANCE:   # also refuses NaN
                raise CheckpointError(
                    f"The ONNX export of {display_path(checkpoint)} scores differently from PyTorch (largest "
                    f"difference {difference:.3g} > {PARITY_TOLERANCE:g}); nothing was written. Report it with "
                    f"the versions of torch, onnx and onnxruntime.")
    return OnnxExport(output, difference)


def onnx_modules():
    """``(onnx, onnxruntime)``, or :class:`MissingToolError` saying how to install them."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401 (torch.onnx's exporter writes with it)
    except ImportError as error:
        raise MissingToolError(f"The ONNX export needs onnx, onnxruntime and onnxscript ({error.name} is missing): "
                               "pip install 'recnb[serve]'.") from None
    return onnx, onnxruntime


@contextmanager
def quiet_exporter():
    """The exporter's own chatter (torchvision missing, deprecations) is no news to the user: silence it."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_program(model: SASRec):
    """The ``torch.onnx.ONNXProgram`` of ``model``'s scoring graph, with a dynamic batch and length."""
    max_len = model.config.max_len
    graph = ScoringGraph(model).eval()   # eval on the wrapper too: export traces the mode it is given
    example = torch.ones(2, min(max_len, 4), dtype=torch.long)
    length = torch.export.Dim("length", min=1, max=max_len) if max_len > 1 else None
    shapes = {"histories": {0: torch.export.Dim("batch"), **({1: length} if length is not None else {})}}
    with quiet_exporter(), torch.no_grad():
        return torch.onnx.export(graph, (example,), dynamo=True, input_names=["histories"],
                                 output_names=["scores"], dynamic_shapes=shapes, verbose=False)


def check_lookups(onnx_model, model: SASRec) -> None:
    """Refuse a graph that lost the genre or year lookup of a model that has it (each is a constant table)."""
    tables = [value.const_value.numpy() for value in onnx_model.graph.initializers.values()
              if value.const_value is not None]
    for name in ("item_genre", "item_year_bucket"):
        lookup = getattr(model, name)
        if lookup is not None and not any(np.array_equal(table, lookup.numpy()) for table in tables):
            raise CheckpointError(f"The ONNX graph has no {name} table although the model uses it; "
                                  "report it with the versions of torch and onnxscript.")


def onnx_metadata(model: SASRec, data: SequenceData, payload: dict, source: str) -> dict[str, str]:
    """The ``metadata_props`` of an export (:data:`METADATA_KEYS`): all that serving needs besides the graph."""
    items = data.items.iloc[1:]
    metadata = {
        "recnb.format": ONNX_FORMAT,
        "recnb.version": __version__,
        "recnb.config": json.dumps(model.config.to_dict()),
        "recnb.max_len": str(model.config.max_len),
        "recnb.n_items": str(data.n_items),
        "recnb.dataset": data.name,
        "recnb.items": json.dumps({
            "movielens_id": [int(i) for i in data.item_ids[1:]],
            "title": [str(t) for t in items["title"]],
            "year": [None if pd.isna(y) else int(y) for y in items["year"]],
            "genres": [list(g) for g in items["genres"]],
        }, ensure_ascii=False),
        "recnb.checkpoint": source,
    }
    if "metrics" in payload:
        metadata["recnb.metrics"] = json.dumps(payload["metrics"])
    if "best_epoch" in payload:
        metadata["recnb.best_epoch"] = str(int(payload["best_epoch"]))
    return metadata


def parity_histories(data: SequenceData, max_len: int, rows: int = 4, seed: int = 0) -> list[list[np.ndarray]]:
    """Real histories to compare ONNX Runtime with PyTorch on: one batch for each of 1 film, half ``max_len``
    and ``max_len`` films, ``rows`` users' most recent films each, plus (above 1) a shorter, left-padded one."""
    rng = np.random.default_rng(seed)
    lengths = np.array([len(s) for s in data.sequences])
    groups = []
    for width in sorted({1, max(max_len // 2, 1), max_len}):
        eligible = np.flatnonzero(lengths >= width)
        users = (rng.choice(eligible, min(rows, len(eligible)), replace=False) if len(eligible)
                 else np.argsort(-lengths)[:rows])
        group = [data.sequences[u][-width:] for u in users]
        if width > 1:
            group.append(data.sequences[users[0]][-(width // 2):])
        groups.append(group)
    return groups


def onnx_max_difference(model: SASRec, onnx_file, histories, threads: int | None = None) -> float:
    """The largest |ONNX Runtime - PyTorch| score over ``histories`` (item-id arrays of 1 to ``max_len`` films,
    scored as one batch, left-padded to the longest): how far the exported graph is from ``model.score``.

    ``onnx_file`` is a path or an ``onnxruntime.InferenceSession``.
    """
    _, onnxruntime = onnx_modules()
    session = onnx_file
    if not isinstance(onnx_file, onnxruntime.InferenceSession):
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    padded = pad_histories(list(histories))
    if padded.shape[1] > model.config.max_len:
        raise InvalidArgumentError(f"A history has {padded.shape[1]} films; the model takes at most "
                                   f"{model.config.max_len}.")
    (onnx_scores,) = session.run(["scores"], {"histories": padded.numpy()})
    with torch.inference_mode():
        torch_scores = model.score(padded).numpy()
    return float(np.abs(onnx_scores - torch_scores).max())
