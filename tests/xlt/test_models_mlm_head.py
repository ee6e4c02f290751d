"""Masked-LM head training on a frozen encoder, on the tiny random BERT."""

from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)

from xlt.models import mlm_head
from xlt.models.mlm_head import MlmHeadArguments


def write_corpus(path, words, lines, seed):
    rng = random.Random(seed)
    # Skewed word frequencies give the head something to learn beyond a uniform guess.
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    text = [" ".join(rng.choices(words, weights, k=rng.randrange(4, 12))) for _ in range(lines)]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def corpora(tmp_path):
    first = write_corpus(tmp_path / "aa.txt", ["the", "dog", "runs", "to", "the", "house"], 120, 0)
    second = write_corpus(tmp_path / "bb.txt", ["Mary", "saw", "a", "red", "cat", "in", "London"], 120, 1)
    return {"aa": first, "bb": second}


def arguments(model_dir, corpora, tmp_path, **overrides) -> MlmHeadArguments:
    values = {
        "model": str(model_dir),
        "text": [f"{language}={path}" for language, path in corpora.items()],
        "out": str(tmp_path / "mlm"),
        "report": str(tmp_path / "report.json"),
        "train_lines_per_language": 100,
        "eval_lines_per_language": 20,
        "max_length": 32,
        "epochs": 4,
        "batch_size": 64,
        "encode_batch_size": 16,
        "learning_rate": 1e-2,
    }
    values.update(overrides)
    return MlmHeadArguments(**values)


def test_head_training_report(tiny_model_dir, corpora, tmp_path):
    report = mlm_head.run(arguments(tiny_model_dir, corpora, tmp_path))

    assert set(report["languages"]) == {"aa", "bb"}
    for stats in report["languages"].values():
        assert stats["train_lines"] == 100
        assert stats["eval_lines"] == 20
        assert stats["eval_masked_tokens"] > 0
        assert 0.0 <= stats["accuracy_before"] <= 1.0
        assert 0.0 <= stats["accuracy_after"] <= 1.0
    overall = report["overall"]
    assert overall["accuracy_after"] > overall["accuracy_before"]
    assert overall["accuracy_after"] >= overall["accuracy_most_frequent_token"]
    epochs = report["epochs"]
    assert [record["epoch"] for record in epochs] == [1, 2, 3, 4]
    assert epochs[-1]["mean_loss"] < epochs[0]["mean_loss"]
    assert epochs[-1]["held_out_accuracy"] == pytest.approx(overall["accuracy_after"])
    assert set(report["wall_time_seconds"]) == {"encode", "train_head", "total"}
    assert report["settings"]["seed"] == 42
    saved = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert saved["overall"] == overall


def test_encoder_and_embeddings_unchanged(tiny_model_dir, corpora, tmp_path):
    mlm_head.run(arguments(tiny_model_dir, corpora, tmp_path))
    before = load_file(tiny_model_dir / "model.safetensors")
    after = load_file(tmp_path / "mlm" / "model.safetensors")

    encoder_keys = [key for key in before if key.startswith("bert.")]
    assert encoder_keys
    for key in encoder_keys:
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["cls.predictions.transform.dense.weight"],
                           after["cls.predictions.transform.dense.weight"])
    assert not torch.equal(before["cls.predictions.bias"], after["cls.predictions.bias"])


def test_output_folder_loads_with_auto_classes(tiny_model_dir, corpora, tmp_path):
    mlm_head.run(arguments(tiny_model_dir, corpora, tmp_path, epochs=1))
    out = tmp_path / "mlm"

    masked_lm = AutoModelForMaskedLM.from_pretrained(out)
    assert masked_lm.get_output_embeddings().weight is masked_lm.get_input_embeddings().weight
    assert AutoTokenizer.from_pretrained(out).mask_token == "[MASK]"

    tagger, info = AutoModelForTokenClassification.from_pretrained(
        out, num_labels=3, output_loading_info=True
    )
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    torch.testing.assert_close(tagger.bert.embeddings.word_embeddings.weight,
                               masked_lm.bert.embeddings.word_embeddings.weight)
    _classifier, info = AutoModelForSequenceClassification.from_pretrained(
        out, num_labels=3, output_loading_info=True
    )
    assert all(key.startswith(("classifier.", "bert.pooler.")) for key in info["missing_keys"])


def test_bf16_autocast_run(tiny_model_dir, corpora, tmp_path):
    report = mlm_head.run(arguments(tiny_model_dir, corpora, tmp_path, epochs=2, bf16=True))
    assert report["overall"]["eval_masked_tokens"] > 0
    assert report["overall"]["accuracy_after"] > report["overall"]["accuracy_before"]
    assert report["settings"]["bf16"] is True
    head = AutoModelForMaskedLM.from_pretrained(tmp_path / "mlm").cls.predictions
    assert head.transform.dense.weight.dtype == torch.float32


def test_cli_entry_point(tiny_model_dir, corpora, tmp_path):
    status = mlm_head.main([
        "--model", str(tiny_model_dir),
        "--text", f"aa={corpora['aa']}", f"bb={corpora['bb']}",
        "--out", str(tmp_path / "mlm"), "--report", str(tmp_path / "report.json"),
        "--train-lines-per-language", "30", "--eval_lines_per_language", "10", "--epochs", "1",
    ])
    assert status == 0
    assert json.loads((tmp_path / "report.json").read_text())["languages"]["aa"]["eval_lines"] == 10


def test_split_is_seeded_and_disjoint():
    lines = [f"line {i}" for i in range(50)]
    train, held_out = mlm_head.split_lines(lines, "aa", 30, 10, seed=1)
    assert (train, held_out) == mlm_head.split_lines(lines, "aa", 30, 10, seed=1)
    assert len(train) == 30
    assert len(held_out) == 10
    assert not set(train) & set(held_out)
    assert mlm_head.split_lines(lines, "bb", 30, 10, seed=1)[1] != held_out
    small_train, small_held_out = mlm_head.split_lines(lines[:6], "aa", 30, 10, seed=1)
    assert (len(small_train), len(small_held_out)) == (3, 3)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"mlm_probability": 1.5}, "mlm_probability"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"max_length": 2}, "max_length"),
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
        ({"bf16": "yes"}, "bf16"),
        ({"text": ["aa"]}, "LANG=FILE"),
        ({"text": []}, "text"),
    ],
)
def test_arguments_reject_invalid_values(tiny_model_dir, corpora, tmp_path, overrides, field):
    with pytest.raises((ValueError, TypeError), match=field):
        arguments(tiny_model_dir, corpora, tmp_path, **overrides)


def test_arguments_reject_duplicate_and_missing_files(tiny_model_dir, corpora, tmp_path):
    with pytest.raises(ValueError, match="given twice"):
        arguments(tiny_model_dir, corpora, tmp_path,
                  text=[f"aa={corpora['aa']}", f"aa={corpora['bb']}"])
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        arguments(tiny_model_dir, corpora, tmp_path, text=[f"aa={tmp_path / 'missing.txt'}"])
