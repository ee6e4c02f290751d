"""Word-level tagging tasks: part-of-speech tagging (UPOS) and named-entity recognition (BIO).

Sentences are tokenised from their word lists (`is_split_into_words=True`). Only the first
sub-word of each word carries the word's label, the others are ignored by the loss, and the
prediction for a word is the prediction at its first sub-word.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import AutoModelForTokenClassification, EvalPrediction, PreTrainedModel

from ..data.records import NER_TAGS, UPOS_TAGS, NerSentence, UdSentence
from ..metrics import ENTITY_SCHEME, entity_scores, majority_tag_accuracy, word_accuracy
from . import sources
from .base import IGNORE_INDEX, LoadedModel, Task, pad_encoder_inputs, pad_sequences, run_inference
from .loading import load_with_new_parameters

logger = logging.getLogger(__name__)

# First-token position of a word that has no token in the encoded sentence (cut off by
# truncation, or a word the tokenizer turns into no piece at all).
NOT_ENCODED = -1


def encode_words(
    tokenizer, words: Sequence[str], max_seq_length: int
) -> tuple[dict[str, list[int]], list[int], list[int]]:
    """Tokenise one sentence from its words and locate each word's sub-words.

    Returns the encoder inputs, the position of each word's first sub-word (`NOT_ENCODED` when
    the word has no token), and the word index of every token (-1 for special tokens).
    """
    encoding = tokenizer(
        list(words), is_split_into_words=True, truncation=True, max_length=max_seq_length
    )
    token_word_ids = [NOT_ENCODED if w is None else w for w in encoding.word_ids()]
    first_positions = [NOT_ENCODED] * len(words)
    for position, word_index in enumerate(token_word_ids):
        if word_index != NOT_ENCODED and first_positions[word_index] == NOT_ENCODED:
            first_positions[word_index] = position
    inputs = {"input_ids": encoding["input_ids"]}
    if "token_type_ids" in encoding:
        inputs["token_type_ids"] = encoding["token_type_ids"]
    return inputs, first_positions, token_word_ids


class TaggingTask(Task):
    """Token classification with one label per word from a fixed inventory."""

    labels: ClassVar[tuple[str, ...]]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_to_id = {label: index for index, label in enumerate(self.labels)}

    @classmethod
    def sentence_words_and_tags(cls, record: Any) -> tuple[list[str], list[str]]:
        raise NotImplementedError

    def build_model(self, model_name_or_path: str, **from_pretrained_kwargs) -> LoadedModel:
        return load_with_new_parameters(
            AutoModelForTokenClassification,
            model_name_or_path,
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id=dict(self.label_to_id),
            **from_pretrained_kwargs,
        )

    def encode(self, records: Sequence[Any], training: bool) -> list[dict[str, Any]]:
        features = []
        num_not_encoded = 0
        for record in records:
            words, tags = self.sentence_words_and_tags(record)
            inputs, first_positions, _ = encode_words(self.tokenizer, words, self.max_seq_length)
            token_labels = [IGNORE_INDEX] * len(inputs["input_ids"])
            for position, tag in zip(first_positions, tags):
                if position != NOT_ENCODED:
                    token_labels[position] = self.label_to_id[tag]
            num_not_encoded += first_positions.count(NOT_ENCODED)
            features.append({**inputs, "labels": token_labels, "first_positions": first_positions})
        if num_not_encoded:
            logger.warning(
                "%d words of %d sentences have no sub-word within max_seq_length=%d; they are "
                "left out of training and count as errors in evaluation",
                num_not_encoded, len(records), self.max_seq_length,
            )
        return features

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = pad_encoder_inputs(features, self.tokenizer)
        batch["labels"] = pad_sequences([f["labels"] for f in features], IGNORE_INDEX)
        return batch

    def predict_tags(
        self, model: PreTrainedModel, records: Sequence[Any], batch_size: int
    ) -> list[list[str | None]]:
        """Predict one tag per word, or None for a word that has no sub-word in the encoding."""
        features = self.encode(records, training=False)

        def decode_batch(outputs, batch_features):
            label_ids = outputs.logits.argmax(dim=-1).cpu().numpy()
            return [
                [
                    None if position == NOT_ENCODED else self.labels[label_ids[row, position]]
                    for position in feature["first_positions"]
                ]
                for row, feature in enumerate(batch_features)
            ]

        return run_inference(model, features, self.collate, decode_batch, batch_size)

    @classmethod
    def vocabulary_lines(cls, records: Sequence[Any]) -> Iterable[str]:
        for record in records:
            words, _ = cls.sentence_words_and_tags(record)
            yield "\t".join(words)

    def _gathered_sentences(self, prediction: EvalPrediction) -> tuple[list[list[str]], list[list[str]]]:
        """Split the Trainer's padded token-level arrays into per-sentence tag lists."""
        predicted_ids = np.asarray(prediction.predictions)
        label_ids = np.asarray(prediction.label_ids)
        predicted, gold = [], []
        for predicted_row, label_row in zip(predicted_ids, label_ids):
            keep = label_row != IGNORE_INDEX
            predicted.append([self.labels[i] for i in predicted_row[keep]])
            gold.append([self.labels[i] for i in label_row[keep]])
        return predicted, gold


class PosTask(TaggingTask):
    """Universal part-of-speech tagging, scored by word accuracy."""

    name = "pos"
    labels = UPOS_TAGS
    selection_metric = "accuracy"

    @classmethod
    def read(cls, path: str, **reader_options) -> list[UdSentence]:
        return sources.read_ud_sentences(path)

    @classmethod
    def sentence_words_and_tags(cls, record: UdSentence) -> tuple[list[str], list[str]]:
        return record.words, record.upos

    def evaluate(self, model, records, batch_size):
        predicted = self.predict_tags(model, records, batch_size)
        gold = [record.upos for record in records]
        metrics = word_accuracy(predicted, gold)
        metrics["num_words_not_encoded"] = sum(tags.count(None) for tags in predicted)
        # The floor a tagger must beat: always predicting the test set's most frequent tag.
        metrics["majority_tag_baseline"] = majority_tag_accuracy(gold)
        rows = [
            {"words": r.words, "gold": g, "predicted": p}
            for r, g, p in zip(records, gold, predicted)
        ]
        return metrics, rows

    def compute_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        predicted, gold = self._gathered_sentences(prediction)
        return {"accuracy": word_accuracy(predicted, gold)["accuracy"]}


class NerTask(TaggingTask):
    """Named-entity recognition with BIO tags, scored by entity-level micro F1 (seqeval)."""

    name = "ner"
    labels = NER_TAGS
    selection_metric = "f1"

    @classmethod
    def read(cls, path: str, **reader_options) -> list[NerSentence]:
        return sources.read_ner_sentences(path, reader_options.get("ner_type_map"))

    @classmethod
    def sentence_words_and_tags(cls, record: NerSentence) -> tuple[list[str], list[str]]:
        return record.tokens, record.tags

    def evaluate(self, model, records, batch_size):
        predicted = self.predict_tags(model, records, batch_size)
        num_not_encoded = sum(tags.count(None) for tags in predicted)
        # A word without a sub-word gets "O": it cannot start or continue a predicted entity.
        predicted = [[tag or "O" for tag in tags] for tags in predicted]
        gold = [record.tags for record in records]
        metrics = entity_scores(predicted, gold)
        metrics.update(
            num_sentences=len(records),
            num_words=sum(len(tags) for tags in gold),
            num_words_not_encoded=num_not_encoded,
            scheme=ENTITY_SCHEME,
        )
        rows = [
            {"words": r.tokens, "gold": g, "predicted": p}
            for r, g, p in zip(records, gold, predicted)
        ]
        return metrics, rows

    def compute_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        predicted, gold = self._gathered_sentences(prediction)
        scores = entity_scores(predicted, gold)
        return {key: scores[key] for key in ("precision", "recall", "f1")}
