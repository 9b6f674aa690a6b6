"""Writing files atomically, with the permissions of an ordinary file.

Everything recnb writes that a reader could find half-written (checkpoints, the comparison table and chart, a
downloaded archive, the synthetic data set, the assignments' release) is written under a temporary name beside its
destination and renamed over it only when complete: an error or a crash leaves the old file as it was, never half a
new one. ``tempfile`` makes its files private (0600, folders 0700); the result gets the mode a direct write would
have given it, so it is as readable as any other file the user makes.

>>> with atomic_file("assets/table.csv") as temporary:
...     table.to_csv(temporary)                 # any writer that takes a path
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def give_normal_permissions(path: str | os.PathLike) -> None:
    """The mode a file (0666) or folder (0777) gets when created directly, less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~umask)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed over ``path`` when the block ends without an error.

    The temporary file (``.NAME.XXXX.tmp``, in the same folder, so the rename is atomic) is removed when the
    block raises; ``path``'s folder is created if missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        give_normal_permissions(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # nothing left on success: it was renamed


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; renamed to ``path`` when the block ends without an error.

    ``path`` must not exist, or be an empty folder, when the block ends (a folder is never merged into
    another). The folder and everything in it get ordinary permissions; on an error the temporary folder is
    removed with what it holds.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    try:
        yield staging
        for item in (staging, *staging.rglob("*")):
            give_normal_permissions(item)
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
