"""Fetching registered files from a mirror or a local HTTP server, with git blob id checks."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from xlt.data import fetch as fetch_module
from xlt.data.fetch import (
    BlobMismatchError,
    fetch_entry,
    git_blob_id,
    git_blob_id_of_bytes,
    local_path_of_target,
    main,
)
from xlt.data.registry import REGISTRY_COLUMNS, RegistryEntry

COMMIT = "c" * 40
CONTENT = b"1\tIl-kelb\n"


def make_entry(content: bytes = CONTENT, path: str = "data/mt.txt") -> RegistryEntry:
    return RegistryEntry("org", "repo", COMMIT, path, len(content), git_blob_id_of_bytes(content))


def make_mirror(tmp_path: Path, entry: RegistryEntry, content: bytes) -> Path:
    mirror = tmp_path / "mirror"
    target = mirror / entry.local_path
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    return mirror


def test_git_blob_id_known_values(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    hello = tmp_path / "hello"
    hello.write_bytes(b"hello\n")
    assert git_blob_id(empty) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_id(hello) == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert git_blob_id_of_bytes(b"hello\n") == git_blob_id(hello)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_blob_id_matches_git_hash_object(tmp_path):
    path = tmp_path / "utf8.txt"
    path.write_bytes("Ħal Qormi\r\n".encode() * 1000)
    expected = subprocess.run(
        ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
    )
    assert git_blob_id(path) == expected.stdout.strip()


def test_copy_from_mirror(tmp_path):
    entry = make_entry()
    mirror = make_mirror(tmp_path, entry, CONTENT)
    target = fetch_entry(entry, tmp_path / "resources", mirror=mirror)
    assert target == tmp_path / "resources" / "github/org/repo/data/mt.txt"
    assert target.read_bytes() == CONTENT
    assert not target.is_symlink()
    assert [path.name for path in target.parent.iterdir()] == ["mt.txt"]


def test_link_from_mirror(tmp_path):
    entry = make_entry()
    mirror = make_mirror(tmp_path, entry, CONTENT)
    target = fetch_entry(entry, tmp_path / "resources", mirror=mirror, link=True)
    assert target.is_symlink()
    assert target.resolve() == (mirror / entry.local_path).resolve()


def test_mirror_never_uses_network(tmp_path):
    entry = make_entry()
    mirror = make_mirror(tmp_path, entry, CONTENT)

    def forbidden_opener(*args, **kwargs):
        raise AssertionError("the network was used although a mirror was given")

    fetch_entry(entry, tmp_path / "resources", mirror=mirror, opener=forbidden_opener)


@pytest.mark.parametrize("link", [False, True])
def test_mirror_mismatch_deletes_file_and_names_both_ids(tmp_path, link):
    entry = make_entry()
    mirror = make_mirror(tmp_path, entry, b"tampered\n")
    root = tmp_path / "resources"
    with pytest.raises(BlobMismatchError) as raised:
        fetch_entry(entry, root, mirror=mirror, link=link)
    message = str(raised.value)
    assert entry.git_blob in message
    assert git_blob_id_of_bytes(b"tampered\n") in message
    target = root / entry.local_path
    assert not target.exists()
    assert not target.is_symlink()
    if target.parent.exists():
        assert list(target.parent.iterdir()) == []
    assert (mirror / entry.local_path).read_bytes() == b"tampered\n"


def test_mirror_missing_file(tmp_path):
    entry = make_entry()
    (tmp_path / "mirror").mkdir()
    with pytest.raises(FileNotFoundError, match="missing from the data mirror"):
        fetch_entry(entry, tmp_path / "resources", mirror=tmp_path / "mirror")


def test_present_file_is_kept(tmp_path):
    entry = make_entry()
    mirror = make_mirror(tmp_path, entry, CONTENT)
    target = fetch_entry(entry, tmp_path / "resources", mirror=mirror)
    before = target.stat().st_mtime_ns
    (mirror / entry.local_path).unlink()  # a second fetch must not need the mirror
    assert fetch_entry(entry, tmp_path / "resources", mirror=mirror).stat().st_mtime_ns == before


def test_stale_file_is_replaced(tmp_path):
    entry = make_entry()
    mirror = make_mirror(tmp_path, entry, CONTENT)
    target = tmp_path / "resources" / entry.local_path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old version\n")
    fetch_entry(entry, tmp_path / "resources", mirror=mirror)
    assert target.read_bytes() == CONTENT


class FileServer:
    """An HTTP server on 127.0.0.1 serving fixed bytes per URL path, failing on request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.failures_left = 0
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if server.failures_left > 0:
                    server.failures_left -= 1
                    self.send_error(503)
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    def serve(self, entry: RegistryEntry, content: bytes) -> None:
        self.files[f"/{entry.org}/{entry.repo}/{entry.commit}/{entry.path}"] = content


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr(fetch_module.time, "sleep", lambda seconds: None)


def test_download(tmp_path, file_server):
    entry = make_entry()
    file_server.serve(entry, CONTENT)
    target = fetch_entry(entry, tmp_path / "resources", base_url=file_server.base_url, timeout=5)
    assert target.read_bytes() == CONTENT
    assert file_server.requests == [f"/org/repo/{COMMIT}/data/mt.txt"]


def test_download_mismatch_deletes_file(tmp_path, file_server):
    entry = make_entry()
    file_server.serve(entry, b"changed upstream\n")
    with pytest.raises(BlobMismatchError) as raised:
        fetch_entry(entry, tmp_path / "resources", base_url=file_server.base_url, timeout=5)
    assert raised.value.expected == entry.git_blob
    assert raised.value.actual == git_blob_id_of_bytes(b"changed upstream\n")
    assert file_server.base_url in str(raised.value)
    folder = tmp_path / "resources" / "github/org/repo/data"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_download_retries_server_errors(tmp_path, file_server, no_sleep):
    entry = make_entry()
    file_server.serve(entry, CONTENT)
    file_server.failures_left = 2
    target = fetch_entry(
        entry, tmp_path / "resources", base_url=file_server.base_url, timeout=5, retries=2
    )
    assert target.read_bytes() == CONTENT
    assert len(file_server.requests) == 3


def test_download_gives_up_after_retries(tmp_path, file_server, no_sleep):
    entry = make_entry()
    file_server.serve(entry, CONTENT)
    file_server.failures_left = 5
    with pytest.raises(OSError, match="HTTP 503"):
        fetch_entry(
            entry, tmp_path / "resources", base_url=file_server.base_url, timeout=5, retries=1
        )
    assert len(file_server.requests) == 2


def test_download_not_found_is_not_retried(tmp_path, file_server, no_sleep):
    with pytest.raises(OSError, match="HTTP 404"):
        fetch_entry(make_entry(), tmp_path / "resources", base_url=file_server.base_url, timeout=5)
    assert len(file_server.requests) == 1


def test_local_path_of_target(tmp_path):
    root = tmp_path / "resources"
    assert local_path_of_target("github/o/r/x.txt", root) == "github/o/r/x.txt"
    assert local_path_of_target(root / "github/o/r/x.txt", root) == "github/o/r/x.txt"
    with pytest.raises(ValueError, match="neither under the root folder"):
        local_path_of_target(tmp_path / "elsewhere/x.txt", root)


def test_cli_fetches_targets_from_mirror(tmp_path):
    entry = make_entry()
    mirror = make_mirror(tmp_path, entry, CONTENT)
    registry = tmp_path / "registry.tsv"
    registry.write_text(
        "\t".join(REGISTRY_COLUMNS)
        + "\n"
        + "\t".join(
            [entry.org, entry.repo, entry.commit, entry.path, str(entry.bytes), entry.git_blob]
        )
        + "\n",
        encoding="utf-8",
    )
    root = tmp_path / "resources"
    target = root / entry.local_path
    arguments = [
        "--registry",
        str(registry),
        "--root",
        str(root),
        "--mirror",
        str(mirror),
        str(target),
    ]
    assert main(arguments) == 0
    assert target.read_bytes() == CONTENT

    (mirror / entry.local_path).write_bytes(b"tampered\n")
    target.unlink()
    assert main(arguments) == 1
    assert not target.exists()
    assert (
        main(["--registry", str(registry), "--root", str(root), "github/org/repo/unknown.txt"]) == 2
    )
