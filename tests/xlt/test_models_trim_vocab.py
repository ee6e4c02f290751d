"""Vocabulary trimming: kept pieces, id table, identical segmentation, embeddings and head rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_models import tiny_bert_config
from tokenizers import Tokenizer, models
from transformers import (
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertForMaskedLM,
    PreTrainedTokenizerFast,
)

from xlt.models import tiny, trim_vocab
from xlt.models.charsmap import build_codepoint_charsmap
from xlt.models.unigram_tokenizer import METASPACE, build_xlmr_tokenizer

PIECES = [
    "<s>", "<pad>", "</s>", "<unk>", METASPACE, "\u2581a", "a", "b", "c", "d", "\u2581ab", "ab",
    "bc", "\u2581abc", "\u2581b", "\u2581c", "\u2581d", "ca", "da", "\u2581dad", "dd", "x", "y",
    "\u2581xy", "\u2581yx", "<mask>",
]
TEXT_LINES = ["ab ca", "abc b", "", "ca ab"]
WORD_LINES = ["ab\tca", "c\tb\tab"]


@pytest.fixture
def unigram_model_dir(tmp_path):
    rng = np.random.default_rng(0)
    ordinary = (-1.0 - rng.permutation(len(PIECES) - 5) * 0.53).tolist()
    tokenizer = build_xlmr_tokenizer(PIECES, [0.0] * 4 + ordinary + [0.0],
                                     build_codepoint_charsmap({}))
    folder = tmp_path / "unigram-model"
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_bert_config(vocab_size=len(PIECES), pad_token_id=1))
    with torch.no_grad():
        model.cls.predictions.bias.copy_(torch.randn(len(PIECES)))
    model.save_pretrained(folder)
    return folder


@pytest.fixture
def inputs(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(TEXT_LINES) + "\n", encoding="utf-8")
    words = tmp_path / "words.tsv"
    words.write_text("\n".join(WORD_LINES) + "\n", encoding="utf-8")
    return text, words


def original_ids(tokenizer) -> tuple[list[list[int]], list[list[int]]]:
    text = tokenizer([line for line in TEXT_LINES if line], add_special_tokens=False)
    words = tokenizer([line.split("\t") for line in WORD_LINES], is_split_into_words=True,
                      add_special_tokens=False)
    return text["input_ids"], words["input_ids"]


def test_trim_keeps_used_and_special_pieces(unigram_model_dir, inputs, tmp_path):
    text, words = inputs
    out = tmp_path / "trimmed"
    summary = trim_vocab.trim_vocabulary(unigram_model_dir, [text], [words], out)

    old = AutoTokenizer.from_pretrained(unigram_model_dir)
    text_ids, word_ids = original_ids(old)
    used = {i for ids in text_ids + word_ids for i in ids}
    table = trim_vocab.load_vocab_map(out)
    assert set(table) == used | {0, 1, 2, 3, len(PIECES) - 1}
    assert summary["new_vocab_size"] == len(table)
    assert summary["verification"] == {"lines_checked": 5, "lines_with_different_pieces": 0}
    assert [table[i] for i in (0, 1, 2, 3)] == [0, 1, 2, 3]
    assert table[len(PIECES) - 1] == len(table) - 1
    assert sorted(table.values()) == list(range(len(table)))
    assert all(table[a] < table[b] for a, b in zip(sorted(table), sorted(table)[1:]))


def test_trimmed_tokenizer_segments_inputs_identically(unigram_model_dir, inputs, tmp_path):
    text, words = inputs
    out = tmp_path / "trimmed"
    trim_vocab.trim_vocabulary(unigram_model_dir, [text], [words], out)
    old = AutoTokenizer.from_pretrained(unigram_model_dir)
    new = AutoTokenizer.from_pretrained(out)
    table = trim_vocab.load_vocab_map(out)

    for before, after in zip(original_ids(old), original_ids(new)):
        assert [[table[i] for i in ids] for ids in before] == after
    assert type(new).__name__ == "XLMRobertaTokenizerFast"
    assert new("ab", "ca")["input_ids"][:1] == [new.bos_token_id]
    assert new.convert_ids_to_tokens(new("ab <mask>")["input_ids"]) == [
        "<s>", *old.convert_ids_to_tokens(old("ab", add_special_tokens=False)["input_ids"]),
        "<mask>", "</s>",
    ]


def test_trimmed_model_rows_and_head(unigram_model_dir, inputs, tmp_path):
    text, words = inputs
    out = tmp_path / "trimmed"
    trim_vocab.trim_vocabulary(unigram_model_dir, [text], [words], out)
    old = AutoModelForMaskedLM.from_pretrained(unigram_model_dir).eval()
    new = AutoModelForMaskedLM.from_pretrained(out).eval()
    table = trim_vocab.load_vocab_map(out)
    kept = torch.tensor(sorted(table))

    assert new.config.vocab_size == len(table)
    assert new.config.pad_token_id == table[1]
    assert new.get_output_embeddings().weight is new.get_input_embeddings().weight
    assert torch.equal(new.get_input_embeddings().weight, old.get_input_embeddings().weight[kept])
    assert torch.equal(new.cls.predictions.bias, old.cls.predictions.bias[kept])

    old_input = AutoTokenizer.from_pretrained(unigram_model_dir)("ab <mask> ca", return_tensors="pt")
    old_input = old_input["input_ids"]
    new_input = torch.tensor([[table[i] for i in old_input[0].tolist()]])
    with torch.no_grad():
        old_logits = old(old_input).logits[..., kept]
        new_logits = new(new_input).logits
    torch.testing.assert_close(new_logits, old_logits)


def test_trim_wordpiece_tokenizer(tiny_model_dir, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the dog runs\nMary saw a cat in London .\n", encoding="utf-8")
    out = tmp_path / "trimmed"
    assert trim_vocab.main(["--model", str(tiny_model_dir), "--text", str(text),
                            "--out", str(out)]) == 0
    old = AutoTokenizer.from_pretrained(tiny_model_dir)
    new = AutoTokenizer.from_pretrained(out)
    table = trim_vocab.load_vocab_map(out)
    for line in ("the dog runs", "Mary saw a cat in London ."):
        assert [table[i] for i in old(line)["input_ids"]] == new(line)["input_ids"]
    encoded = new("the dog")["input_ids"]
    assert (encoded[0], encoded[-1]) == (new.cls_token_id, new.sep_token_id)
    assert len(new) < len(old)


def test_trim_keeps_cased_wordpiece_normaliser(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("Danmark Føroyar ES\nHóast er ikki limur\n" * 5, encoding="utf-8")
    model_dir = tiny.build_tiny_model([text], tmp_path / "tiny", vocab_size=120)
    out = tmp_path / "trimmed"
    summary = trim_vocab.trim_vocabulary(model_dir, [text], [], out)
    assert summary["verification"]["lines_with_different_pieces"] == 0
    new = AutoTokenizer.from_pretrained(out)
    assert type(new).__name__ == "BertTokenizerFast"
    assert new.tokenize("Danmark Hóast")[0].startswith("D")
    assert "ó" in "".join(new.tokenize("Hóast"))


def test_words_file_with_empty_word_names_line(unigram_model_dir, tmp_path):
    words = tmp_path / "words.tsv"
    words.write_text("ab\tc\n\nab\t\tc\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"words.tsv:3: word 2 is empty"):
        trim_vocab.trim_vocabulary(unigram_model_dir, [], [words], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_trim_rejects_bad_inputs(unigram_model_dir, tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        trim_vocab.trim_vocabulary(unigram_model_dir, [], [], tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        trim_vocab.trim_vocabulary(unigram_model_dir, [tmp_path / "missing.txt"], [],
                                   tmp_path / "out")
    assert trim_vocab.main(["--model", str(unigram_model_dir), "--text",
                            str(tmp_path / "missing.txt"), "--out", str(tmp_path / "out")]) == 1


def test_trim_rejects_bpe_tokenizer():
    backend = Tokenizer(models.BPE({"a": 0, "b": 1, "ab": 2, "<unk>": 3}, [("a", "b")],
                                   unk_token="<unk>"))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    with pytest.raises(ValueError, match="supports Unigram, WordPiece tokenizers; this one is BPE"):
        trim_vocab.trim_tokenizer(tokenizer, np.array([0, 3]))


def test_vocab_map_file_records_inputs(unigram_model_dir, inputs, tmp_path):
    text, words = inputs
    out = tmp_path / "trimmed"
    trim_vocab.trim_vocabulary(unigram_model_dir, [text], [words], out)
    record = json.loads((out / trim_vocab.VOCAB_MAP_FILE).read_text(encoding="utf-8"))
    assert record["old_vocab_size"] == len(PIECES)
    assert record["inputs"][str(text)]["lines"] == 3
    assert record["inputs"][str(words)]["lines"] == 2
    assert record["words_files"] == [str(words)]
    assert "repository" in record["provenance"]
