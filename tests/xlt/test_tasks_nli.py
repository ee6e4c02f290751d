"""NLI task: reading both formats, pair encoding, the new pooler, metrics."""

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer, EvalPrediction

from xlt.data.records import NLI_LABELS, NliExample
from xlt.tasks import build_task
from xlt.tasks.sources import detect_nli_format

SNIPPETS = Path(__file__).parent / "snippets"


@pytest.fixture
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_nli_format_is_detected_from_header():
    assert detect_nli_format(SNIPPETS / "tasks_nli_target.tsv") == "americasnli"
    assert detect_nli_format(SNIPPETS / "tasks_nli_en.txt") == "textfooler"


def test_nli_reads_both_formats(tokenizer):
    task = build_task("nli", tokenizer, 32)
    english = task.read(str(SNIPPETS / "tasks_nli_en.txt"))
    target = task.read(str(SNIPPETS / "tasks_nli_target.tsv"))
    assert len(english) == 6
    assert NLI_LABELS[english[1].label] == "contradiction"
    assert [NLI_LABELS[e.label] for e in target] == ["entailment", "contradiction", "neutral"]
    assert target[0].example_id == "1"


def test_nli_encodes_pairs_with_segments(tokenizer):
    task = build_task("nli", tokenizer, 32)
    (feature,) = task.encode([NliExample("the dog runs", "a cat", 1)], training=True)
    assert feature["labels"] == 1
    assert feature["token_type_ids"].count(1) == 3  # "a cat [SEP]"
    assert feature["input_ids"].count(tokenizer.sep_token_id) == 2


def test_nli_truncates_longest_text_first(tokenizer):
    task = build_task("nli", tokenizer, 10)
    long_premise = " ".join(["dog"] * 30)
    (feature,) = task.encode([NliExample(long_premise, "a cat", 0)], training=False)
    assert len(feature["input_ids"]) == 10
    assert feature["token_type_ids"].count(1) == 3


def test_nli_pooler_missing_from_checkpoint_is_head(tiny_model_dir, tokenizer):
    # The tiny checkpoint is a BertForMaskedLM, which has no pooler.
    loaded = build_task("nli", tokenizer, 32).build_model(str(tiny_model_dir))
    assert "bert.pooler.dense.weight" in loaded.new_parameter_names
    assert "classifier.weight" in loaded.new_parameter_names
    assert not any(n.startswith("bert.encoder") for n in loaded.new_parameter_names)


def test_nli_evaluate_reports_accuracy(tiny_model_dir, tokenizer):
    task = build_task("nli", tokenizer, 32)
    model = task.build_model(str(tiny_model_dir)).model
    records = task.read(str(SNIPPETS / "tasks_nli_target.tsv"))
    metrics, rows = task.evaluate(model, records, batch_size=2)
    assert metrics["num_examples"] == 3
    assert metrics["accuracy"] in (0.0, 1 / 3, 2 / 3, 1.0)
    assert [row["gold"] for row in rows] == ["entailment", "contradiction", "neutral"]


def test_nli_compute_metrics(tokenizer):
    task = build_task("nli", tokenizer, 32)
    metrics = task.compute_metrics(
        EvalPrediction(predictions=np.array([0, 1, 2, 2]), label_ids=np.array([0, 1, 1, 2]))
    )
    assert metrics["accuracy"] == 0.75


def test_nli_vocabulary_lines_are_the_two_texts():
    from xlt.tasks.nli import NliTask

    lines = list(NliTask.vocabulary_lines([NliExample("a b", "c d", 0)]))
    assert lines == ["a b", "c d"]
