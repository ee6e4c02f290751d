"""The tiny random BERT for CI: WordPiece tokenizer trained on text, seeded weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoModelForTokenClassification, AutoTokenizer

from xlt.models import tiny

TEXT = [
    "Ní ìbẹ̀rẹ̀ ohun gbogbo Ọlọ́run dá àwọn ọ̀run àti ayé.",
    "Føroyar eru ikki limur í ES, hóast Danmark er.",
    "Il-Bord ta' Inkjesta dwar l-allegat ħasil ta' flus.",
    "你喺度搵乜嘢呀？",
    "The quick brown fox jumps over the lazy dog.",
] * 20


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("\n".join(TEXT) + "\n", encoding="utf-8")
    return path


def test_tiny_model_dimensions_and_tokenizer(text_file, tmp_path):
    out = tmp_path / "tiny"
    # The workflow renders options with underscores; the command accepts both spellings.
    assert tiny.main(["--text", str(text_file), "--out", str(out), "--vocab_size", "300"]) == 0

    model = AutoModelForMaskedLM.from_pretrained(out)
    config = model.config
    assert (config.hidden_size, config.num_hidden_layers) == (32, 2)
    assert (config.num_attention_heads, config.intermediate_size) == (2, 64)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert config.vocab_size == len(tokenizer) <= 300
    assert config.pad_token_id == tokenizer.pad_token_id

    ids = tokenizer("Føroyar eru ikki limur", "ayé")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id
    assert ids.count(tokenizer.sep_token_id) == 2
    assert tokenizer.unk_token_id not in tokenizer(TEXT[0])["input_ids"]
    # Cased, and accents kept: the normaliser neither lower-cases nor strips marks.
    assert tokenizer.convert_ids_to_tokens(tokenizer("Danmark")["input_ids"])[1].startswith("D")
    assert "ọ" in tokenizer.decode(tokenizer("ọ̀run")["input_ids"], skip_special_tokens=True)

    record = json.loads((out / tiny.TINY_MODEL_FILE).read_text(encoding="utf-8"))
    assert record["vocab_size"] == len(tokenizer)
    assert record["text_files"] == [str(text_file)]


def test_tiny_model_is_reproducible(text_file, tmp_path):
    first = tiny.build_tiny_model([text_file], tmp_path / "first", vocab_size=300, seed=3)
    second = tiny.build_tiny_model([text_file], tmp_path / "second", vocab_size=300, seed=3)
    other = tiny.build_tiny_model([text_file], tmp_path / "other", vocab_size=300, seed=4)

    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()
    weights, same, different = (load_file(folder / "model.safetensors")
                                for folder in (first, second, other))
    assert all(torch.equal(weights[key], same[key]) for key in weights)
    assert not torch.equal(weights["bert.embeddings.word_embeddings.weight"],
                           different["bert.embeddings.word_embeddings.weight"])


def test_tiny_model_loads_for_token_classification(text_file, tmp_path):
    out = tiny.build_tiny_model([text_file], tmp_path / "tiny", vocab_size=300)
    model = AutoModelForTokenClassification.from_pretrained(out, num_labels=4)
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer([["Føroyar", "eru"], ["ES"]], is_split_into_words=True, padding=True,
                      return_tensors="pt")
    assert model(**batch).logits.shape[:2] == batch["input_ids"].shape


def test_tiny_model_rejects_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        tiny.build_tiny_model([tmp_path / "missing.txt"], tmp_path / "out")
    with pytest.raises(ValueError, match="vocab_size=3"):
        tiny.build_tiny_model([tmp_path / "missing.txt"], tmp_path / "out", vocab_size=3)
    assert tiny.main(["--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "out").exists()
