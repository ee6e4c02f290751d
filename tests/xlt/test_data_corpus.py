"""Masked-LM corpus building: cleaning, the test-set leak filter, the cap and the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from xlt.data.catalogue import Dataset, load_catalogue
from xlt.data.corpus import CorpusOptions, build_corpus, main, write_corpus
from xlt.data.leakage import LeakFilter, leak_key

SNIPPETS = Path(__file__).parent / "snippets"

# Test sentences of the snippet files, as the corpus text might contain them.
UD_TEXT = "Vámonos al mar."  # `# text =` of sample.conllu
UD_WORDS = "Sue likes coffee and Bill tea"  # words of sample.conllu
NER_RAW = (
    "Peter Blackburn visited Lagos on Monday morning."  # tokens of sample_ner.txt, untokenised
)
NLI_PREMISE = "Uta manqhan utjaskiwa."  # premise of sample_americasnli.tsv

CATALOGUE = """\
languages:
  xx:
    name: Snippetish
    ud:
      - dataset: UD_Snippet
        splits: {test: github/t/ud/test.conllu}
    ner:
      - dataset: NER_Snippet
        type_map: {DATE: O, MISC: O}
        splits: {test: github/t/ner/test.txt, train: github/t/ner/train.txt}
    text:
      - {path: github/t/text/news.txt, reader: plain}
      - {path: github/t/text/more.txt, reader: plain}
  yy:
    name: Snippetish (second code)
    nli:
      - dataset: NLI_Snippet
        format: americasnli
        splits: {test: github/t/nli/test.tsv}
    text_from: xx
"""

NEWS = [
    "A first  news\tsentence.",  # whitespace is normalised
    "Cafe\u0301 culture is growing.",  # NFD input becomes NFC
    "",
    "12 345 - 678",  # no letter
    "A first news sentence.",  # duplicate after normalisation
    UD_TEXT,  # exact test sentence (UD text)
    "Sue  likes coffee and Bill tea",  # exact test sentence (UD words), other spacing
    NER_RAW,  # NER test sentence, raw instead of tokenised
    f"Breaking: {NLI_PREMISE} More at eleven.",  # contains an NLI test premise (second code)
    "Blackburn visited Lagos on",  # inside a NER test sentence, 22 characters
    "Bill tea",  # inside a test sentence but too short to match
    "Final clean sentence.",
]
MORE = ["Another source line.", "Final clean sentence.", "Café culture is growing."]


@pytest.fixture
def snippet_root(tmp_path: Path) -> Path:
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


def options(root: Path, **overrides) -> CorpusOptions:
    values = {
        "language": "xx",
        "root": root,
        "catalogue": root.parent / "languages.yaml",
        "registry": None,
    }
    values.update(overrides)
    return CorpusOptions(**values)


def test_leak_key_ignores_whitespace_and_normalises():
    assert leak_key("Hello , world .") == leak_key("Hello, world.")
    assert leak_key("Cafe\u0301") == leak_key("Caf\u00e9")
    assert leak_key("Hello, world.") != leak_key("hello, world.")


def test_leak_filter_kinds():
    dataset = Dataset(task="nli", name="NLI_Snippet", format="americasnli", splits={})
    leak_filter = LeakFilter()
    leak_filter.add(dataset, SNIPPETS / "sample_americasnli.tsv")
    sentences = [
        "Uta manqhan utjaskiwa .",  # exact, other spacing
        "Ayer: Uta manqhan utjaskiwa. Jichhax",  # contains a test premise
        "Jupax anqan sarnaqa",  # 19 characters without spaces: too short
        "Jupax anqan sarnaqaski",  # inside a hypothesis, 20 characters
        "Uta manqhan",  # too short to match inside
        "Something else entirely here.",
    ]
    assert leak_filter.find_leaks(sentences) == {0: "exact", 1: "contains_test", 3: "inside_test"}


def test_leak_filter_counts_keys_per_file():
    dataset = Dataset(task="ud", name="UD_Snippet", format="conllu", splits={})
    leak_filter = LeakFilter()
    leak_filter.add(dataset, SNIPPETS / "sample.conllu", name="ud/test.conllu")
    # Sentence 1 gives two keys, because its tokens joined without spaces equal its text but its
    # words ("Vamos nos a el") do not; sentence 2 gives one key.
    assert leak_filter.files == [{"dataset": "UD_Snippet", "path": "ud/test.conllu", "keys": 3}]
    assert leak_key("Vamos nos a el mar .") in leak_filter.keys


def test_build_corpus_cleans_and_filters(snippet_root):
    texts, report = build_corpus(options(snippet_root))
    assert texts == [
        "A first news sentence.",
        "Café culture is growing.",
        "Bill tea",
        "Final clean sentence.",
        "Another source line.",
    ]
    assert report["removed"] == {
        "empty": 1,
        "no_letters": 1,
        "duplicate": 3,
        "leaked_exact": 3,
        "leaked_contains_test": 1,
        "leaked_inside_test": 1,
        "cap": 0,
    }
    assert report["sentences"] == 5
    assert report["words"] == sum(len(text.split()) for text in texts)
    assert report["characters"] == sum(len(text) for text in texts)


def test_report_counts_per_source(snippet_root):
    _, report = build_corpus(options(snippet_root))
    news, more = report["sources"]
    assert news["path"] == "github/t/text/news.txt"
    assert news["read"] == len(NEWS)
    assert news["kept"] == 4
    assert news["dropped"]["leaked_exact"] == 3
    assert more["read"] == 3
    assert more["kept"] == 1
    assert more["dropped"]["duplicate"] == 2
    assert report["shared_by"] == ["xx", "yy"]
    assert [item["dataset"] for item in report["leak_filter"]["test_files"]] == [
        "UD_Snippet",
        "NER_Snippet",
        "NLI_Snippet",
    ]


def test_second_code_builds_the_shared_corpus(snippet_root):
    texts_xx, _ = build_corpus(options(snippet_root))
    texts_yy, report = build_corpus(options(snippet_root, language="yy"))
    assert texts_yy == texts_xx
    assert report["language"] == "yy"
    assert report["corpus_language"] == "xx"


def test_cap_takes_first_sentences(snippet_root):
    texts, report = build_corpus(options(snippet_root, max_sentences=2))
    assert texts == ["A first news sentence.", "Café culture is growing."]
    assert report["removed"]["cap"] == 3
    assert [source["in_corpus"] for source in report["sources"]] == [2, 0]


def test_seeded_cap_is_deterministic_and_ordered(snippet_root):
    full, _ = build_corpus(options(snippet_root))
    first, _ = build_corpus(options(snippet_root, max_sentences=3, shuffle_seed=7))
    again, _ = build_corpus(options(snippet_root, max_sentences=3, shuffle_seed=7))
    assert first == again
    assert len(first) == 3
    assert first == [text for text in full if text in first]
    draws = {
        tuple(build_corpus(options(snippet_root, max_sentences=3, shuffle_seed=seed))[0])
        for seed in range(8)
    }
    assert len(draws) > 1


def test_lowercase_option(snippet_root):
    catalogue = snippet_root.parent / "languages.yaml"
    catalogue.write_text(
        CATALOGUE.replace(
            "{path: github/t/text/more.txt, reader: plain}",
            "{path: github/t/text/more.txt, reader: plain, lowercase: true}",
        ),
        encoding="utf-8",
    )
    texts, _ = build_corpus(options(snippet_root))
    assert "another source line." in texts
    assert "final clean sentence." in texts


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"max_sentences": 0}, ValueError, "max_sentences=0 is invalid"),
        ({"max_sentences": "5"}, TypeError, "max_sentences='5' must be an integer"),
        ({"shuffle_seed": 3}, ValueError, "shuffle_seed=3 needs max_sentences"),
        ({"language": ""}, ValueError, "language='' is invalid"),
    ],
)
def test_invalid_options(snippet_root, overrides, error, message):
    with pytest.raises(error, match=message):
        options(snippet_root, **overrides)


def test_language_without_text(snippet_root):
    catalogue = snippet_root.parent / "languages.yaml"
    catalogue.write_text(
        CATALOGUE + "  zz:\n    name: Z\n    text_note: No text anywhere.\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match="language 'zz' has no masked-LM text: No text anywhere."):
        build_corpus(options(snippet_root, language="zz"))


def test_cli_writes_corpus_and_report(snippet_root):
    output = snippet_root.parent / "corpora" / "xx.txt"
    arguments = [
        "--language",
        "xx",
        "--root",
        str(snippet_root),
        "--catalogue",
        str(snippet_root.parent / "languages.yaml"),
        "--output",
        str(output),
    ]
    assert main(arguments) == 0
    assert output.read_text(encoding="utf-8").splitlines()[0] == "A first news sentence."
    report = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    assert report["sentences"] == 5
    assert report["provenance"]["created_by"] == "xlt.data.corpus"
    assert sorted(path.name for path in output.parent.iterdir()) == ["xx.json", "xx.txt"]


def test_cli_reports_unknown_language(snippet_root, caplog):
    arguments = [
        "--language",
        "qq",
        "--root",
        str(snippet_root),
        "--catalogue",
        str(snippet_root.parent / "languages.yaml"),
        "--output",
        str(snippet_root.parent / "qq.txt"),
    ]
    assert main(arguments) == 1
    assert "language 'qq' is not in the catalogue" in caplog.text


def test_failed_write_keeps_earlier_corpus(tmp_path):
    output = tmp_path / "xx.txt"
    output.write_text("earlier corpus\n", encoding="utf-8")

    class Unwritable(str):
        def __add__(self, other):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_corpus(["fine", Unwritable("broken")], {}, output, tmp_path / "xx.json")
    assert output.read_text(encoding="utf-8") == "earlier corpus\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["xx.txt"]


def test_catalogue_of_snippets_loads(snippet_root):
    catalogue = load_catalogue(snippet_root.parent / "languages.yaml")
    assert catalogue.corpus_members("yy") == ["xx", "yy"]
