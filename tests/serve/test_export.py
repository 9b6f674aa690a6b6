"""The ONNX export of a SASRec checkpoint: the same scores as PyTorch, the films in the file, safe writing."""

import json

import numpy as np
import onnx
import onnx_ir
import pytest
import torch

from recnb.data import build_sequences
from recnb.data.readers import read_release
from recnb.errors import CheckpointError, InvalidArgumentError
from recnb.models import onnx_export
from recnb.models.onnx_export import (
    METADATA_KEYS,
    ONNX_FORMAT,
    check_lookups,
    export_onnx,
    onnx_max_difference,
    parity_histories,
)
from recnb.serve import ONNX_FORMAT as SERVED_FORMAT


def random_histories(rng, n_items, lengths):
    return [rng.integers(1, n_items + 1, size=length) for length in lengths]


def test_exported_scores_equal_pytorch_on_random_histories(tiny_export):
    model, _, result = tiny_export
    max_len, n_items = model.config.max_len, model.config.n_items
    rng = np.random.default_rng(0)
    assert result.max_difference <= 1e-4  # the export's own check, on the synthetic users
    for lengths in ([1], [max_len], [1, 2, max_len], list(rng.integers(1, max_len + 1, size=9))):
        histories = random_histories(rng, n_items, lengths)
        assert onnx_max_difference(model, result.path, histories) <= 1e-4
    with torch.inference_mode():   # the scores are far from 0, so the tolerance is a real test
        assert model.score(torch.as_tensor(random_histories(rng, n_items, [max_len])[0])[None]).std() > 0.5


def test_the_check_catches_a_graph_that_scores_differently(tied_export, linear_export):
    (tied, _, _), (_, _, linear_result) = tied_export, linear_export
    histories = random_histories(np.random.default_rng(1), tied.config.n_items, [3, 12])
    assert onnx_max_difference(tied, linear_result.path, histories) > 1e-2


def test_the_graph_takes_any_batch_and_length_and_holds_the_lookups(tied_export):
    model, _, result = tied_export
    graph = onnx.load(result.path).graph
    (histories,), (scores,) = graph.input, graph.output
    assert [d.dim_param or d.dim_value for d in histories.type.tensor_type.shape.dim] == ["batch", "length"]
    assert histories.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert scores.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert scores.type.tensor_type.shape.dim[1].dim_value == model.config.n_items + 1
    ir_model = onnx_ir.load(result.path)
    check_lookups(ir_model, model)  # both tables are in the graph
    other = scrambled_sasrec_with_genres_shifted(model)
    with pytest.raises(CheckpointError, match="no item_genre table"):
        check_lookups(ir_model, other)


def scrambled_sasrec_with_genres_shifted(model):
    shifted = model.item_genre.clone()
    shifted[1:] = shifted[1:] % (model.config.n_genres - 1) + 1
    other = type(model)(model.config, shifted, model.item_year_bucket)
    assert not torch.equal(shifted, model.item_genre)
    return other


def test_the_file_carries_the_films_and_the_settings(tied_export, synthetic):
    model, _, result = tied_export
    metadata = {p.key: p.value for p in onnx.load(result.path).metadata_props}
    assert set(metadata) == set(METADATA_KEYS)   # every key documented, every documented key written
    assert metadata["recnb.format"] == ONNX_FORMAT == SERVED_FORMAT
    assert json.loads(metadata["recnb.config"]) == model.config.to_dict()
    assert int(metadata["recnb.max_len"]) == 12 and int(metadata["recnb.n_items"]) == synthetic.n_items
    assert metadata["recnb.dataset"] == "synthetic" and metadata["recnb.checkpoint"] == "tiny.pt"
    assert json.loads(metadata["recnb.metrics"]) == {"test": {"HR@10": 0.5}} and metadata["recnb.best_epoch"] == "3"
    items = json.loads(metadata["recnb.items"])
    assert items["movielens_id"] == synthetic.item_ids[1:].tolist()
    assert items["title"] == synthetic.items["title"].iloc[1:].tolist()
    assert items["genres"] == [list(g) for g in synthetic.items["genres"].iloc[1:]]
    assert items["year"] == [int(y) for y in synthetic.items["year"].iloc[1:]]


def test_parity_histories_cover_one_film_half_and_max_len(synthetic):
    groups = parity_histories(synthetic, 12)
    assert [max(len(h) for h in group) for group in groups] == [1, 6, 12]
    assert all(min(len(h) for h in group) < max(len(h) for h in group) for group in groups[1:])  # left padding


def test_an_existing_output_is_kept_and_a_failed_check_leaves_nothing(tied_export, synthetic, tmp_path,
                                                                        monkeypatch):
    _, checkpoint, _ = tied_export
    output = tmp_path / "model.onnx"
    output.write_text("keep me")
    with pytest.raises(InvalidArgumentError, match="already exists; pass overwrite=True"):
        export_onnx(checkpoint, output, synthetic)
    monkeypatch.setattr(onnx_export, "PARITY_TOLERANCE", -1.0)   # every export now fails its check
    with pytest.raises(CheckpointError, match="scores differently from PyTorch"):
        export_onnx(checkpoint, output, synthetic, overwrite=True)
    assert output.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_a_checkpoint_of_other_films_is_refused(tied_export, synthetic_dir, tmp_path):
    _, checkpoint, _ = tied_export
    fewer = build_sequences(read_release("ml-1m", synthetic_dir), min_item_interactions=40, name="synthetic")
    with pytest.raises(CheckpointError, match="trained on 'synthetic' with"):
        export_onnx(checkpoint, tmp_path / "model.onnx", fewer)
    assert not (tmp_path / "model.onnx").exists()
