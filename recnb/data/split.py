"""Leave-one-out splitting, the one rule for what a model sees, and padding histories into tensors."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from recnb.errors import EmptyDatasetError, InvalidArgumentError

#: A user needs one training item, one validation item and one test item.
MIN_SEQUENCE_LENGTH = 3


@dataclass
class LeaveOneOutSplit:
    """Each user's last item is the test target, the one before it the validation target.

    Attributes
    ----------
    train : list of int64 arrays
        Everything before the validation item: the only data any model is fit on.
    valid, test : int64 arrays of shape (U,)
        The validation and test target of every kept user.
    users : int64 array of shape (U,)
        Index of each kept user in the sequences that were split.
    dropped_users : int
        Users with fewer than three items, which cannot be split and are left out.
    """

    train: list[np.ndarray]
    valid: np.ndarray
    test: np.ndarray
    users: np.ndarray
    dropped_users: int

    @property
    def n_users(self) -> int:
        return len(self.users)


def leave_one_out(sequences: list[np.ndarray]) -> LeaveOneOutSplit:
    """Split time-ordered sequences: last item test, second to last validation, the rest training.

    Users with fewer than :data:`MIN_SEQUENCE_LENGTH` items are dropped and
    counted in ``dropped_users`` (the 5-core filter leaves none).
    """
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    users = np.flatnonzero(lengths >= MIN_SEQUENCE_LENGTH)
    if len(users) == 0:
        raise EmptyDatasetError(
            f"No user has the {MIN_SEQUENCE_LENGTH} items leave-one-out needs (training, validation, "
            "test). Use a larger data set or a higher k-core threshold."
        )
    # one flat array and offsets: the targets by fancy indexing, the training parts as views (no loop per user)
    flat = np.concatenate(sequences).astype(np.int64, copy=False)
    ends = np.cumsum(lengths)[users]
    starts = ends - lengths[users]
    pieces = np.split(flat, np.column_stack([starts, ends - 2]).ravel())
    return LeaveOneOutSplit(
        train=pieces[1::2],
        valid=flat[ends - 2],
        test=flat[ends - 1],
        users=users,
        dropped_users=int(len(sequences) - len(users)),
    )


def evaluation_inputs(split: LeaveOneOutSplit, which: str) -> tuple[list[np.ndarray], np.ndarray]:
    """The histories a model is given and the targets it must rank, for ``"valid"`` or ``"test"``.

    This is the one place the leave-one-out rule lives:

    - validation: history = the training items; target = the validation item;
    - test: history = the training items + the validation item; target = the test item.

    The validation item joins the *input* at test time, as it would in
    production, but never the *training* data (``split.train``): whatever a
    model is fit on contains no item it is evaluated on.
    """
    if which == "valid":
        return split.train, split.valid
    if which == "test":
        return [np.append(h, v) for h, v in zip(split.train, split.valid)], split.test
    raise InvalidArgumentError(f"which must be 'valid' or 'test', not {which!r}.")


def pad_histories(histories: Sequence[np.ndarray], max_len: int | None = None) -> torch.Tensor:
    """Stack histories into a (B, L) LongTensor, padded with 0 on the left.

    Left padding puts every user's most recent item in the last column, where a
    causal model reads its prediction. Histories longer than ``max_len`` keep
    their most recent ``max_len`` items.
    """
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    width = int(lengths.max(initial=0)) if max_len is None else int(max_len)
    if width < 1:
        raise ValueError("Histories are all empty: a model needs at least one item to score from.")
    kept = np.minimum(lengths, width)
    out = np.zeros((len(histories), width), dtype=np.int64)
    if len(histories):
        flat = np.concatenate([np.asarray(h[len(h) - k:], dtype=np.int64) for h, k in zip(histories, kept)])
        rows = np.repeat(np.arange(len(histories)), kept)
        # column of each kept item: width - k + position within the kept tail
        cols = width - np.repeat(kept, kept) + (np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept))
        out[rows, cols] = flat
    return torch.from_numpy(out)


# ----------------------------------------------------------------------------- which split a model saw
def split_fingerprint(data, split: LeaveOneOutSplit) -> dict:
    """What a model trained on ``split`` saw, in original MovieLens ids, so the same split can be recognised later.

    Each user's held-out validation and test film, and a SHA-256 digest of every
    training sequence. Saved in checkpoints: the same release read in another
    order (GroupLens' ``ratings.dat`` orders ties in time by file line; another
    copy may not) can move held-out films into training, and the model's figures
    on such a split would be leaked.
    """
    users = np.asarray(data.user_ids)[split.users].astype(np.int64)
    item_ids = np.asarray(data.item_ids, dtype=np.int64)
    digest = hashlib.sha256()
    for user, sequence in zip(users, split.train):
        digest.update(user.tobytes())
        digest.update(item_ids[sequence].tobytes())
    return {"users": torch.as_tensor(users), "valid": torch.as_tensor(item_ids[split.valid]),
            "test": torch.as_tensor(item_ids[split.test]), "train_sha256": digest.hexdigest()}


@dataclass
class SplitCheck:
    """How the split at hand compares with the one a model was trained on.

    ``changed_users`` and ``leaked_users`` are boolean masks over the positions of
    the split that was checked (``split.users``), so a caller can mark or leave
    out exactly those users.
    """

    users: int          # users in the split at hand
    changed: int        # of them, users whose held-out films differ (or who were not in the model's split)
    leaked: int         # of the changed, users whose new test film the model did not hold out for them
    same_training: bool
    changed_users: np.ndarray = field(repr=False, compare=False)
    leaked_users: np.ndarray = field(repr=False, compare=False)

    @property
    def same(self) -> bool:
        return self.changed == 0 and self.same_training

    def describe(self) -> str:
        if self.same:
            return f"the same split as at training time ({self.users:,} users)"
        if self.changed == 0:
            return ("every user's held-out films are as at training time, but the training sequences differ "
                    "(another order or other data): the model was trained on other histories")
        return (f"{self.changed:,} of {self.users:,} users' held-out films differ from the split the model was "
                f"trained on, and for {self.leaked:,} of them the new test film was not held out from training "
                "(it was a training target, if the user's films are the same): figures on this split would be leaked")


def check_split(fingerprint: dict, data, split: LeaveOneOutSplit) -> SplitCheck:
    """Compare ``split`` with a :func:`split_fingerprint` saved when a model was trained."""
    now = split_fingerprint(data, split)
    saved = {u: (v, t) for u, v, t in zip(*(fingerprint[key].tolist() for key in ("users", "valid", "test")))}
    changed = np.zeros(split.n_users, dtype=bool)
    leaked = np.zeros(split.n_users, dtype=bool)
    for k, (user, valid, test) in enumerate(zip(now["users"].tolist(), now["valid"].tolist(), now["test"].tolist())):
        before = saved.get(user)
        if before == (valid, test):
            continue
        changed[k] = True
        leaked[k] = before is None or test not in before
    return SplitCheck(split.n_users, int(changed.sum()), int(leaked.sum()),
                      now["train_sha256"] == fingerprint["train_sha256"], changed, leaked)


def select_users(split: LeaveOneOutSplit, keep: np.ndarray) -> LeaveOneOutSplit:
    """The split restricted to the users where the boolean mask ``keep`` (one entry per position) is True.

    ``users`` still indexes the original sequences, so user ids and histories stay
    where they were; ``dropped_users`` keeps counting only the users too short to split.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (split.n_users,):
        raise InvalidArgumentError(f"keep needs one entry per user of the split ({split.n_users:,}), "
                                   f"not shape {keep.shape}.")
    return LeaveOneOutSplit(train=[t for t, k in zip(split.train, keep) if k], valid=split.valid[keep],
                            test=split.test[keep], users=split.users[keep], dropped_users=split.dropped_users)


