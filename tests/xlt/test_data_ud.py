"""CoNLL-U reader: word-level records, kept comments and the checks on malformed lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from xlt.data.errors import DataFormatError
from xlt.data.ud import read_conllu

SNIPPETS = Path(__file__).parent / "snippets"
SAMPLE = SNIPPETS / "sample.conllu"


def write_variant(tmp_path: Path, line_number: int, new_line: str | None) -> Path:
    """Copy the sample with line `line_number` (1-based) replaced, or removed when None."""
    lines = SAMPLE.read_text(encoding="utf-8").split("\n")
    if new_line is None:
        del lines[line_number - 1]
    else:
        lines[line_number - 1] = new_line
    path = tmp_path / "variant.conllu"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_multiword_tokens_are_split_into_words():
    first = read_conllu(SAMPLE)[0]
    assert first.words == ["Vamos", "nos", "a", "el", "mar", "."]
    assert first.tokens == ["Vámonos", "al", "mar", "."]
    assert first.upos == ["VERB", "PRON", "ADP", "DET", "NOUN", "PUNCT"]
    assert first.heads == [0, 1, 5, 5, 1, 1]


def test_empty_nodes_are_skipped():
    second = read_conllu(SAMPLE)[1]
    assert second.words == ["Sue", "likes", "coffee", "and", "Bill", "tea"]
    assert second.tokens == second.words
    assert second.heads == [2, 0, 2, 6, 6, 3]


def test_deprel_subtypes_are_dropped():
    first = read_conllu(SAMPLE)[0]
    assert first.deprels == ["root", "obj", "case", "det", "obl", "punct"]


def test_comments_are_kept():
    first, second = read_conllu(SAMPLE)
    assert first.sent_id == "s1"
    assert first.text == "Vámonos al mar."
    assert first.comments == {"newdoc id": "doc1", "sent_id": "s1", "text": "Vámonos al mar."}
    assert second.sent_id == "s2"
    assert "newdoc id" not in second.comments


def test_crlf_and_bom_are_accepted(tmp_path):
    path = tmp_path / "windows.conllu"
    path.write_bytes(b"\xef\xbb\xbf" + SAMPLE.read_bytes().replace(b"\n", b"\r\n"))
    sentences = read_conllu(path)
    assert [sentence.sent_id for sentence in sentences] == ["s1", "s2"]
    assert sentences[0].comments["newdoc id"] == "doc1"


@pytest.mark.parametrize(
    ("line_number", "new_line", "message"),
    [
        (8, "3\ta\ta\tADP\t_\t_\tfive\tcase\t_\t_", "invalid HEAD 'five'"),
        (8, "3\ta\ta\tADP\t_\t_\t_\tcase\t_\t_", "invalid HEAD '_'"),
        (8, "3\ta\ta\tADP\t_\t_\t-1\tcase\t_\t_", "invalid HEAD '-1'"),
        (
            8,
            "3\ta\ta\tADP\t_\t_\t7\tcase\t_\t_",
            "HEAD 7 of word 3 'a' is outside the sentence, which has 6 words",
        ),
        (8, "3\ta\ta\tADP\t_\t_\t3\tcase\t_\t_", "HEAD of word 3 'a' is the word itself"),
        (8, "3\ta\ta\tADP\t_\t_\t5\tcase", "expected 10 tab-separated columns"),
        (8, "3\ta\ta\tADP\t_\t_\t5\tcase\t_\t_\textra", "found 11"),
        (8, "3\ta\ta\tPREP\t_\t_\t5\tcase\t_\t_", "unknown UPOS tag 'PREP'"),
        (8, "3\ta\ta\tADP\t_\t_\t5\tprep:x\t_\t_", "unknown dependency relation 'prep:x'"),
        (8, "4\ta\ta\tADP\t_\t_\t5\tcase\t_\t_", "word ID 4 out of sequence: expected 3"),
        (8, "x\ta\ta\tADP\t_\t_\t5\tcase\t_\t_", "invalid ID"),
        (8, "# late comment", "comment line inside a sentence"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line_number, new_line, message):
    path = write_variant(tmp_path, line_number, new_line)
    with pytest.raises(DataFormatError) as raised:
        read_conllu(path)
    assert raised.value.path == path
    assert raised.value.line == line_number
    assert message in str(raised.value)
    assert str(raised.value).startswith(f"{path}:{line_number}: ")


def test_second_root_is_rejected(tmp_path):
    path = write_variant(tmp_path, 10, "5\tmar\tmar\tNOUN\t_\t_\t0\troot\t_\t_")
    with pytest.raises(DataFormatError, match="2 words with HEAD 0") as raised:
        read_conllu(path)
    assert raised.value.line == 4


def test_comments_without_tokens_are_rejected(tmp_path):
    text = SAMPLE.read_text(encoding="utf-8")
    path = tmp_path / "orphan.conllu"
    path.write_text(text + "# sent_id = s3\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no token lines") as raised:
        read_conllu(path)
    assert raised.value.line == text.count("\n") + 1


def test_forward_heads_are_valid(tmp_path):
    path = write_variant(tmp_path, 6, "2\tnos\tnosotros\tPRON\t_\t_\t6\tobj\t_\t_")
    assert read_conllu(path)[0].heads[1] == 6
