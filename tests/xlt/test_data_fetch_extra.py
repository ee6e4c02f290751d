"""Fetching files of the extra registry: recorded blob ids of unpinned rows, and no mirror for them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_data_fetch import FileServer

from xlt.data import fetch as fetch_module
from xlt.data.fetch import (
    BlobMismatchError,
    NotInMirrorError,
    fetch_entry,
    git_blob_id_of_bytes,
    main,
    read_record,
    record_path,
)
from xlt.data.registry import EXTRA_REGISTRY_NAME, REGISTRY_COLUMNS, RegistryEntry

CONTENT = b"# sent_id = 1\n1\tx\n"
PINNED = b"1\tIl-kelb\n"


def extra_entry(path: str = "ar_padt-ud-test.conllu", blob: str | None = None) -> RegistryEntry:
    return RegistryEntry("UniversalDependencies", "UD_Arabic-PADT", "r2.7", path, None, blob, in_mirror=False)


def mirror_entry() -> RegistryEntry:
    return RegistryEntry("org", "repo", "c" * 40, "data/mt.txt", len(PINNED), git_blob_id_of_bytes(PINNED))


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(fetch_module.time, "sleep", lambda seconds: None)


def test_unpinned_download_writes_record(tmp_path, file_server, caplog):
    entry = extra_entry()
    file_server.serve(entry, CONTENT)

    with caplog.at_level("WARNING", logger="xlt.data.fetch"):
        target = fetch_entry(entry, tmp_path, base_url=file_server.base_url, timeout=5)

    assert target.read_bytes() == CONTENT
    record = read_record(target)
    assert record["git_blob"] == git_blob_id_of_bytes(CONTENT)
    assert record["bytes"] == len(CONTENT)
    assert record["commit"] == "r2.7"
    assert record["url"].endswith("/UniversalDependencies/UD_Arabic-PADT/r2.7/ar_padt-ud-test.conllu")
    assert git_blob_id_of_bytes(CONTENT) in caplog.text
    assert "without verification" in caplog.text


def test_recorded_file_is_kept(tmp_path, file_server):
    entry = extra_entry()
    file_server.serve(entry, CONTENT)
    target = fetch_entry(entry, tmp_path, base_url=file_server.base_url, timeout=5)
    before = target.stat().st_mtime_ns

    fetch_entry(entry, tmp_path, base_url=file_server.base_url, timeout=5)

    assert len(file_server.requests) == 1
    assert target.stat().st_mtime_ns == before


def test_later_download_verified_against_record(tmp_path, file_server):
    entry = extra_entry()
    file_server.serve(entry, CONTENT)
    target = fetch_entry(entry, tmp_path, base_url=file_server.base_url, timeout=5)
    target.unlink()
    file_server.serve(entry, b"changed upstream\n")

    with pytest.raises(BlobMismatchError) as raised:
        fetch_entry(entry, tmp_path, base_url=file_server.base_url, timeout=5)

    message = str(raised.value)
    assert raised.value.expected == git_blob_id_of_bytes(CONTENT)
    assert str(record_path(target)) in message
    assert "delete" in message
    assert not target.exists()
    assert record_path(target).is_file()


def test_changed_file_on_disk_is_downloaded_again(tmp_path, file_server):
    entry = extra_entry()
    file_server.serve(entry, CONTENT)
    target = fetch_entry(entry, tmp_path, base_url=file_server.base_url, timeout=5)
    target.write_bytes(b"edited by hand\n")

    fetch_entry(entry, tmp_path, base_url=file_server.base_url, timeout=5)

    assert target.read_bytes() == CONTENT
    assert len(file_server.requests) == 2


def test_pinned_extra_row_needs_no_record(tmp_path, file_server):
    entry = extra_entry(blob=git_blob_id_of_bytes(CONTENT))
    file_server.serve(entry, CONTENT)

    target = fetch_entry(entry, tmp_path, base_url=file_server.base_url, timeout=5)

    assert target.read_bytes() == CONTENT
    assert not record_path(target).exists()


def test_extra_file_is_not_read_from_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    entry = extra_entry()

    with pytest.raises(NotInMirrorError, match="not in the data mirror") as raised:
        fetch_entry(entry, tmp_path / "resources", mirror=mirror)

    assert "without --mirror" in str(raised.value)
    assert isinstance(raised.value, FileNotFoundError)


def test_fetched_extra_file_is_accepted_with_mirror(tmp_path, file_server):
    entry = extra_entry()
    file_server.serve(entry, CONTENT)
    root = tmp_path / "resources"
    target = fetch_entry(entry, root, base_url=file_server.base_url, timeout=5)
    mirror = tmp_path / "mirror"
    mirror.mkdir()

    assert fetch_entry(entry, root, mirror=mirror, link=True) == target
    assert target.read_bytes() == CONTENT


def test_invalid_record_names_file(tmp_path):
    entry = extra_entry()
    target = tmp_path / entry.local_path
    target.parent.mkdir(parents=True)
    target.write_bytes(CONTENT)
    record_path(target).write_text("{not json", encoding="utf-8")

    with pytest.raises(ValueError, match="invalid record") as raised:
        fetch_entry(entry, tmp_path, base_url="http://127.0.0.1:9", timeout=1, retries=0)
    assert str(record_path(target)) in str(raised.value)


def write_registries(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    header = "\t".join(REGISTRY_COLUMNS)
    pinned = mirror_entry()
    main_row = "\t".join(
        [pinned.org, pinned.repo, pinned.commit, pinned.path, str(pinned.bytes), pinned.git_blob]
    )
    (folder / "registry.tsv").write_text(f"{header}\n{main_row}\n", encoding="utf-8")
    extra_row = "UniversalDependencies\tUD_Arabic-PADT\tr2.7\tar_padt-ud-test.conllu\t-\t-"
    (folder / EXTRA_REGISTRY_NAME).write_text(f"# outside\n{header}\n{extra_row}\n", encoding="utf-8")
    return folder / "registry.tsv"


def test_cli_finds_extra_registry_beside_main(tmp_path, file_server):
    registry = write_registries(tmp_path / "configs")
    file_server.serve(extra_entry(), CONTENT)
    root = tmp_path / "resources"
    target = root / extra_entry().local_path

    arguments = ["--registry", str(registry), "--root", str(root), "--base-url", file_server.base_url]
    assert main([*arguments, str(target)]) == 0

    assert target.read_bytes() == CONTENT
    assert json.loads(record_path(target).read_text())["bytes"] == len(CONTENT)


def test_cli_mirror_refuses_extra_file(tmp_path, caplog):
    registry = write_registries(tmp_path / "configs")
    mirror = tmp_path / "mirror"
    mirror.mkdir()

    code = main(
        [
            "--registry", str(registry),
            "--root", str(tmp_path / "resources"),
            "--mirror", str(mirror),
            extra_entry().local_path,
        ]
    )

    assert code == 1
    assert "not in the data mirror" in caplog.text


def test_cli_all_with_mirror_skips_extra_files(tmp_path):
    registry = write_registries(tmp_path / "configs")
    pinned = mirror_entry()
    mirror = tmp_path / "mirror"
    (mirror / pinned.local_path).parent.mkdir(parents=True)
    (mirror / pinned.local_path).write_bytes(PINNED)
    root = tmp_path / "resources"

    assert main(["--registry", str(registry), "--root", str(root), "--mirror", str(mirror), "--all"]) == 0

    assert (root / pinned.local_path).read_bytes() == PINNED
    assert not (root / extra_entry().local_path).exists()
