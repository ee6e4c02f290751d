"""NER CoNLL reader: sentence splitting, the type map, unknown tags and I- tags without a B-."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from xlt.data.errors import DataFormatError
from xlt.data.ner import check_type_map, read_ner_conll

SAMPLE = Path(__file__).parent / "snippets" / "sample_ner.txt"
MASAKHANER_MAP = {"DATE": "O", "MISC": "O"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ner.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_sentences_and_docstart():
    sentences = read_ner_conll(SAMPLE, MASAKHANER_MAP)
    assert [sentence.tokens[0] for sentence in sentences] == ["Peter", "The", "Bayern"]
    assert sentences[2].tokens == ["Bayern", "Munich", "won"]


def test_type_map_turns_types_into_outside():
    sentences = read_ner_conll(SAMPLE, MASAKHANER_MAP)
    assert sentences[0].tags == ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "O", "O"]
    assert sentences[1].tags == ["O", "O", "O", "O", "O", "B-LOC", "I-LOC"]


def test_type_map_renames_types(tmp_path):
    path = write(tmp_path, "Ada B-PERSON\nLovelace I-PERSON\n")
    assert read_ner_conll(path, {"PERSON": "PER"})[0].tags == ["B-PER", "I-PER"]


def test_unmapped_type_is_rejected_with_line():
    with pytest.raises(
        DataFormatError, match="entity type 'DATE' is not one of PER, ORG, LOC"
    ) as raised:
        read_ner_conll(SAMPLE, {"MISC": "O"})
    assert raised.value.line == 8
    assert "DATE: O" in str(raised.value)


@pytest.mark.parametrize("tag", ["B-", "S-PER", "PER", "b-PER", "E-LOC"])
def test_malformed_tag_is_rejected(tmp_path, tag):
    path = write(tmp_path, f"a O\nb {tag}\n")
    with pytest.raises(DataFormatError, match="invalid tag") as raised:
        read_ner_conll(path)
    assert raised.value.line == 2


def test_line_without_tag_is_rejected(tmp_path):
    path = write(tmp_path, "a O\nlonely\n")
    with pytest.raises(DataFormatError, match="expected a token and a tag") as raised:
        read_ner_conll(path)
    assert raised.value.line == 2


def test_four_column_lines_use_first_and_last(tmp_path):
    path = write(tmp_path, "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    sentences = read_ner_conll(path)
    assert len(sentences) == 1
    assert sentences[0].tokens == ["EU", "rejects"]
    assert sentences[0].tags == ["B-ORG", "O"]


def test_orphan_inside_is_repaired(tmp_path, caplog):
    path = write(tmp_path, "a O\nb I-PER\nc I-PER\nd B-LOC\ne I-ORG\n\nf I-LOC\n")
    with caplog.at_level(logging.WARNING, logger="xlt.data.ner"):
        sentences = read_ner_conll(path)
    assert sentences[0].tags == ["O", "B-PER", "I-PER", "B-LOC", "B-ORG"]
    assert sentences[1].tags == ["B-LOC"]
    assert "changed 3 I- tags" in caplog.text
    assert "lines 2, 5, 7" in caplog.text


def test_orphan_after_mapped_type_is_repaired(tmp_path):
    # I-PER after a DATE entity that the map removed starts a new PER entity.
    path = write(tmp_path, "Monday B-DATE\nAda I-PER\n")
    assert read_ner_conll(path, {"DATE": "O"})[0].tags == ["O", "B-PER"]


def test_repair_matches_seqeval_chunking(tmp_path):
    raw_tags = ["I-PER", "I-PER", "O", "I-LOC", "B-ORG", "I-LOC", "I-LOC", "B-PER"]
    path = write(tmp_path, "".join(f"w{index} {tag}\n" for index, tag in enumerate(raw_tags)))
    repaired = read_ner_conll(path)[0].tags
    assert get_entities(repaired) == get_entities(raw_tags)


def test_orphan_inside_rejected_on_request(tmp_path):
    path = write(tmp_path, "a O\nb I-PER\n")
    with pytest.raises(DataFormatError, match="continues no entity") as raised:
        read_ner_conll(path, orphan_inside="reject")
    assert raised.value.line == 2


def test_unknown_orphan_policy_is_rejected():
    with pytest.raises(ValueError, match="orphan_inside='drop' is not supported"):
        read_ner_conll(SAMPLE, MASAKHANER_MAP, orphan_inside="drop")


@pytest.mark.parametrize("type_map", [{"DATE": "TIME"}, {"DATE": "B-PER"}])
def test_type_map_targets_are_checked(type_map):
    with pytest.raises(ValueError, match="a type must map to one of O, PER, ORG, LOC"):
        check_type_map(type_map)
