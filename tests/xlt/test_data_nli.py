"""NLI readers: the three formats, one label order, and errors with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from xlt.data.errors import DataFormatError
from xlt.data.nli import detokenize_ptb, read_americasnli, read_cad_snli, read_nli, read_textfooler
from xlt.data.records import NLI_LABELS

SNIPPETS = Path(__file__).parent / "snippets"


def test_label_order():
    assert NLI_LABELS == ("entailment", "neutral", "contradiction")


def test_americasnli_records():
    examples = read_americasnli(SNIPPETS / "sample_americasnli.tsv")
    assert [example.label for example in examples] == [0, 2, 1]
    assert examples[0].premise == "Uta manqhan utjaskiwa."
    assert examples[2].hypothesis == "Jupax manq'aski."
    assert examples[1].language == "aym"
    assert examples[1].example_id == "2"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("id\tlanguage\tpremise\thypothesis\n", 1, "invalid header"),
        (
            "id\tlanguage\tpremise\thypothesis\tlabel\n1\taym\tA.\tB.\tentail\n",
            2,
            "unknown label 'entail'",
        ),
        (
            "id\tlanguage\tpremise\thypothesis\tlabel\n1\taym\tA.\tneutral\n",
            2,
            "expected 5 tab-separated columns, found 4",
        ),
        ("id\tlanguage\tpremise\thypothesis\tlabel\n\n2\taym\tA.\tB.\t1\n", 3, "unknown label '1'"),
    ],
)
def test_americasnli_errors(tmp_path, text, line, message):
    path = tmp_path / "bad.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError, match=message) as raised:
        read_americasnli(path)
    assert raised.value.line == line


def test_empty_premise_is_kept(tmp_path, caplog):
    path = tmp_path / "empty.tsv"
    path.write_text(
        "id\tlanguage\tpremise\thypothesis\tlabel\n7\tnah\t \tB.\tneutral\n", encoding="utf-8"
    )
    examples = read_americasnli(path)
    assert examples[0].premise == ""
    assert "1 of 1 examples have an empty premise or hypothesis" in caplog.text


def test_textfooler_detokenised():
    examples = read_textfooler(SNIPPETS / "sample_textfooler.txt")
    assert examples[0].premise == 'A man in a "swim at your own risk" shirt (blue) isn\'t swimming.'
    assert examples[0].hypothesis == "The man, tired, rests."
    assert examples[0].label == 1
    assert examples[1].premise == "The students' books cost $5."
    assert examples[1].label == 0


def test_textfooler_tokenised_on_request():
    examples = read_textfooler(SNIPPETS / "sample_textfooler.txt", detokenize=False)
    assert examples[0].hypothesis == "The man , tired , rests ."


@pytest.mark.parametrize(
    ("tokenised", "expected"),
    [
        ("I do n't know , he said .", "I don't know, he said."),
        ("She 's here ; they 're not !", "She's here; they're not!"),
        ("-LSB- sic -RSB- and -LCB- x -RCB-", "[sic] and {x}"),
        ("a ` quoted ' word", "a 'quoted' word"),
        ("up -- down / left - right", "up -- down / left - right"),
        ("50 % of $ 10 ...", "50% of $10..."),
    ],
)
def test_detokenize_ptb(tokenised, expected):
    assert detokenize_ptb(tokenised) == expected


def test_textfooler_wrong_columns(tmp_path):
    path = tmp_path / "tf.txt"
    path.write_text("neutral\tonly premise\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="expected 3 tab-separated columns") as raised:
        read_textfooler(path)
    assert raised.value.line == 1


def test_cad_records():
    examples = read_cad_snli(SNIPPETS / "sample_cad.tsv")
    assert [example.label for example in examples] == [0, 2]
    assert examples[0].premise == 'A dog runs on "wet" grass.'


def test_cad_header_checked(tmp_path):
    path = tmp_path / "cad.tsv"
    path.write_text("premise\thypothesis\tlabel\n", encoding="utf-8")
    with pytest.raises(
        DataFormatError, match="expected the tab-separated columns sentence1 sentence2 gold_label"
    ):
        read_cad_snli(path)


def test_read_nli_dispatches_and_rejects_unknown_format():
    assert len(read_nli(SNIPPETS / "sample_cad.tsv", "cad")) == 2
    with pytest.raises(ValueError, match="format='xnli' is not supported"):
        read_nli(SNIPPETS / "sample_cad.tsv", "xnli")
