"""Tests for recnb.data.download, against small fake archives served from a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import threading
import zipfile

import pytest

from recnb.data.download import (
    ArchiveError,
    DownloadError,
    download_archive,
    extract_release,
    fetch_release,
    is_release_present,
    md5sum,
    parse_md5,
    release_dir,
    verify_archive,
)
from recnb.data.releases import get_release

ML1M = get_release("ml-1m")
MOVIES = "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji (1995)::Adventure\n"
RATINGS = "1::1::5::978300760\n1::2::3::978302109\n2::1::4::978301968\n"


def make_zip(members: dict[str, str]) -> bytes:
    """A zip archive, in memory, holding ``members`` (path -> text)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buffer.getvalue()


GOOD_ZIP = make_zip({"ml-1m/movies.dat": MOVIES, "ml-1m/ratings.dat": RATINGS, "ml-1m/README": "fake"})


def bsd_md5(data: bytes, name: str = "ml-1m.zip") -> bytes:
    """An MD5 file in the format GroupLens publishes."""
    return f"MD5 ({name}) = {hashlib.md5(data).hexdigest()}\n".encode()


class Server:
    """A local HTTP server serving ``files`` (URL path -> bytes) and counting requests."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.send_only: dict[str, int] = {}  # path -> bytes actually sent (Content-Length stays full)
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: server.send_only.get(self.path, len(body))])

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/datasets"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def serve(self, archive: bytes, md5: bytes | None = None, name: str = "ml-1m.zip"):
        self.files[f"/datasets/{name}"] = archive
        self.files[f"/datasets/{name}.md5"] = bsd_md5(archive, name) if md5 is None else md5

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    return path


def fetch(server, data_dir, **kwargs):
    return fetch_release("ml-1m", data_dir, base_url=server.base_url, progress=False, timeout=5, **kwargs)


def test_good_archive_downloads_verifies_extracts_and_is_cached(server, data_dir):
    server.serve(GOOD_ZIP)
    folder = fetch(server, data_dir)
    assert folder == data_dir / "ml-1m" == release_dir("ml-1m", data_dir)
    assert (folder / "movies.dat").read_text() == MOVIES
    assert (folder / "ratings.dat").read_text() == RATINGS
    assert (data_dir / "ml-1m.zip").read_bytes() == GOOD_ZIP
    assert parse_md5((data_dir / "ml-1m.zip.md5").read_text()) == hashlib.md5(GOOD_ZIP).hexdigest()
    assert sorted(p.name for p in data_dir.iterdir()) == ["ml-1m", "ml-1m.zip", "ml-1m.zip.md5"]
    assert len(server.requests) == 2

    assert fetch(server, data_dir) == folder
    assert len(server.requests) == 2  # second call: already present, no network


def test_cached_archive_is_reextracted_without_network(server, data_dir):
    server.serve(GOOD_ZIP)
    folder = fetch(server, data_dir)
    (folder / "ratings.dat").unlink()
    assert fetch(server, data_dir, download=False) == folder
    assert (folder / "ratings.dat").read_text() == RATINGS
    assert len(server.requests) == 2


def test_truncated_download_leaves_nothing(server, data_dir):
    server.serve(GOOD_ZIP)
    server.send_only["/datasets/ml-1m.zip"] = len(GOOD_ZIP) // 2
    with pytest.raises(ArchiveError, match="truncated"):
        fetch(server, data_dir)
    assert list(data_dir.iterdir()) == []


def test_wrong_checksum_leaves_nothing(server, data_dir):
    server.serve(GOOD_ZIP, md5=b"MD5 (ml-1m.zip) = " + b"0" * 32 + b"\n")
    with pytest.raises(ArchiveError, match="(?i)md5|checksum"):
        fetch(server, data_dir)
    assert list(data_dir.iterdir()) == []


def test_missing_member_is_named(server, data_dir):
    server.serve(make_zip({"ml-1m/movies.dat": MOVIES}))
    with pytest.raises(ArchiveError, match="ml-1m/ratings.dat"):
        fetch(server, data_dir)
    assert list(data_dir.iterdir()) == []


def test_garbage_md5_from_server_is_an_error(server, data_dir):
    server.serve(GOOD_ZIP, md5=b"<html>Not here</html>")
    with pytest.raises(ArchiveError, match="MD5"):
        fetch(server, data_dir)
    assert list(data_dir.iterdir()) == []


def test_http_error_is_a_download_error(server, data_dir):
    with pytest.raises(DownloadError, match="404") as info:
        fetch(server, data_dir)
    assert f"{server.base_url}/ml-1m.zip" in str(info.value)
    assert list(data_dir.iterdir()) == []


def test_offline_error_says_where_to_put_the_archive(data_dir):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(DownloadError) as info:
        fetch_release("ml-1m", data_dir, base_url=url, progress=False, timeout=5)
    message = str(info.value)
    assert str(data_dir / "ml-1m.zip") in message
    assert f"{url}/ml-1m.zip" in message
    assert str(data_dir / "ml-1m" / "movies.dat") in message
    assert "RECNB_DATA_DIR" in message
    assert list(data_dir.iterdir()) == []


def test_timeout_is_a_download_error(data_dir):
    with socket.socket() as sock:  # listens (the kernel accepts) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(DownloadError, match="timed out") as info:
            fetch_release("ml-1m", data_dir, base_url=url, progress=False, timeout=0.3)
    assert str(data_dir / "ml-1m.zip") in str(info.value)
    assert list(data_dir.iterdir()) == []


def test_download_false_with_nothing_present(tmp_path):
    data_dir = tmp_path / "nothing"
    with pytest.raises(DownloadError, match="ml-1m.zip"):
        fetch_release("ml-1m", data_dir, download=False)
    assert not data_dir.exists()


def test_hand_placed_good_archive_is_used_offline(data_dir):
    (data_dir / "ml-1m.zip").write_bytes(GOOD_ZIP)
    folder = fetch_release("ml-1m", data_dir, download=False)
    assert (folder / "ratings.dat").read_text() == RATINGS
    assert (data_dir / "ml-1m.zip").read_bytes() == GOOD_ZIP
    assert not list(data_dir.glob(".ml-1m-extract-*"))  # temporary extraction folder removed


def test_hand_placed_damaged_archive_is_reported_not_deleted(server, data_dir):
    archive = data_dir / "ml-1m.zip"
    archive.write_bytes(b"this is not a zip")
    server.serve(GOOD_ZIP)
    with pytest.raises(ArchiveError, match="damaged") as info:
        fetch(server, data_dir)
    assert str(archive) in str(info.value) and "Delete or replace" in str(info.value)
    assert archive.read_bytes() == b"this is not a zip"
    assert server.requests == []


def test_hand_placed_archive_with_wrong_cached_md5_is_kept(data_dir):
    archive = data_dir / "ml-1m.zip"
    archive.write_bytes(GOOD_ZIP)
    (data_dir / "ml-1m.zip.md5").write_text("0" * 32 + "  ml-1m.zip\n")
    with pytest.raises(ArchiveError, match="MD5 checksum mismatch"):
        fetch_release("ml-1m", data_dir, download=False)
    assert archive.read_bytes() == GOOD_ZIP
    assert not (data_dir / "ml-1m").exists()


def test_extraction_does_not_overwrite_existing_files(server, data_dir):
    folder = data_dir / "ml-1m"
    folder.mkdir()
    (folder / "movies.dat").write_text("my own movies\n")
    server.serve(GOOD_ZIP)
    assert fetch(server, data_dir) == folder
    assert (folder / "movies.dat").read_text() == "my own movies\n"
    assert (folder / "ratings.dat").read_text() == RATINGS


def test_alternative_ratings_file_counts_as_present(server, data_dir):
    folder = data_dir / "ml-1m"
    folder.mkdir()
    (folder / "movies.dat").write_text(MOVIES)
    assert not is_release_present(ML1M, folder)
    (folder / "sequences.txt").write_text("1 1 2\n")
    assert is_release_present(ML1M, folder)
    assert fetch(server, data_dir) == folder
    assert server.requests == []


@pytest.mark.parametrize("evil", ["ml-1m/../../evil.txt", "/etc/evil.txt", "ml-1m\\..\\..\\evil.txt"])
def test_zip_slip_member_rejected(tmp_path, evil):
    archive = tmp_path / "ml-1m.zip"
    archive.write_bytes(make_zip({"ml-1m/movies.dat": MOVIES, "ml-1m/ratings.dat": RATINGS, evil: "pwned"}))
    with pytest.raises(ArchiveError, match="unsafe"):
        verify_archive(archive, ML1M, None)
    dest = tmp_path / "out" / "ml-1m"
    dest.parent.mkdir()
    with pytest.raises(ArchiveError, match="unsafe"):
        extract_release(archive, ML1M, dest)
    assert not list(tmp_path.rglob("evil.txt"))
    assert list((tmp_path / "out").iterdir()) == []  # nothing moved in, temp folder removed


def test_corrupt_member_detected(tmp_path):
    data = bytearray(GOOD_ZIP)
    start = data.find(b"ml-1m/ratings.dat") + len("ml-1m/ratings.dat")  # first local header's data follows
    data[start + 2] ^= 0xFF
    archive = tmp_path / "ml-1m.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        verify_archive(archive, ML1M, None)


@pytest.mark.parametrize(
    "text",
    [
        "MD5 (ml-1m.zip) = C4D9EECFCA2AB87C1945AFE126590906\n",
        "c4d9eecfca2ab87c1945afe126590906  ml-1m.zip\n",
        "c4d9eecfca2ab87c1945afe126590906 *ml-1m.zip",
        "  c4d9eecfca2ab87c1945afe126590906\n",
    ],
)
def test_md5_formats_parsed(text):
    assert parse_md5(text) == "c4d9eecfca2ab87c1945afe126590906"


@pytest.mark.parametrize(
    "text", ["", "<html>404</html>", "c4d9eecf", "MD5 (ml-1m.zip) = xyz", "c4d9eecfca2ab87c1945afe1265909060"]
)
def test_md5_garbage_rejected(text):
    with pytest.raises(ArchiveError, match="not an MD5"):
        parse_md5(text)


def test_md5sum_and_download_archive(server, data_dir):
    server.serve(GOOD_ZIP)
    archive = download_archive(ML1M, data_dir, base_url=server.base_url, progress=False, timeout=5)
    assert archive == data_dir / "ml-1m.zip"
    assert md5sum(archive) == hashlib.md5(GOOD_ZIP).hexdigest()
    assert not (data_dir / "ml-1m").exists()  # download only, no extraction


def test_garbage_cached_md5_is_reported_and_kept(data_dir):
    (data_dir / "ml-1m.zip").write_bytes(GOOD_ZIP)
    md5_file = data_dir / "ml-1m.zip.md5"
    md5_file.write_text("garbage")
    with pytest.raises(ArchiveError, match="checksum file"):
        fetch_release("ml-1m", data_dir, download=False)
    assert md5_file.read_text() == "garbage" and (data_dir / "ml-1m.zip").read_bytes() == GOOD_ZIP


def test_downloaded_and_extracted_files_have_normal_permissions(server, data_dir):
    import stat

    server.serve(GOOD_ZIP)
    umask = os.umask(0o022)
    try:
        folder = fetch(server, data_dir)
    finally:
        os.umask(umask)
    assert stat.S_IMODE((data_dir / "ml-1m.zip").stat().st_mode) == 0o644  # not the temporary file's 0600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o644}
