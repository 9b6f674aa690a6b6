"""The small exported models tests/serve shares: an export costs seconds, so each is made once a session."""

from __future__ import annotations

import pytest
import torch

from recnb.models.checkpoints import save_checkpoint
from recnb.models.onnx_export import export_onnx
from recnb.models.sasrec import SASRec, config_from_preset
from recnb.models.training import build_model


def scrambled_sasrec(data, **overrides) -> SASRec:
    """An untrained quick SASRec for ``data`` (max_len 12, no dropout) whose weights are all drawn with std 0.3:
    at init (std 0.02) every score is near 0, and an export that got positions or padding wrong could still
    pass a tolerance of 1e-4; with these weights the scores spread over several units."""
    torch.manual_seed(0)
    config = config_from_preset("quick", data.n_items, len(data.genre_names), len(data.year_bucket_labels),
                                **{"max_len": 12, "dropout": 0.0, **overrides})
    model = build_model(data, config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.3)
    return model


def exported(data, folder, **overrides):
    """(model, checkpoint, :class:`~recnb.models.onnx_export.OnnxExport`) of a scrambled SASRec saved with
    metrics and a best epoch, as ``train`` saves them, and exported to ONNX."""
    model = scrambled_sasrec(data, **overrides)
    checkpoint = save_checkpoint(folder / "tiny.pt", model, data, metrics={"test": {"HR@10": 0.5}}, best_epoch=3)
    return model, checkpoint, export_onnx(checkpoint, folder / "tiny.onnx", data)


@pytest.fixture(scope="session")
def tied_export(synthetic, tmp_path_factory):
    """A scrambled SASRec with a tied head (the presets' head) on the synthetic data, exported."""
    return exported(synthetic, tmp_path_factory.mktemp("tied-export"))


@pytest.fixture(scope="session")
def linear_export(synthetic, tmp_path_factory):
    """The same with a separate Linear head (``tied_head=False``), which the graph writes another way."""
    return exported(synthetic, tmp_path_factory.mktemp("linear-export"), tied_head=False)


@pytest.fixture(scope="session")
def biased_export(synthetic, tmp_path_factory):
    """A tied head with a learned score of each item (``item_bias``), which the graph adds to the product."""
    return exported(synthetic, tmp_path_factory.mktemp("biased-export"), item_bias=True)


@pytest.fixture(params=["tied_export", "linear_export", "biased_export"])
def tiny_export(request):
    """Each of the three exports in turn."""
    return request.getfixturevalue(request.param)
