"""Download, verify and extract MovieLens releases, safely and offline-friendly.

``fetch_release("ml-1m")`` returns ``<data_dir>/ml-1m/`` with the release's files
in it. It only goes to the network when neither the extracted files nor the zip
are already in the data directory, so a machine without internet works as soon
as someone puts the zip (or its unzipped folder) there by hand.

Nothing here deletes or overwrites a file it did not create: a download goes to a
temporary file (:func:`recnb.files.atomic_file`) that becomes the archive only once it is complete and
verified, and extraction never replaces a file that is already in place.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from recnb.config import DATA_DIR_ENV, resolve_data_dir
from recnb.data.releases import GROUPLENS_BASE_URL, Release, get_release
from recnb.errors import ArchiveError, DownloadError
from recnb.files import atomic_file

CHUNK_SIZE = 1 << 20  # 1 MiB: small enough for a smooth progress bar, large enough to be fast.

# The three ways an MD5 is commonly written: BSD ``md5`` (what GroupLens publishes),
# GNU ``md5sum`` (``*`` marks binary mode) and a bare digest.
_MD5_PATTERNS = (
    re.compile(r"MD5 \((?P<name>.+)\) = (?P<hex>[0-9a-fA-F]{32})"),
    re.compile(r"(?P<hex>[0-9a-fA-F]{32}) [ *](?P<name>.+)"),
    re.compile(r"(?P<hex>[0-9a-fA-F]{32})"),
)


def release_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder a release is extracted to: ``<data_dir>/<name>``."""
    return resolve_data_dir(data_dir) / name


def is_release_present(release: Release, folder: Path) -> bool:
    """Whether ``folder`` holds the release's movie file and an interactions file."""
    folder = Path(folder)
    ratings = (release.ratings_file, *release.alternative_ratings_files)
    return (folder / release.items_file).is_file() and any((folder / f).is_file() for f in ratings)


def md5sum(path: Path) -> str:
    """The hexadecimal MD5 digest of a file, read in chunks so large archives fit in memory."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_md5(text: str) -> str:
    """Extract the digest from an MD5 file's text (BSD, ``md5sum`` or bare format).

    Raises
    ------
    ArchiveError
        If the text is none of those formats, e.g. an HTML error page.
    """
    line = text.strip()
    for pattern in _MD5_PATTERNS:
        match = pattern.fullmatch(line)
        if match:
            return match["hex"].lower()
    raise ArchiveError(
        f"not an MD5 checksum file (expected 'MD5 (name) = <hex>', '<hex>  name' or '<hex>'): {line[:80]!r}"
    )


def _unsafe(member: str) -> bool:
    """Whether a zip member path could escape the extraction folder (zip-slip)."""
    path = PurePosixPath(member.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", member) is not None


def verify_archive(path: Path, release: Release, expected_md5: str | None) -> None:
    """Check that ``path`` is an intact zip of ``release``, with the right MD5 if one is given.

    Raises
    ------
    ArchiveError
        Saying what failed: not a zip, a corrupt member, an unsafe member path,
        a missing expected member or an MD5 mismatch.
    """
    # The MD5 first: it is the strongest check and names the problem best.
    if expected_md5 is not None:
        actual = md5sum(path)
        if actual != expected_md5.lower():
            raise ArchiveError(f"MD5 checksum mismatch: expected {expected_md5}, got {actual}")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()  # reads every member and checks its CRC
            names = set(zf.namelist())
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ArchiveError(f"not a valid zip file, or corrupt data ({exc})") from exc
    if bad is not None:
        raise ArchiveError(f"corrupt member {bad!r} (CRC check failed)")
    unsafe = sorted(n for n in names if _unsafe(n))
    if unsafe:
        raise ArchiveError(f"unsafe member path(s) that would escape the extraction folder: {unsafe}")
    missing = [f"{release.folder}/{m}" for m in release.members if f"{release.folder}/{m}" not in names]
    if missing:
        raise ArchiveError(f"missing expected member(s): {', '.join(missing)}")


def extract_release(archive: Path, release: Release, dest: Path) -> None:
    """Extract the files under ``<release.folder>/`` into ``dest``, never overwriting.

    Files go to a temporary folder beside ``dest`` first, so an interrupted
    extraction leaves no half-written file in ``dest``; each is then moved in
    only if ``dest`` does not already have a file of that name (the user's copy wins).
    """
    dest = Path(dest)
    prefix = release.folder + "/"
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{release.name}-extract-"))
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if _unsafe(info.filename):
                    raise ArchiveError(f"Refusing unsafe member path {info.filename!r} in {archive}")
                if info.is_dir() or not info.filename.startswith(prefix):
                    continue
                target = tmp / info.filename[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK_SIZE)
        dest.mkdir(parents=True, exist_ok=True)
        for extracted in sorted(p for p in tmp.rglob("*") if p.is_file()):
            target = dest / extracted.relative_to(tmp)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(extracted, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _offline_help(release: Release, data_dir: Path, base_url: str) -> str:
    """What to do by hand when the archive cannot be downloaded."""
    url = release.url(base_url)
    renamed = "" if release.folder == release.name else f" (rename its {release.folder}/ to {release.name}/)"
    return (
        f"To work offline, download {url} by hand and put it at {data_dir / release.archive_name}, "
        f"or unzip it so that {data_dir / release.name / release.items_file} exists{renamed}, "
        f"or set {DATA_DIR_ENV} to a folder that holds {release.name}/."
    )


def _network_error(url: str, exc: Exception, release: Release, data_dir: Path, base_url: str):
    """A DownloadError naming the URL, the reason and the offline way out."""
    # HTTPError's str() carries the status code; other URLErrors wrap the socket error in .reason.
    reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", None) or exc
    return DownloadError(f"Could not download {url}: {reason}. {_offline_help(release, data_dir, base_url)}")


def download_archive(
    release: Release,
    data_dir: Path,
    *,
    base_url: str = GROUPLENS_BASE_URL,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download and verify ``release``'s zip into ``data_dir``; return the archive's path.

    The MD5 file is fetched first (it is tiny, and without it nothing can be
    verified). The zip streams to a temporary file in ``data_dir`` that is renamed
    to the archive only after its size, zip integrity, members and MD5 check
    out; on any failure only that temporary file is removed.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    url, md5_url, final = release.url(base_url), release.md5_url(base_url), data_dir / release.archive_name
    try:
        with urllib.request.urlopen(md5_url, timeout=timeout) as response:
            md5_text = response.read(4096).decode("ascii", errors="replace")
    except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
        raise _network_error(md5_url, exc, release, data_dir, base_url) from exc
    try:
        expected = parse_md5(md5_text)
    except ArchiveError as exc:
        raise ArchiveError(f"Unusable checksum file {md5_url}: {exc}") from exc

    retry = "Nothing was saved; run again to retry."
    with atomic_file(final) as part:  # renamed to the archive only once complete and verified
        with open(part, "wb") as file:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    received = 0
                    desc = release.archive_name
                    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
                        while chunk := response.read(CHUNK_SIZE):
                            file.write(chunk)
                            received += len(chunk)
                            bar.update(len(chunk))
            except http.client.IncompleteRead as exc:  # the connection closed early
                raise ArchiveError(f"Download of {url} was truncated ({exc}). {retry}") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise _network_error(url, exc, release, data_dir, base_url) from exc
        if total is not None and received != total:
            raise ArchiveError(f"Download of {url} was truncated: got {received} of {total} bytes. {retry}")
        try:
            verify_archive(part, release, expected)
        except ArchiveError as exc:
            raise ArchiveError(f"Downloaded {url} but it failed verification: {exc}. {retry}") from exc
    # Cached beside the archive (md5sum format) so a later run can re-verify it offline.
    with atomic_file(f"{final}.md5") as temporary:
        temporary.write_text(f"{expected}  {release.archive_name}\n", encoding="ascii")
    return final


def fetch_release(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    base_url: str = GROUPLENS_BASE_URL,
    download: bool = True,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Make sure a MovieLens release is extracted under the data directory; return its folder.

    Parameters
    ----------
    name : str
        A release name from :mod:`recnb.data.releases`, e.g. ``"ml-1m"``.
    data_dir : path-like, optional
        The data cache folder; see :func:`recnb.config.resolve_data_dir`.
    base_url : str
        Where the archives are published (tests point this at a local server).
    download : bool
        If False, never go to the network: use what is in ``data_dir`` or fail.
    progress : bool
        Show a progress bar while downloading.
    timeout : float
        Seconds to wait on the network before giving up.

    Returns
    -------
    Path
        ``<data_dir>/<name>``, holding the release's files.

    Raises
    ------
    DownloadError
        The archive is needed but could not be downloaded (or ``download`` is False).
    ArchiveError
        The archive is damaged, truncated, incomplete or fails its MD5 check.
    """
    release = get_release(name)
    data_dir = resolve_data_dir(data_dir)
    folder = data_dir / release.name
    if is_release_present(release, folder):
        return folder

    archive = data_dir / release.archive_name
    if archive.is_file():
        # Downloaded earlier or put there by hand: check it, but never delete it.
        md5_file, expected = Path(f"{archive}.md5"), None
        if md5_file.is_file():
            try:
                expected = parse_md5(md5_file.read_text(encoding="ascii", errors="replace"))
            except ArchiveError as exc:
                raise ArchiveError(f"Unusable checksum file {md5_file}: {exc}. Delete or fix it.") from exc
        try:
            verify_archive(archive, release, expected)
        except ArchiveError as exc:
            raise ArchiveError(
                f"The archive {archive} is damaged: {exc}. Delete or replace it "
                f"(with a fresh copy of {release.url(base_url)}) and run again."
            ) from exc
    elif not download:
        help_text = _offline_help(release, data_dir, base_url)
        raise DownloadError(f"{release.name} is not in {data_dir} and downloading is off. {help_text}")
    else:
        archive = download_archive(release, data_dir, base_url=base_url, progress=progress, timeout=timeout)

    extract_release(archive, release, folder)
    return folder
