"""The package's own errors, under one base class.

Everything recnb raises on purpose (a bad argument, a file in the wrong
layout, a checkpoint made for other data) is a :class:`RecnbError` whose
message says what is wrong and what to do. The command line prints those as
one ``error:`` line; anything else that escapes is a bug and keeps its
traceback. Each class also subclasses the built-in error it refines
(``ValueError``, ``FileNotFoundError``, ``RuntimeError``), so code written
against the built-ins keeps working.
"""

from __future__ import annotations


class RecnbError(Exception):
    """Base of every error recnb raises on purpose: an input to fix, not a bug."""


class InvalidArgumentError(RecnbError, ValueError):
    """An argument (a command-line flag, a function parameter) is out of range or unknown."""


class DataFormatError(RecnbError, ValueError):
    """A data file does not have the layout its release promises."""


class MissingDataError(RecnbError, FileNotFoundError):
    """A file or folder recnb needs is not there."""


class EmptyDatasetError(RecnbError, ValueError):
    """Filtering left nothing to learn from."""


class DownloadError(RecnbError, RuntimeError):
    """A release is not on disk and cannot be fetched."""


class ArchiveError(RecnbError, ValueError):
    """A downloaded archive is damaged, unsafe or not what was expected."""


class MissingToolError(RecnbError, RuntimeError):
    """A program recnb needs for this command (nbgrader, pip's wheel builder) is missing or failed."""


class NotFittedError(RecnbError, RuntimeError):
    """A model is asked to score, or for what it learned, before ``fit``."""


class CheckpointError(RecnbError, ValueError):
    """A checkpoint file is missing its parts, damaged, or made for another model or data set."""


class SplitMismatchError(CheckpointError):
    """A checkpoint is asked to score a split whose held-out films it may have trained on."""


class UnknownFilmError(InvalidArgumentError):
    """A film given by id or title is not in the data set."""


class ExplorerInputError(InvalidArgumentError):
    """Something typed into a widget cannot be used (the widget shows the message)."""


__all__ = [
    "ArchiveError", "CheckpointError", "DataFormatError", "DownloadError", "EmptyDatasetError",
    "ExplorerInputError", "InvalidArgumentError", "MissingDataError", "MissingToolError", "NotFittedError",
    "RecnbError", "SplitMismatchError", "UnknownFilmError",
]
