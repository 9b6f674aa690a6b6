"""Several trained SASRec models scored as one: the mean of their scores.

Models trained alike with different seeds disagree on many users (notebook 07 measures how much their figures
move); averaging their predictions cancels part of that noise. Averaging *weights* (``--average-from``) reads one
run's trajectory; averaging *predictions* reads independent runs. The mean of the members' logits ranks every
user's items exactly as the mean of their log-probabilities (the geometric mean of the probabilities) does: the two
differ by one constant a row, each member's log-sum-exp.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from recnb.config import display_path
from recnb.data.sequences import SequenceData
from recnb.data.split import LeaveOneOutSplit
from recnb.errors import CheckpointError, InvalidArgumentError
from recnb.models.checkpoints import load_checkpoint
from recnb.models.sasrec import SASRec


class Ensemble(nn.Module):
    """Scores (B, N + 1) that are the mean of every member's scores, with the evaluator's interfaces.

    ``score`` serves the evaluator and ``top_k``; ``user_states`` and ``score_items`` let it rank in item chunks
    as it does one SASRec (the members' states side by side, each member scoring its own).
    """

    def __init__(self, members: Sequence[SASRec]):
        super().__init__()
        members = list(members)
        if not members:
            raise InvalidArgumentError("An ensemble needs at least one model.")
        columns = {member.n_columns for member in members}
        if len(columns) > 1:
            raise InvalidArgumentError(f"The models score different catalogues ({sorted(columns)} item ids): "
                                       "an ensemble needs models trained on the same items.")
        self.members = nn.ModuleList(members)   # registered: .to(), .eval() and state_dict() reach every member
        self.models: list[SASRec] = members     # the same modules, typed
        self.widths = [member.config.d_model for member in members]

    @property
    def n_columns(self) -> int:
        """Score columns: every item id, padding (0) included."""
        return self.models[0].n_columns

    def score(self, histories: torch.Tensor) -> torch.Tensor:
        """The mean of the members' scores for the next item after each history."""
        return torch.stack([member.score(histories) for member in self.models]).mean(0)

    def user_states(self, histories: torch.Tensor) -> torch.Tensor:
        """Every member's last hidden state side by side, (B, sum of the members' widths)."""
        return torch.cat([member.user_states(histories) for member in self.models], dim=1)

    def score_items(self, states: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """The mean over members of their scores (B, stop - start) of item ids start..stop-1."""
        parts = torch.split(states, self.widths, dim=1)
        return torch.stack([member.score_items(part, start, stop)
                            for member, part in zip(self.models, parts)]).mean(0)


def load_ensemble(paths: Sequence[str | os.PathLike], data: SequenceData | None = None,
                  device: str | torch.device = "cpu", split: LeaveOneOutSplit | None = None
                  ) -> tuple[Ensemble, list[dict]]:
    """The :class:`Ensemble` of the checkpoints at ``paths``, and their payloads.

    Each is loaded and checked as :func:`recnb.models.checkpoints.load_checkpoint` does (same items as ``data``;
    with ``split``, the same held-out films). The same file twice is refused: it would weigh one model double.
    """
    paths = list(paths)
    if not paths:
        raise InvalidArgumentError("An ensemble needs at least one checkpoint.")
    seen: set[str] = set()
    for path in paths:
        if os.path.realpath(path) in seen:
            raise InvalidArgumentError(f"{display_path(path)} is given twice; each checkpoint of an ensemble "
                                       "must be a different model.")
        seen.add(os.path.realpath(path))
    loaded = [load_checkpoint(path, data, device=device, split=split) for path in paths]
    members, payloads = [model for model, _ in loaded], [payload for _, payload in loaded]
    first = payloads[0]["dataset"]["item_ids"]
    for path, payload in zip(paths[1:], payloads[1:]):
        if not torch.equal(payload["dataset"]["item_ids"], first):
            raise CheckpointError(f"{display_path(path)} was trained on other items than {display_path(paths[0])} "
                                  f"({payload['dataset']['n_items']:,} against {payloads[0]['dataset']['n_items']:,}"
                                  " item ids, or other ids): an ensemble needs models of one catalogue.")
    return Ensemble(members).to(device).eval(), payloads
