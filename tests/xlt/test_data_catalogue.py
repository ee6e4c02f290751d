"""Language catalogue: the committed file, alias resolution and validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from xlt.data.catalogue import DEFAULT_CATALOGUE, load_catalogue, main
from xlt.data.errors import DataFormatError
from xlt.data.registry import DEFAULT_EXTRA_REGISTRY, DEFAULT_REGISTRY, read_registries

REPO_ROOT = Path(__file__).resolve().parents[2]

UD_TARGETS = [
    "ar",
    "bm",
    "bxr",
    "yue",
    "zh",
    "myv",
    "fo",
    "kpv",
    "olo",
    "mt",
    "gv",
    "sa",
    "hsb",
    "ug",
    "cop",
    "sme",
    "ta",
    "wo",
    "yo",
    "hy",
    "de",
    "pcm",
]
NER_TARGETS = ["amh", "hau", "ibo", "kin", "lug", "luo", "pcm", "swa", "wol", "yor"]
NLI_TARGETS = ["aym", "bzd", "cni", "gn", "hch", "nah", "oto", "quy", "shp", "tar"]

# Start of a catalogue entry, before the keys under test.
ENTRY = "  xx:\n    name: X\n"


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(REPO_ROOT / DEFAULT_CATALOGUE)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "languages.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_committed_catalogue_covers_targets(catalogue):
    for code in ["en", *UD_TARGETS, *NER_TARGETS, *NLI_TARGETS]:
        assert catalogue[code].name


def test_committed_catalogue_paths_are_registered(catalogue):
    catalogue.check_registry(
        read_registries(REPO_ROOT / DEFAULT_REGISTRY, REPO_ROOT / DEFAULT_EXTRA_REGISTRY)
    )


def test_two_codes_share_one_corpus(catalogue):
    assert catalogue.corpus_language("wo") == "wol"
    assert catalogue.corpus_language("yo") == "yor"
    assert catalogue.corpus_members("wo") == ["wol", "wo"]
    assert catalogue.text_sources("wo") == catalogue.text_sources("wol")
    test_datasets = {dataset.name for dataset, _ in catalogue.test_files("wol")}
    assert test_datasets == {"MasakhaNER", "UD_Wolof-WTB"}


def test_naija_tests_from_both_tasks(catalogue):
    names = {dataset.name for dataset, _ in catalogue.test_files("pcm")}
    assert names == {"MasakhaNER", "UD_Naija-NSC"}


def test_languages_without_text(catalogue):
    without = {language.code for language in catalogue if not catalogue.text_sources(language.code)}
    multi_source = {"cs", "el", "et", "eu", "fa", "fr", "hi", "ja", "ko", "ru", "tr", "vi"}
    assert without == {"bxr", "olo", "sa", "oto", *multi_source}
    for code in without:
        assert catalogue[code].text_note


def test_faroese_lists_both_treebanks(catalogue):
    assert [dataset.name for dataset in catalogue["fo"].datasets_of("ud")] == [
        "UD_Faroese-OFT",
        "UD_Faroese-FarPaHC",
    ]
    assert [dataset.name for dataset in catalogue["kpv"].datasets_of("ud")] == [
        "UD_Komi_Zyrian-IKDP",
        "UD_Komi_Zyrian-Lattice",
    ]


def test_masakhaner_maps_date(catalogue):
    for code in NER_TARGETS:
        (dataset,) = catalogue[code].datasets_of("ner")
        assert dataset.type_map == {"DATE": "O"}


def test_unknown_language_lists_known_codes(catalogue):
    with pytest.raises(KeyError, match="language 'xx' is not in the catalogue"):
        catalogue["xx"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  xx:\n    name: X\n    colour: red\n", r"languages\.xx: unknown keys \['colour'\]"),
        ("  xx:\n    text: []\n", r"languages\.xx: missing language name"),
        (
            ENTRY + "    text:\n      - {path: github/o/r/a.txt, reader: html}\n",
            r"languages\.xx\.text\[0\]\.reader: 'html' is not a text reader",
        ),
        (
            ENTRY + "    text:\n      - {path: /etc/passwd, reader: plain}\n",
            r"languages\.xx\.text\[0\]\.path: expected a path of the form github/",
        ),
        (
            ENTRY + "    text:\n      - {path: github/o/r/a.json, reader: lafand_jsonl}\n",
            r"reader 'lafand_jsonl' takes the options \['field'\]",
        ),
        (
            ENTRY + "    ud:\n      - {dataset: T, splits: {training: github/o/r/a.conllu}}\n",
            r"unknown split 'training'",
        ),
        (
            ENTRY + "    nli:\n      - {dataset: T, splits: {test: github/o/r/a.tsv}}\n",
            r"languages\.xx\.nli\[0\]\.format: None is not a nli format",
        ),
        (
            ENTRY
            + "    ner:\n      - {dataset: T, type_map: {DATE: TIME}, splits: {dev: github/}}\n",
            r"type_map: type_map maps 'DATE' to 'TIME'",
        ),
        (
            "  xx:\n    name: X\n    text_from: zz\n",
            r"text_from names 'zz', which is not a language",
        ),
    ],
)
def test_invalid_entries_name_the_key(tmp_path, body, message):
    path = write(tmp_path, "languages:\n" + body)
    with pytest.raises(DataFormatError, match=message) as raised:
        load_catalogue(path)
    assert raised.value.path == path


def test_invalid_yaml_names_line(tmp_path):
    path = write(tmp_path, "languages:\n  xx:\n    name: [unclosed\n")
    with pytest.raises(DataFormatError, match="invalid YAML") as raised:
        load_catalogue(path)
    assert raised.value.line is not None


def test_alias_of_alias_is_rejected(tmp_path):
    text = (
        "languages:\n"
        "  aa:\n    name: A\n    text:\n      - {path: github/o/r/a.txt, reader: plain}\n"
        "  bb:\n    name: B\n    text_from: aa\n"
        "  cc:\n    name: C\n    text_from: bb\n"
    )
    with pytest.raises(
        DataFormatError, match=r"languages\.cc\.text_from must name a language with its own text"
    ):
        load_catalogue(write(tmp_path, text))


@pytest.mark.data
def test_cli_checks_files_in_mirror(data_mirror, capsys):
    arguments = [
        "--catalogue",
        str(REPO_ROOT / DEFAULT_CATALOGUE),
        "--registry",
        str(REPO_ROOT / DEFAULT_REGISTRY),
        "--extra-registry",
        str(REPO_ROOT / DEFAULT_EXTRA_REGISTRY),
    ]
    assert main([*arguments, "--root", str(data_mirror)]) == 0
    output = capsys.readouterr().out
    assert "wo\tWolof\tud\tshares wol" in output
    assert "bxr\tBuryat\tud\tnone" in output
