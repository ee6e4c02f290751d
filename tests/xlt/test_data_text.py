"""Text-source readers of the masked-LM corpora, normalisation and sentence splitting."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from xlt.data.errors import DataFormatError
from xlt.data.text import normalize_sentence, read_text_source, split_sentences

SNIPPETS = Path(__file__).parent / "snippets"

BIBLE_XML = """<?xml version="1.0" ?>
<cesDoc version="4">
  <cesHeader version="2">
    <fileDesc><titleStmt><h.title>Bible</h.title></titleStmt></fileDesc>
  </cesHeader>
  <text>
    <body id="Bible" lang="gv">
      <div id="b.GEN" type="book">
        <div id="b.GEN.1" type="chapter">
          <seg id="b.GEN.1.1" type="verse">
            Ayns y toshiaght
          </seg>
          <seg id="b.GEN.1.2" type="verse">As va'n thalloo</seg>
        </div>
      </div>
    </body>
  </text>
</cesDoc>
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_normalize_sentence_nfc_and_whitespace():
    decomposed = "Cafe\u0301\t  au\u00a0lait \n"
    normalised = normalize_sentence(decomposed)
    assert normalised == "Caf\u00e9 au lait"
    assert unicodedata.is_normalized("NFC", normalised)


def test_plain_reader_strips_bom(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_bytes("\ufeffFirst line\nSecond\n".encode())
    assert [normalize_sentence(line) for line in read_text_source(path, "plain")] == [
        "First line",
        "Second",
    ]


def test_leipzig_reader(tmp_path):
    path = write(tmp_path, "s.txt", "1\tPrěnja sada.\n2\tDruha sada.\n")
    assert list(read_text_source(path, "leipzig")) == ["Prěnja sada.", "Druha sada."]


def test_leipzig_reader_rejects_missing_id(tmp_path):
    path = write(tmp_path, "s.txt", "1\tPrěnja sada.\nDruha sada.\n")
    with pytest.raises(DataFormatError, match="numeric sentence ID") as raised:
        list(read_text_source(path, "leipzig"))
    assert raised.value.line == 2


def test_bible_reader_yields_verses(tmp_path):
    path = write(tmp_path, "bible.xml", BIBLE_XML)
    verses = [normalize_sentence(verse) for verse in read_text_source(path, "bible_xml")]
    assert verses == ["Ayns y toshiaght", "As va'n thalloo"]


def test_bible_reader_reports_broken_xml(tmp_path):
    path = write(
        tmp_path, "bible.xml", BIBLE_XML.replace("</seg>\n        </div>", "\n        </div>")
    )
    with pytest.raises(DataFormatError, match="invalid XML"):
        list(read_text_source(path, "bible_xml"))


def test_lafand_reader_reads_one_side(tmp_path):
    lines = [
        {"translation": {"fr": "Bonjour.", "wol": "Salaam aleekum."}},
        {"translation": {"fr": "Merci.", "wol": "Jërëjëf."}},
    ]
    path = write(
        tmp_path,
        "train.json",
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
    )
    assert list(read_text_source(path, "lafand_jsonl", field="wol")) == [
        "Salaam aleekum.",
        "Jërëjëf.",
    ]
    assert list(read_text_source(path, "lafand_jsonl", field="fr")) == ["Bonjour.", "Merci."]


def test_lafand_reader_errors(tmp_path):
    path = write(
        tmp_path,
        "train.json",
        '{"translation": {"fr": "A", "wol": "B"}}\n{"translation": {"fr": "C"}}\n',
    )
    with pytest.raises(
        DataFormatError, match=r"translation\.wol; found the translation keys \['fr'\]"
    ) as raised:
        list(read_text_source(path, "lafand_jsonl", field="wol"))
    assert raised.value.line == 2

    path = write(tmp_path, "broken.json", '{"translation": \n')
    with pytest.raises(DataFormatError, match="invalid JSON") as raised:
        list(read_text_source(path, "lafand_jsonl", field="wol"))
    assert raised.value.line == 1


def test_paragraph_reader_splits_sentences(tmp_path):
    path = write(
        tmp_path,
        "book.txt",
        "Первый абзац. Второе предложение! «Третье» тут.\n\nА.П. Иванов пишет.\n",
    )
    assert list(read_text_source(path, "paragraphs")) == [
        "Первый абзац.",
        "Второе предложение!",
        "«Третье» тут.",
        "А.П. Иванов пишет.",
    ]


@pytest.mark.parametrize(
    ("paragraph", "expected"),
    [
        ("One. Two.", ["One.", "Two."]),
        ("Ends with 3.5 percent. Next", ["Ends with 3.5 percent.", "Next"]),
        ("lower. case follows", ["lower. case follows"]),
        ('He said "Go." Then left', ['He said "Go."', "Then left"]),
        ("Initials J. Smith came", ["Initials J. Smith came"]),
        ("", []),
    ],
)
def test_split_sentences(paragraph, expected):
    assert split_sentences(paragraph) == expected


def test_conllu_text_reader_uses_text_comment():
    texts = list(read_text_source(SNIPPETS / "sample.conllu", "conllu_text"))
    assert texts == ["Vámonos al mar.", "Sue likes coffee and Bill tea"]


def test_conllu_text_reader_falls_back_to_tokens(tmp_path):
    source = (SNIPPETS / "sample.conllu").read_text(encoding="utf-8")
    path = write(tmp_path, "notext.conllu", source.replace("# text = Vámonos al mar.\n", ""))
    assert next(iter(read_text_source(path, "conllu_text"))) == "Vámonos al mar ."


def test_reader_options_are_checked(tmp_path):
    path = write(tmp_path, "x.txt", "a\n")
    with pytest.raises(ValueError, match="reader='html' is not supported"):
        read_text_source(path, "html")
    with pytest.raises(ValueError, match=r"takes the options \['field'\], got \[\]"):
        read_text_source(path, "lafand_jsonl")
    with pytest.raises(ValueError, match=r"takes the options \[\], got \['field'\]"):
        read_text_source(path, "plain", field="x")
