"""One real file of each kind from the offline data mirror, read with the project's readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from xlt.data.catalogue import DEFAULT_CATALOGUE, load_catalogue
from xlt.data.corpus import CorpusOptions, build_corpus
from xlt.data.fetch import fetch_entry
from xlt.data.ner import read_ner_conll
from xlt.data.nli import read_americasnli, read_cad_snli, read_textfooler
from xlt.data.registry import DEFAULT_REGISTRY, read_registry
from xlt.data.text import normalize_sentence, read_text_source
from xlt.data.ud import read_conllu

pytestmark = pytest.mark.data

REPO_ROOT = Path(__file__).resolve().parents[2]
UD = "github/UniversalDependencies"
NTREX = "github/MicrosoftTranslator/NTREX/NTREX-128"
LEIPZIG_HSB = (
    "github/MikhailDolgopolov/Upper-Sorbian-Data-and-Experiments/Data/hsb_wikipedia_2016_30K/"
    "hsb_wikipedia_2016_30K-sentences.txt"
)
FIRST_HSB = (
    "10. apryla abo 10. jutrownika je 100. dźeń gregorianiskeje protyki (101. w přestupnych "
    "lětach ), tuž wostawa hišće 265 dnjow hač do kónca lěta."
)


def test_treebank(data_mirror):
    sentences = read_conllu(data_mirror / UD / "UD_Maltese-MUDT/mt_mudt-ud-test.conllu")
    assert len(sentences) == 518
    assert sentences[0].sent_id == "01_01J01:1"
    assert sentences[0].text.startswith("Philip Schembri, iċ-Chairman tal-Bord")
    assert sentences[0].words[:2] == ["Philip", "Schembri"]


def test_english_treebank_with_multiword_tokens(data_mirror):
    sentences = read_conllu(data_mirror / UD / "UD_English-EWT/en_ewt-ud-test.conllu")
    assert len(sentences) == 2077
    with_ranges = [sentence for sentence in sentences if len(sentence.tokens) < len(sentence.words)]
    assert with_ranges  # contractions such as "don't" are multiword tokens in EWT


def test_masakhaner(data_mirror):
    sentences = read_ner_conll(
        data_mirror / "github/masakhane-io/masakhane-ner/data/swa/test.txt", {"DATE": "O"}
    )
    assert len(sentences) == 604
    assert sentences[0].tokens[:3] == ["Hii", "ni", "baada"]
    assert {tag for sentence in sentences for tag in sentence.tags} <= {
        "O",
        "B-PER",
        "I-PER",
        "B-ORG",
        "I-ORG",
        "B-LOC",
        "I-LOC",
    }


def test_americasnli(data_mirror):
    examples = read_americasnli(
        data_mirror / "github/abteen/americasnli/data/anli_final/test/quy.tsv"
    )
    assert len(examples) == 750
    assert examples[0].example_id == "25051"
    assert examples[0].hypothesis == "Manam paywanqa kaqllamantaqa rimarqanichu."
    assert examples[0].label == 2


def test_textfooler(data_mirror):
    examples = read_textfooler(data_mirror / "github/jind11/TextFooler/data/mnli_mismatched")
    assert len(examples) == 1000
    assert examples[0].premise == "You can't take it with you -- neither can I, unfortunately."
    assert examples[0].label == 0


def test_counterfactual_snli(data_mirror):
    examples = read_cad_snli(
        data_mirror / "github/acmi-lab/counterfactually-augmented-data/NLI/original/test.tsv"
    )
    assert len(examples) == 400
    assert (
        examples[0].hypothesis
        == "A man is prone on the street while another man stands next to him."
    )
    assert examples[0].label == 0


@pytest.mark.parametrize(
    ("path", "reader", "options", "count", "first"),
    [
        (
            f"{NTREX}/newstest2019-ref.fao.txt",
            "plain",
            {},
            1997,
            "Walisisk tingfólk stúra fyri at ‘síggja býtt út’",
        ),
        (LEIPZIG_HSB, "leipzig", {}, 30000, FIRST_HSB),
        (
            "github/christos-c/bible-corpus/bibles/Wolof-NT.xml",
            "bible_xml",
            {},
            7920,
            "Lii mooy cosaanu Yeesu Kirist, sëtu Daawuda, sëtu Ibraayma.",
        ),
        (
            "github/masakhane-io/lafand-mt/data/json_files/fr-wol/train.json",
            "lafand_jsonl",
            {"field": "wol"},
            3360,
            "Jàpp yu bare yi am ci Ter Stegen soof na waa Colcheneros ak la din cruelle ?",
        ),
        (
            "github/langdoc/kpv-lit/txt/fennougrica10003.txt",
            "paragraphs",
            {},
            None,
            "БЫДТЫСЬЫСЬ МАМЪЯСЛЫ",
        ),
        (f"{UD}/UD_Erzya-JR/myv_jr-ud-train.conllu", "conllu_text", {}, 1217, None),
    ],
)
def test_text_source(data_mirror, path, reader, options, count, first):
    sentences = [
        normalize_sentence(text) for text in read_text_source(data_mirror / path, reader, **options)
    ]
    if count is not None:
        assert len(sentences) == count
    if first is not None:
        assert sentences[0] == first
    assert all(isinstance(sentence, str) for sentence in sentences)


def test_every_catalogue_file_is_in_mirror(data_mirror):
    catalogue = load_catalogue(REPO_ROOT / DEFAULT_CATALOGUE)
    registry = read_registry(REPO_ROOT / DEFAULT_REGISTRY)
    # The files of the extra registry are outside the mirror by definition.
    paths = [path for path in catalogue.paths() if path in registry]
    missing = [path for path in paths if not (data_mirror / path).is_file()]
    assert paths
    assert missing == []


def test_fetch_from_mirror_verifies_real_file(data_mirror, tmp_path):
    registry = read_registry(REPO_ROOT / DEFAULT_REGISTRY)
    entry = registry.get(f"{UD}/UD_Livvi-KKPP/olo_kkpp-ud-test.conllu")
    target = fetch_entry(entry, tmp_path, mirror=data_mirror)
    assert target.read_bytes() == (data_mirror / entry.local_path).read_bytes()


def test_upper_sorbian_corpus_drops_treebank_sentences(data_mirror):
    options = CorpusOptions(
        language="hsb",
        root=data_mirror,
        catalogue=REPO_ROOT / DEFAULT_CATALOGUE,
        registry=REPO_ROOT / DEFAULT_REGISTRY,
    )
    texts, report = build_corpus(options)
    # The Upper Sorbian treebank's test sentences come from Wikipedia, like the Leipzig corpus.
    assert report["removed"]["leaked_exact"] > 100
    treebank = read_conllu(data_mirror / UD / "UD_Upper_Sorbian-UFAL/hsb_ufal-ud-test.conllu")
    test_texts = {sentence.text for sentence in treebank}
    assert test_texts.isdisjoint(texts)
    assert report["sources"][0]["git_blob"] is not None
