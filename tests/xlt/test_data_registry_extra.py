"""The extra registry of files outside the data mirror: tags, unknown values, union with the main one."""

from __future__ import annotations

from pathlib import Path

import pytest

from xlt.data.catalogue import DEFAULT_CATALOGUE, load_catalogue
from xlt.data.errors import DataFormatError
from xlt.data.registry import (
    DEFAULT_EXTRA_REGISTRY,
    DEFAULT_REGISTRY,
    REGISTRY_COLUMNS,
    UNKNOWN,
    main,
    read_registries,
    read_registry,
    write_registry,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
HEADER = "\t".join(REGISTRY_COLUMNS)
COMMIT = "a" * 40
BLOB = "b" * 40
TAG_ROW = "UniversalDependencies\tUD_Arabic-PADT\tr2.7\tar_padt-ud-test.conllu\t-\t-"
PINNED_ROW = f"UniversalDependencies\tUD_Maltese-MUDT\t{COMMIT}\tmt_mudt-ud-test.conllu\t12\t{BLOB}"
ARABIC = "github/UniversalDependencies/UD_Arabic-PADT/ar_padt-ud-test.conllu"


def write(tmp_path: Path, *lines: str, name: str = "registry-extra.tsv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_extra_row_with_tag_and_unknown_values(tmp_path):
    registry = read_registry(write(tmp_path, "# a comment", HEADER, TAG_ROW), extra=True)
    entry = registry.get(ARABIC)

    assert entry.commit == "r2.7"
    assert entry.bytes is None
    assert entry.git_blob is None
    assert entry.in_mirror is False
    assert entry.url() == (
        "https://raw.githubusercontent.com/UniversalDependencies/UD_Arabic-PADT/r2.7/"
        "ar_padt-ud-test.conllu"
    )


def test_main_registry_rejects_tag_and_unknowns(tmp_path):
    path = write(tmp_path, HEADER, TAG_ROW, name="registry.tsv")
    with pytest.raises(DataFormatError, match="invalid commit 'r2.7': expected 40 lowercase hex digits$"):
        read_registry(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (TAG_ROW.replace("r2.7", "r2/7"), "invalid commit 'r2/7'.*or a tag name"),
        (TAG_ROW.replace("\t-\t-", "\t-\tunknown"), "invalid git_blob 'unknown'.*or '-'"),
        (TAG_ROW.replace("\t-\t-", "\t?\t-"), "invalid bytes '\\?'.*or '-'"),
    ],
)
def test_invalid_extra_rows_name_line(tmp_path, row, message):
    path = write(tmp_path, "# comment", HEADER, row)
    with pytest.raises(DataFormatError, match=message) as raised:
        read_registry(path, extra=True)
    assert raised.value.line == 3


def test_comment_before_header_keeps_line_numbers(tmp_path):
    path = write(tmp_path, "# one", "# two", "org\trepo")
    with pytest.raises(DataFormatError, match="invalid header") as raised:
        read_registry(path)
    assert raised.value.line == 3


def test_union_marks_mirror_entries(tmp_path):
    main_registry = write(tmp_path, HEADER, PINNED_ROW, name="registry.tsv")
    extra_registry = write(tmp_path, HEADER, TAG_ROW)

    registry = read_registries(main_registry, extra_registry)

    assert len(registry) == 2
    assert registry.get(ARABIC).in_mirror is False
    assert registry.get("github/UniversalDependencies/UD_Maltese-MUDT/mt_mudt-ud-test.conllu").in_mirror


def test_union_rejects_path_in_both(tmp_path):
    main_registry = write(tmp_path, HEADER, PINNED_ROW, name="registry.tsv")
    extra_registry = write(tmp_path, HEADER, PINNED_ROW)
    with pytest.raises(DataFormatError, match="1 paths are also in the registry"):
        read_registries(main_registry, extra_registry)


def test_write_keeps_unknown_values(tmp_path):
    entries = list(read_registry(write(tmp_path, HEADER, TAG_ROW), extra=True))
    path = tmp_path / "written.tsv"
    write_registry(entries, path)

    assert path.read_text(encoding="utf-8").splitlines()[1].endswith(f"\t{UNKNOWN}\t{UNKNOWN}")
    assert list(read_registry(path, extra=True)) == entries


def test_cli_checks_extra_registry(tmp_path):
    path = write(tmp_path, HEADER, TAG_ROW)
    assert main(["--check", str(path), "--extra"]) == 0
    with pytest.raises(DataFormatError):
        main(["--check", str(path)])


def test_committed_extra_registry_pins_ud_release():
    registry = read_registry(REPO_ROOT / DEFAULT_EXTRA_REGISTRY, extra=True)
    entries = list(registry)

    assert {entry.commit for entry in entries} == {"r2.7"}
    assert {entry.org for entry in entries} == {"UniversalDependencies"}
    assert ARABIC in registry
    assert "github/UniversalDependencies/UD_Chinese-GSD/zh_gsd-ud-test.conllu" in registry
    for entry in entries:
        treebank = entry.path.split("-ud-")[0]
        assert entry.repo.startswith("UD_"), entry.repo
        assert entry.path.endswith(".conllu"), entry.path
        assert "_" in treebank, entry.path


def test_committed_registries_are_disjoint_and_main_is_pinned():
    registry = read_registries(REPO_ROOT / DEFAULT_REGISTRY, REPO_ROOT / DEFAULT_EXTRA_REGISTRY)
    main_entries = [entry for entry in registry if entry.in_mirror]

    assert main_entries
    assert all(entry.git_blob is not None and entry.bytes is not None for entry in main_entries)


def test_catalogue_paths_outside_mirror_are_extra():
    catalogue = load_catalogue(REPO_ROOT / DEFAULT_CATALOGUE)
    main_registry = read_registry(REPO_ROOT / DEFAULT_REGISTRY)
    extra_registry = read_registry(REPO_ROOT / DEFAULT_EXTRA_REGISTRY, extra=True)

    outside = {path for path in catalogue.paths() if path not in main_registry}

    assert outside
    assert outside <= {entry.local_path for entry in extra_registry}
    assert ARABIC in outside
