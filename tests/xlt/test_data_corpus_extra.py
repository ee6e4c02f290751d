"""Extra text sources of a corpus (a Wikipedia export): the same cleaning and leak filter."""

from __future__ import annotations

import json
import shutil

import pytest
from test_data_corpus import CATALOGUE, MORE, NER_RAW, NEWS, NLI_PREMISE, SNIPPETS, UD_TEXT, options

from xlt.data.corpus import build_corpus, main, parse_extra_source
from xlt.data.fetch import git_blob_id

WIKI = [
    "A Wikipedia paragraph about the sea.",
    UD_TEXT,  # a UD test sentence
    f"{NER_RAW} The paragraph goes on.",  # contains a NER test sentence
    "A Wikipedia paragraph about the sea.",  # duplicate
    f"Another paragraph quotes {NLI_PREMISE}",  # contains an NLI test premise of the second code
    "Final clean sentence.",  # also in the catalogue source news.txt
]


@pytest.fixture
def snippet_root(tmp_path):
    """The test files and catalogue of test_data_corpus: languages xx and yy sharing a corpus."""
    root = tmp_path / "root"
    files = {
        "github/t/ud/test.conllu": SNIPPETS / "sample.conllu",
        "github/t/ner/test.txt": SNIPPETS / "sample_ner.txt",
        "github/t/nli/test.tsv": SNIPPETS / "sample_americasnli.tsv",
    }
    for relative, source in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / relative)
    (root / "github/t/text").mkdir(parents=True)
    (root / "github/t/text/news.txt").write_text("\n".join(NEWS) + "\n", encoding="utf-8")
    (root / "github/t/text/more.txt").write_text("\n".join(MORE) + "\n", encoding="utf-8")
    (tmp_path / "languages.yaml").write_text(CATALOGUE, encoding="utf-8")
    return root


@pytest.fixture
def wiki_file(tmp_path):
    path = tmp_path / "export" / "xx.txt"
    path.parent.mkdir()
    path.write_text("\n".join(WIKI) + "\n", encoding="utf-8")
    return path


def test_extra_source_replaces_catalogue_sources(snippet_root, wiki_file):
    texts, report = build_corpus(
        options(snippet_root, extra_sources=[f"plain:{wiki_file}"], catalogue_sources=False)
    )

    assert texts == ["A Wikipedia paragraph about the sea.", "Final clean sentence."]
    (source,) = report["sources"]
    assert source["path"] == str(wiki_file)
    assert source["git_blob"] == git_blob_id(wiki_file)
    assert source["dropped"]["duplicate"] == 1
    assert source["dropped"]["leaked_exact"] == 1
    assert source["dropped"]["leaked_contains_test"] == 2
    assert report["provenance"]["catalogue_sources"] is False
    assert report["provenance"]["extra_sources"] == [f"plain:{wiki_file}"]


def test_extra_source_follows_catalogue_sources(snippet_root, wiki_file):
    texts, report = build_corpus(options(snippet_root, extra_sources=[f"plain:{wiki_file}"]))

    assert [source["path"] for source in report["sources"]][-1] == str(wiki_file)
    assert texts[-1] == "A Wikipedia paragraph about the sea."
    assert texts.count("Final clean sentence.") == 1
    # The repeated paragraph, and two lines that the news source has already: the UD test
    # sentence (dropped there as a leak, after de-duplication) and "Final clean sentence.".
    assert report["sources"][-1]["dropped"]["duplicate"] == 3


def test_extra_source_gives_text_to_language_without_any(snippet_root, wiki_file):
    catalogue = snippet_root.parent / "languages.yaml"
    catalogue.write_text(
        catalogue.read_text(encoding="utf-8") + "  zz:\n    name: No text\n    text_note: none\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="no masked-LM text: none. Give a text file with --extra-source"):
        build_corpus(options(snippet_root, language="zz"))

    texts, _report = build_corpus(options(snippet_root, language="zz", extra_sources=[f"plain:{wiki_file}"]))
    assert UD_TEXT in texts  # zz has no test sets, so nothing leaks


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"extra_sources": ["wiki.txt"]}, ValueError, "expected READER:PATH"),
        ({"extra_sources": ["html:wiki.txt"]}, ValueError, "READER one of plain, leipzig"),
        ({"extra_sources": ["lafand_jsonl:x.json"]}, ValueError, "'lafand_jsonl:x.json' is invalid"),
        ({"catalogue_sources": False}, ValueError, "needs at least one extra source"),
        ({"catalogue_sources": "no"}, TypeError, "catalogue_sources='no' must be True or False"),
    ],
)
def test_invalid_extra_options(snippet_root, overrides, error, message):
    with pytest.raises(error, match=message):
        options(snippet_root, **overrides)


def test_parse_extra_source_keeps_colons_in_path():
    source = parse_extra_source("plain:C:/data/wiki.txt")
    assert source.reader == "plain"
    assert source.path == "C:/data/wiki.txt"


def test_cli_extra_source(snippet_root, wiki_file, tmp_path):
    output = tmp_path / "out" / "xx.txt"
    arguments = [
        "--language", "xx",
        "--root", str(snippet_root),
        "--catalogue", str(snippet_root.parent / "languages.yaml"),
        "--output", str(output),
        "--extra-source", f"plain:{wiki_file}",
        "--no-catalogue-sources",
    ]

    assert main(arguments) == 0

    assert output.read_text(encoding="utf-8").splitlines() == [
        "A Wikipedia paragraph about the sea.",
        "Final clean sentence.",
    ]
    report = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    assert len(report["sources"]) == 1
