"""Several SASRec models scored as one (``recnb.models.ensemble``): the mean of their scores, ranked by the one
evaluator, whole or in item chunks; loaded from checkpoints and from the command line; refused when it cannot be."""

import json

import numpy as np
import pytest
import torch

from recnb.cli import main
from recnb.data.sequences import load_dataset
from recnb.data.split import leave_one_out
from recnb.errors import CheckpointError, InvalidArgumentError
from recnb.evaluation.evaluator import evaluate, evaluate_split, top_k
from recnb.models.checkpoints import load_checkpoint, read_checkpoint_file
from recnb.models.ensemble import Ensemble, load_ensemble
from recnb.models.sasrec import SASRec, config_from_preset
from tests.evaluation.test_chunked import random_histories
from tests.helpers import REPO, TINY_N_ITEMS, tiny_checkpoint, tiny_sasrec
from tests.models.test_train import tiny_data

COMMITTED = [REPO / "checkpoints" / "sasrec_compact_ml1m.pt", REPO / "checkpoints" / "sasrec_compact_ml1m_seed1.pt"]


def two_members() -> list[SASRec]:
    """Two different tiny models over the same items, of different widths."""
    first = tiny_sasrec()
    torch.manual_seed(1)
    second = SASRec(config_from_preset("quick", TINY_N_ITEMS, n_genres=5, n_year_buckets=7, max_len=12, dropout=0.0,
                                       d_model=16), first.item_genre, first.item_year_bucket).eval()
    return [first, second]


def test_the_ensemble_scores_the_mean_of_its_members():
    members = two_members()
    histories = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 0, 7]])
    with torch.no_grad():
        by_hand = (members[0].score(histories) + members[1].score(histories)) / 2
        scores = Ensemble(members).score(histories)
    assert torch.allclose(scores, by_hand, atol=1e-6)
    assert not torch.allclose(scores, members[0].score(histories))   # the second member counts


def test_the_mean_of_logits_ranks_as_the_mean_of_log_probabilities():
    members = two_members()
    histories = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 0, 7]])
    with torch.no_grad():
        logits = Ensemble(members).score(histories)[:, 1:]
        log_probabilities = sum(torch.log_softmax(m.score(histories)[:, 1:], dim=1) for m in members) / 2
    assert torch.equal(logits.argsort(dim=1, descending=True), log_probabilities.argsort(dim=1, descending=True))
    assert not torch.allclose(logits, log_probabilities)    # different numbers, the same order


def test_one_member_scores_as_that_model():
    model = tiny_sasrec()
    histories, targets = random_histories()
    alone = evaluate(model, histories, targets)
    assert np.array_equal(evaluate(Ensemble([model]), histories, targets).ranks, alone.ranks)


def test_the_evaluator_ranks_an_ensemble_the_same_in_item_chunks():
    ensemble = Ensemble(two_members())
    histories, targets = random_histories()
    whole = evaluate(lambda h: ensemble.score(h), histories, targets)   # a plain function: every item at once
    for chunk in (1, 7, TINY_N_ITEMS):
        chunked = evaluate(ensemble, histories, targets, item_chunk=chunk)
        assert np.array_equal(chunked.ranks, whole.ranks) and chunked.metrics == whole.metrics
    assert np.array_equal(top_k(ensemble, histories, k=5, item_chunk=7), top_k(lambda h: ensemble.score(h), histories,
                                                                              k=5))


def test_models_of_other_catalogues_or_none_are_refused():
    with pytest.raises(InvalidArgumentError, match="at least one model"):
        Ensemble([])
    with pytest.raises(InvalidArgumentError, match="different catalogues"):
        Ensemble([tiny_sasrec(), SASRec(config_from_preset("quick", TINY_N_ITEMS + 5, max_len=12))])


def saved_models(folder, data, split, seeds=(0, 1)) -> list:
    """Untrained quick models for ``data``, one per seed, saved as checkpoints."""
    folder.mkdir(parents=True, exist_ok=True)
    return [tiny_checkpoint(data, split, folder / f"seed{seed}.pt", seed=seed) for seed in seeds]


def test_load_ensemble_checks_every_checkpoint(tmp_path):
    data = tiny_data()
    split = leave_one_out(data.sequences)
    paths = saved_models(tmp_path, data, split)
    ensemble, payloads = load_ensemble(paths, data, split=split)
    members = [load_checkpoint(path, data)[0] for path in paths]
    histories = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(ensemble.score(histories), (members[0].score(histories) + members[1].score(histories))
                              / 2, atol=1e-6)
    assert len(payloads) == 2 and not ensemble.training
    with pytest.raises(InvalidArgumentError, match="given twice"):
        load_ensemble([paths[0], tmp_path / "." / "seed0.pt"], data)
    with pytest.raises(InvalidArgumentError, match="at least one checkpoint"):
        load_ensemble([], data)
    other = tiny_data(n_items=14)
    other_path = saved_models(tmp_path / "other", other, leave_one_out(other.sequences), seeds=(2,))[0]
    with pytest.raises(CheckpointError, match="other items"):
        load_ensemble([paths[0], other_path])            # no data given: the checkpoints are checked together
    with pytest.raises(CheckpointError, match="trained on"):
        load_ensemble([paths[0], other_path], data)       # with data: each against it


def test_evaluate_command_scores_several_checkpoints_as_one(tmp_path, capsys):
    common = ["--dataset", "synthetic", "--data-dir", str(tmp_path)]
    assert main(["stats", *common]) == 0                  # writes the synthetic data set
    data = load_dataset("synthetic", tmp_path, progress=False)
    split = leave_one_out(data.sequences)
    paths = saved_models(tmp_path, data, split)
    capsys.readouterr()
    assert main(["evaluate", "--model", "sasrec", "--checkpoint", *map(str, paths), *common, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = evaluate_split(load_ensemble(paths, data)[0], split, "test")
    assert printed["metrics"] == pytest.approx(expected.metrics) and printed["checkpoints"] == list(map(str, paths))
    assert main(["evaluate", "--model", "sasrec", "--checkpoint", *map(str, paths), *common]) == 0
    assert "sasrec (the mean of 2 checkpoints) on synthetic" in capsys.readouterr().out
    assert main(["evaluate", "--model", "sasrec", "--checkpoint", str(paths[0]), str(tmp_path / "none.pt"),
                 *common]) == 2
    assert "No checkpoint at" in capsys.readouterr().err


def test_the_committed_seeds_together_beat_each_on_ml1m_validation(ml1m, ml1m_split):
    """The two committed seeds of the compact recipe, scored as one, rank validation films better than either
    alone: what the README's results say, recomputed (each member's figure is the one its checkpoint stored)."""
    ensemble, payloads = load_ensemble(COMMITTED, ml1m, split=ml1m_split)
    members = [read_checkpoint_file(path)["metrics"]["valid"]["NDCG@10"] for path in COMMITTED]
    first = evaluate_split(ensemble.members[0], ml1m_split, "valid")["NDCG@10"]
    assert first == pytest.approx(members[0], abs=1e-6)
    assert evaluate_split(ensemble, ml1m_split, "valid")["NDCG@10"] > max(members)


def test_scoring_an_ensemble_leaves_each_member_in_its_own_mode():
    """An Ensemble is built in train mode; scoring it must not switch dropout on in members that were in eval mode."""
    first, second = tiny_sasrec(dropout=0.3).eval(), tiny_sasrec(dropout=0.3).train()
    pair = Ensemble([first, second])
    assert pair.training
    histories = [np.array([1, 2, 3]), np.array([4, 5])]
    evaluate(pair, histories, [4, 6], batch_size=2)
    assert pair.training and not first.training and second.training
    assert all(not part.training for part in first.modules()) and all(part.training for part in second.modules())
