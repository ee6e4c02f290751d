"""The dump of tokenised strings that the vocabulary-trimming step reads."""

import json
from pathlib import Path

import pytest

from xlt.cli import dump_text

SNIPPETS = Path(__file__).parent / "snippets"


def test_word_task_dump_has_tab_separated_words(tmp_path):
    output = tmp_path / "pos.txt"
    files = [str(SNIPPETS / "tasks_en.conllu"), str(SNIPPETS / "tasks_target.conllu")]
    assert dump_text.main(["--task", "pos", "--files", *files, "--output", str(output)]) == 0
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 9
    assert lines[0] == "John\tsaw\tthe\tbig\tdog\t."
    # Syntactic words, not the multiword token "tothe": the tasks tokenise the words.
    assert lines[-1] == "John\twent\tto\tthe\thouse\t."
    sidecar = json.loads((tmp_path / "pos.txt.json").read_text())
    assert sidecar["kind"] == "words"
    assert sidecar["lines"] == 9
    assert [f["path"] for f in sidecar["files"]] == files


def test_nli_dump_has_one_text_per_line(tmp_path):
    output = tmp_path / "nli.txt"
    dump_text.main(["--task", "nli", "--files", str(SNIPPETS / "tasks_nli_target.tsv"), "--output", str(output)])
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ["Mary came to the house.", "Mary came."]
    assert len(lines) == 6
    assert json.loads((tmp_path / "nli.txt.json").read_text())["kind"] == "text"


def test_ner_dump_uses_tokens(tmp_path):
    output = tmp_path / "ner.txt"
    dump_text.main(["--task", "ner", "--files", str(SNIPPETS / "tasks_ner_target.txt"), "--output", str(output)])
    assert output.read_text(encoding="utf-8").splitlines()[1] == "Google\tsays\tParis\tis\tbig\t."


def test_dump_rejects_unknown_task(tmp_path):
    with pytest.raises(SystemExit):
        dump_text.main(["--task", "qa", "--files", "x", "--output", str(tmp_path / "out.txt")])


def test_dump_line_writer_rejects_line_breaks(tmp_path):
    with pytest.raises(ValueError, match="line 2 of the output contains a line break"):
        dump_text.write_lines_atomic(tmp_path / "out.txt", ["fine", "two\nlines"])
    assert not (tmp_path / "out.txt").exists()
