"""``python -m recnb export --onnx`` end to end on a small checkpoint, and its refusals."""

from recnb.cli import main
from recnb.serve import OnnxRecommender
from tests.helpers import tiny_checkpoint


def test_export_onnx_writes_a_served_model_and_keeps_an_existing_one(synthetic, synthetic_dir, tmp_path, capsys):
    checkpoint = tiny_checkpoint(synthetic, None, tmp_path / "tiny.pt", record_split=False)
    output = tmp_path / "served" / "model.onnx"
    # no --dataset: the checkpoint's ("synthetic"), read from --data-dir
    command = ["export", "--onnx", "--checkpoint", str(checkpoint), "--output", str(output),
               "--data-dir", str(synthetic_dir.parent), "--no-download"]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert f"wrote {output} (" in out and " MiB) from " in out and "ONNX Runtime matches PyTorch" in out
    difference = float(out.split("real histories to ")[1].split()[0])
    assert 0 <= difference <= 1e-4
    recommender = OnnxRecommender(output)
    assert recommender.dataset == "synthetic" and recommender.n_items == synthetic.n_items
    assert len(recommender.recommend(synthetic.item_ids[[1, 2, 3]].tolist(), k=5)) == 5

    before = output.read_bytes()
    assert main(command) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert output.read_bytes() == before


def test_data_options_need_onnx(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "a.pt"), "--output", str(tmp_path / "b.pt"),
                 "--dataset", "ml-1m"]) == 2
    assert "--dataset: only with --onnx" in capsys.readouterr().err
