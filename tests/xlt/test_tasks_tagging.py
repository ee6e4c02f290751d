"""POS and NER tasks: sub-word labelling, word-level decoding, truncation and metrics."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, EvalPrediction

from xlt.data.records import NER_TAGS, UPOS_TAGS, NerSentence
from xlt.tasks import build_task
from xlt.tasks.base import IGNORE_INDEX

SNIPPETS = Path(__file__).parent / "snippets"


class OracleTagger(torch.nn.Module):
    """Tagger stand-in whose logits put all mass on the gold label of every labelled token."""

    def __init__(self, num_labels):
        super().__init__()
        self.placeholder = torch.nn.Parameter(torch.zeros(1))
        self.num_labels = num_labels

    def forward(self, input_ids, attention_mask, labels, token_type_ids=None):
        return SimpleNamespace(logits=F.one_hot(labels.clamp(min=0), self.num_labels).float())


@pytest.fixture
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_only_first_sub_word_is_labelled(tokenizer):
    task = build_task("ner", tokenizer, 32)
    # "Blackburn" is not in the tiny vocabulary, so it splits into several pieces.
    sentence = NerSentence(tokens=["Peter", "Blackburn", "ran"], tags=["B-PER", "I-PER", "O"])
    (feature,) = task.encode([sentence], training=True)
    pieces = tokenizer(sentence.tokens, is_split_into_words=True)
    word_ids = pieces.word_ids()
    assert word_ids.count(1) > 1
    labelled = [i for i, label in enumerate(feature["labels"]) if label != IGNORE_INDEX]
    assert labelled == feature["first_positions"]
    assert [word_ids[i] for i in labelled] == [0, 1, 2]
    assert [NER_TAGS[feature["labels"][i]] for i in labelled] == sentence.tags


def test_pos_reads_conllu_and_labels_upos(tokenizer):
    task = build_task("pos", tokenizer, 32)
    records = task.read(str(SNIPPETS / "tasks_en.conllu"))
    assert len(records) == 6
    features = task.encode(records, training=True)
    first = features[0]
    gold = [UPOS_TAGS[first["labels"][i]] for i in first["first_positions"]]
    assert gold == records[0].upos


def test_pos_evaluate_oracle_scores_one(tokenizer):
    task = build_task("pos", tokenizer, 64)
    records = task.read(str(SNIPPETS / "tasks_target.conllu"))
    metrics, rows = task.evaluate(OracleTagger(len(UPOS_TAGS)), records, batch_size=2)
    assert metrics["accuracy"] == 1.0
    assert metrics["num_words"] == sum(len(r.words) for r in records)
    assert metrics["num_words_not_encoded"] == 0
    assert [row["predicted"] for row in rows] == [r.upos for r in records]
    # Of 18 words, DET, NOUN, PROPN, PUNCT and VERB have 3 each; the tie goes to DET.
    assert metrics["majority_tag_baseline"]["majority_tag"] == "DET"
    assert metrics["majority_tag_baseline"]["accuracy"] == 3 / 18


def test_pos_evaluate_counts_truncated_words_as_errors(tokenizer):
    task = build_task("pos", tokenizer, 8)
    records = task.read(str(SNIPPETS / "tasks_en.conllu"))
    metrics, rows = task.evaluate(OracleTagger(len(UPOS_TAGS)), records, batch_size=4)
    assert metrics["num_words_not_encoded"] > 0
    num_words = sum(len(r.words) for r in records)
    assert metrics["num_words"] == num_words
    assert metrics["accuracy"] == pytest.approx(1 - metrics["num_words_not_encoded"] / num_words)
    assert any(None in row["predicted"] for row in rows)


def test_ner_read_maps_date_to_o(tokenizer):
    task = build_task("ner", tokenizer, 32)
    records = task.read(str(SNIPPETS / "tasks_ner_target.txt"))
    assert records[0].tags == ["B-PER", "O", "O", "B-LOC", "O", "O", "O"]


def test_ner_evaluate_oracle_scores_one(tokenizer):
    task = build_task("ner", tokenizer, 32)
    records = task.read(str(SNIPPETS / "tasks_ner_en.txt"))
    metrics, _ = task.evaluate(OracleTagger(len(NER_TAGS)), records, batch_size=3)
    assert metrics["f1"] == 1.0
    assert metrics["num_gold_entities"] == 7
    assert "sentence boundary" in metrics["scheme"]


def test_pos_compute_metrics_ignores_unlabelled_tokens(tokenizer):
    task = build_task("pos", tokenizer, 32)
    noun, verb = UPOS_TAGS.index("NOUN"), UPOS_TAGS.index("VERB")
    labels = np.array([[IGNORE_INDEX, noun, IGNORE_INDEX, verb], [IGNORE_INDEX, verb, IGNORE_INDEX, IGNORE_INDEX]])
    predictions = np.array([[5, noun, 7, noun], [1, verb, 2, IGNORE_INDEX]])
    metrics = task.compute_metrics(EvalPrediction(predictions=predictions, label_ids=labels))
    assert metrics["accuracy"] == pytest.approx(2 / 3)


def test_ner_compute_metrics_keeps_sentences_apart(tokenizer):
    task = build_task("ner", tokenizer, 32)
    b_per, i_per, o = (NER_TAGS.index(t) for t in ("B-PER", "I-PER", "O"))
    labels = np.array([[IGNORE_INDEX, o, b_per], [IGNORE_INDEX, i_per, o]])
    predictions = np.array([[0, o, b_per], [0, o, o]])
    metrics = task.compute_metrics(EvalPrediction(predictions=predictions, label_ids=labels))
    assert metrics["precision"] == 1.0
    assert metrics["recall"] == 0.5


def test_vocabulary_lines_join_words_with_tabs():
    from xlt.tasks.tagging import PosTask

    records = PosTask.read(str(SNIPPETS / "tasks_target.conllu"))
    lines = list(PosTask.vocabulary_lines(records))
    assert lines[2] == "John\twent\tto\tthe\thouse\t."


def test_token_classification_head_is_new(tiny_model_dir, tokenizer):
    loaded = build_task("pos", tokenizer, 32).build_model(str(tiny_model_dir))
    assert loaded.new_parameter_names == ["classifier.bias", "classifier.weight"]
    assert loaded.model.config.id2label[0] == UPOS_TAGS[0]
