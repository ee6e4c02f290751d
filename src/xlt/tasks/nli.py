"""Natural language inference: premise-hypothesis pair classification, scored by accuracy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, EvalPrediction

from ..data.records import NLI_LABELS, NliExample
from ..metrics import accuracy
from . import sources
from .base import LoadedModel, Task, pad_encoder_inputs, run_inference
from .loading import load_with_new_parameters


class NliTask(Task):
    """Sentence-pair classification into `NLI_LABELS`.

    The pair is encoded as one sequence (`<s> premise </s></s> hypothesis </s>` for XLM-R,
    `[CLS] premise [SEP] hypothesis [SEP]` for BERT), truncating the longer text first.
    The classifier reads the model's pooled output. A base checkpoint without pooler weights gets a
    newly initialised pooler, which then belongs to the head like the classifier.
    """

    name = "nli"
    selection_metric = "accuracy"
    vocabulary_line_kind = "text"

    @classmethod
    def read(cls, path: str, **reader_options) -> list[NliExample]:
        return sources.read_nli_examples(path, reader_options.get("nli_format", sources.AUTO_FORMAT))

    def build_model(self, model_name_or_path: str, **from_pretrained_kwargs) -> LoadedModel:
        return load_with_new_parameters(
            AutoModelForSequenceClassification,
            model_name_or_path,
            num_labels=len(NLI_LABELS),
            id2label=dict(enumerate(NLI_LABELS)),
            label2id={label: index for index, label in enumerate(NLI_LABELS)},
            **from_pretrained_kwargs,
        )

    def encode(self, records: Sequence[NliExample], training: bool) -> list[dict[str, Any]]:
        features = []
        for record in records:
            encoding = self.tokenizer(
                record.premise,
                record.hypothesis,
                truncation="longest_first",
                max_length=self.max_seq_length,
            )
            feature = {"input_ids": encoding["input_ids"], "labels": record.label}
            if "token_type_ids" in encoding:
                feature["token_type_ids"] = encoding["token_type_ids"]
            features.append(feature)
        return features

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = pad_encoder_inputs(features, self.tokenizer)
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        return batch

    def evaluate(self, model, records, batch_size):
        features = self.encode(records, training=False)

        def decode_batch(outputs, batch_features):
            return outputs.logits.argmax(dim=-1).tolist()

        predicted = run_inference(model, features, self.collate, decode_batch, batch_size)
        gold = [record.label for record in records]
        metrics = accuracy(predicted, gold)
        metrics["labels"] = list(NLI_LABELS)
        rows = [
            {
                "id": record.example_id,
                "gold": NLI_LABELS[g],
                "predicted": NLI_LABELS[p],
            }
            for record, g, p in zip(records, gold, predicted)
        ]
        return metrics, rows

    def compute_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        predicted = np.asarray(prediction.predictions).reshape(-1).tolist()
        gold = np.asarray(prediction.label_ids).reshape(-1).tolist()
        return {"accuracy": accuracy(predicted, gold)["accuracy"]}

    @classmethod
    def vocabulary_lines(cls, records: Sequence[NliExample]) -> Iterable[str]:
        for record in records:
            yield record.premise
            yield record.hypothesis
