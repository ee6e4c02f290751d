"""Data registry: reading, validation with file and line, and generation from a manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from xlt.data.errors import DataFormatError
from xlt.data.registry import (
    DEFAULT_REGISTRY,
    REGISTRY_COLUMNS,
    RegistryEntry,
    main,
    read_registry,
    write_registry,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
HEADER = "\t".join(REGISTRY_COLUMNS)
COMMIT = "a" * 40
BLOB = "b" * 40
ROW = f"UniversalDependencies\tUD_Maltese-MUDT\t{COMMIT}\tmt_mudt-ud-test.conllu\t12\t{BLOB}"


def write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "registry.tsv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_entry_paths_and_url(tmp_path):
    entry = read_registry(write(tmp_path, ROW)).get(
        "github/UniversalDependencies/UD_Maltese-MUDT/mt_mudt-ud-test.conllu"
    )
    assert entry.bytes == 12
    assert entry.url() == (
        f"https://raw.githubusercontent.com/UniversalDependencies/UD_Maltese-MUDT/{COMMIT}/"
        "mt_mudt-ud-test.conllu"
    )


def test_url_quotes_path():
    entry = RegistryEntry("o", "r", COMMIT, "dir/a file#1.txt", 1, BLOB)
    assert (
        entry.url("http://127.0.0.1:8000/")
        == f"http://127.0.0.1:8000/o/r/{COMMIT}/dir/a%20file%231.txt"
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (ROW.replace(COMMIT, "abc"), "invalid commit 'abc'"),
        (ROW.replace(BLOB, "B" * 40), "invalid git_blob"),
        (ROW.replace("\t12\t", "\t-1\t"), "invalid bytes '-1'"),
        (ROW.replace("mt_mudt-ud-test.conllu", "../secret"), "invalid path '../secret'"),
        (ROW.replace("mt_mudt-ud-test.conllu", "/etc/passwd"), "invalid path '/etc/passwd'"),
        (ROW.replace("UD_Maltese-MUDT", "UD Maltese"), "invalid repo 'UD Maltese'"),
        (ROW + "\textra", "expected 6 tab-separated columns"),
    ],
)
def test_invalid_row_names_line(tmp_path, row, message):
    path = write(tmp_path, ROW.replace("test", "dev"), row)
    with pytest.raises(DataFormatError, match=message) as raised:
        read_registry(path)
    assert raised.value.line == 3


def test_invalid_header(tmp_path):
    with pytest.raises(DataFormatError, match="invalid header") as raised:
        read_registry(write(tmp_path, ROW, header="org\trepo"))
    assert raised.value.line == 1


def test_duplicate_path_names_first_line(tmp_path):
    with pytest.raises(DataFormatError, match="already registered on line 2") as raised:
        read_registry(write(tmp_path, ROW, ROW))
    assert raised.value.line == 3


def test_unknown_path_lookup_explains(tmp_path):
    registry = read_registry(write(tmp_path, ROW))
    with pytest.raises(KeyError, match="is not in the registry"):
        registry.get("github/x/y/z.txt")


def test_write_then_read_round_trip(tmp_path):
    entries = [
        RegistryEntry("b", "r", COMMIT, "z.txt", 3, BLOB),
        RegistryEntry("a", "r", COMMIT, "dir/y.txt", 0, BLOB),
    ]
    path = tmp_path / "out" / "registry.tsv"
    assert write_registry(entries, path) == 2
    assert [entry.local_path for entry in read_registry(path)] == [
        "github/a/r/dir/y.txt",
        "github/b/r/z.txt",
    ]


def test_cli_generates_registry_from_manifest(tmp_path):
    manifest = write(tmp_path, ROW)
    output = tmp_path / "generated.tsv"
    assert main(["--from-manifest", str(manifest), "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == manifest.read_text(encoding="utf-8")
    assert main(["--check", str(output)]) == 0


def test_committed_registry_is_valid():
    registry = read_registry(REPO_ROOT / DEFAULT_REGISTRY)
    assert len(registry) > 300
    assert "github/UniversalDependencies/UD_English-EWT/en_ewt-ud-train.conllu" in registry


@pytest.mark.data
def test_committed_registry_matches_mirror_manifest(data_mirror):
    committed = {entry.local_path: entry for entry in read_registry(REPO_ROOT / DEFAULT_REGISTRY)}
    manifest = {entry.local_path: entry for entry in read_registry(data_mirror / "MANIFEST.tsv")}
    assert committed == manifest
