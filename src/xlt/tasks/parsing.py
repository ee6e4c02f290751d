"""Dependency parsing with the biaffine parser, decoded into well-formed trees, scored by UAS/LAS.

Predicted trees come from `decode_tree` (Chu-Liu/Edmonds with exactly one word attached to the
root), never from a per-word argmax over heads. Relations are then chosen per predicted arc: the
root-attached word gets `root`, and every other word gets its best relation other than `root`.
UAS and LAS count every word, punctuation and root-attached words included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, EvalPrediction

from ..data.records import UNIVERSAL_DEPRELS, UdSentence
from ..metrics import attachment_scores
from . import sources
from .base import IGNORE_INDEX, LoadedModel, Task, pad_encoder_inputs, pad_sequences, run_inference
from .biaffine import biaffine_parser_class_for
from .loading import load_with_new_parameters
from .tagging import NOT_ENCODED, encode_words
from .tree_decoding import decode_tree

logger = logging.getLogger(__name__)

ROOT_RELATION = "root"
DECODING_DESCRIPTION = (
    "Chu-Liu/Edmonds maximum spanning tree over arc log-probabilities with exactly one "
    "root-attached word; root-attached word labelled root, other words their best non-root relation"
)


def decode_sentence(
    arc_scores: torch.Tensor,
    relation_scores: torch.Tensor,
    word_mask: torch.Tensor,
    num_words: int,
) -> tuple[list[int | None], list[str | None]]:
    """Decode the tree of one sentence from its rows of the parser outputs.

    `arc_scores` (words, words + 1), `relation_scores` (words, words + 1, relations) and
    `word_mask` (words,) may be padded beyond `num_words`. Words without a token (mask False) get
    head and relation None, and the tree is decoded over the root and the other words.
    """
    encoded = [i for i in range(num_words) if bool(word_mask[i])]
    heads: list[int | None] = [None] * num_words
    relations: list[str | None] = [None] * num_words
    if not encoded:
        return heads, relations

    nodes = [0] + [i + 1 for i in encoded]  # node k of the sub-problem -> head index
    log_probs = torch.log_softmax(arc_scores.float(), dim=-1)
    rows = torch.tensor(encoded, device=log_probs.device)
    columns = torch.tensor(nodes, device=log_probs.device)
    scores = np.zeros((len(nodes), len(nodes)))
    scores[1:] = log_probs[rows][:, columns].double().cpu().numpy()
    tree = decode_tree(scores)

    root_index = UNIVERSAL_DEPRELS.index(ROOT_RELATION)
    for k, word in enumerate(encoded):
        head = nodes[int(tree[k])]
        heads[word] = head
        label_scores = relation_scores[word, head].float().clone()
        if head == 0:
            relations[word] = ROOT_RELATION
        else:
            label_scores[root_index] = -torch.inf
            relations[word] = UNIVERSAL_DEPRELS[int(label_scores.argmax())]
    return heads, relations


class DependencyParsingTask(Task):
    """Biaffine dependency parsing over the 37 universal relations, scored by UAS and LAS."""

    name = "dp"
    selection_metric = "las"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.relation_to_id = {relation: index for index, relation in enumerate(UNIVERSAL_DEPRELS)}

    @classmethod
    def read(cls, path: str, **reader_options) -> list[UdSentence]:
        return sources.read_ud_sentences(path)

    def build_model(self, model_name_or_path: str, **from_pretrained_kwargs) -> LoadedModel:
        config = AutoConfig.from_pretrained(model_name_or_path)
        config.num_labels = len(UNIVERSAL_DEPRELS)
        config.id2label = dict(enumerate(UNIVERSAL_DEPRELS))
        config.label2id = dict(self.relation_to_id)
        config.parser_arc_size = self.options.parser_arc_size
        config.parser_relation_size = self.options.parser_relation_size
        config.parser_dropout = self.options.parser_dropout
        config.word_pooling = self.options.word_pooling
        parser_class = biaffine_parser_class_for(model_name_or_path)
        return load_with_new_parameters(
            parser_class, model_name_or_path, config=config, **from_pretrained_kwargs
        )

    def encode(self, records: Sequence[UdSentence], training: bool) -> list[dict[str, Any]]:
        features = []
        num_not_encoded = 0
        for record in records:
            inputs, first_positions, token_word_ids = encode_words(
                self.tokenizer, record.words, self.max_seq_length
            )
            word_mask = [int(position != NOT_ENCODED) for position in first_positions]
            head_labels, relation_labels = [], []
            for index, (head, relation) in enumerate(zip(record.heads, record.deprels)):
                # An arc is trained only when both of its ends have a token.
                scorable = word_mask[index] and (head == 0 or word_mask[head - 1])
                head_labels.append(head if scorable else IGNORE_INDEX)
                relation_labels.append(self.relation_id(relation, record) if scorable else IGNORE_INDEX)
            num_not_encoded += word_mask.count(0)
            features.append(
                {
                    **inputs,
                    "token_word_ids": token_word_ids,
                    "word_mask": word_mask,
                    "head_labels": head_labels,
                    "relation_labels": relation_labels,
                }
            )
        if num_not_encoded:
            logger.warning(
                "%d words of %d sentences have no sub-word within max_seq_length=%d; they are "
                "left out of training and count as errors in evaluation",
                num_not_encoded, len(records), self.max_seq_length,
            )
        return features

    def relation_id(self, relation: str, record: UdSentence) -> int:
        try:
            return self.relation_to_id[relation]
        except KeyError:
            raise ValueError(
                f"sentence {record.sent_id or '(no sent_id)'}: relation {relation!r} is not one of "
                f"the {len(UNIVERSAL_DEPRELS)} universal dependency relations (subtypes after ':' "
                "must be removed when reading)"
            ) from None

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = pad_encoder_inputs(features, self.tokenizer)
        batch["token_word_ids"] = pad_sequences([f["token_word_ids"] for f in features], NOT_ENCODED)
        batch["word_mask"] = pad_sequences([f["word_mask"] for f in features], 0)
        batch["head_labels"] = pad_sequences([f["head_labels"] for f in features], IGNORE_INDEX)
        batch["relation_labels"] = pad_sequences([f["relation_labels"] for f in features], IGNORE_INDEX)
        return batch

    def evaluate(self, model, records, batch_size):
        features = self.encode(records, training=False)

        def decode_batch(outputs, batch_features):
            return [
                decode_sentence(
                    outputs.arc_scores[row],
                    outputs.relation_scores[row],
                    outputs.word_mask[row],
                    len(feature["word_mask"]),
                )
                for row, feature in enumerate(batch_features)
            ]

        decoded = run_inference(model, features, self.collate, decode_batch, batch_size)
        predicted_heads = [heads for heads, _ in decoded]
        predicted_relations = [relations for _, relations in decoded]
        metrics = attachment_scores(
            predicted_heads,
            predicted_relations,
            [record.heads for record in records],
            [record.deprels for record in records],
        )
        metrics["num_words_not_encoded"] = sum(heads.count(None) for heads in predicted_heads)
        metrics["word_pooling"] = model.config.word_pooling
        metrics["decoding"] = DECODING_DESCRIPTION
        rows = [
            {
                "words": record.words,
                "gold_heads": record.heads,
                "gold_relations": record.deprels,
                "predicted_heads": heads,
                "predicted_relations": relations,
            }
            for record, heads, relations in zip(records, predicted_heads, predicted_relations)
        ]
        return metrics, rows

    def preprocess_logits_for_metrics(self, logits: Any, labels: Any) -> torch.Tensor:
        """Decode the trees of one batch into a (batch, words, 2) tensor of head and relation ids.

        Words that are not decoded hold -1.
        """
        arc_scores, relation_scores, word_mask = logits
        batch_size, num_words = word_mask.shape
        decoded = torch.full((batch_size, num_words, 2), -1, dtype=torch.long)
        for row in range(batch_size):
            heads, relations = decode_sentence(
                arc_scores[row], relation_scores[row], word_mask[row], num_words
            )
            for word, (head, relation) in enumerate(zip(heads, relations)):
                if head is not None:
                    decoded[row, word, 0] = head
                    decoded[row, word, 1] = self.relation_to_id[relation]
        return decoded.to(word_mask.device)

    def compute_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        """Score the words that carry a training label (words whose arc has both ends encoded)."""
        decoded = np.asarray(prediction.predictions)
        gold_heads, gold_relations = (np.asarray(array) for array in prediction.label_ids)
        scored = gold_heads != IGNORE_INDEX
        if not scored.any():
            raise ValueError("dependency parsing validation data has no scorable word")
        head_correct = (decoded[..., 0] == gold_heads) & scored
        labelled_correct = head_correct & (decoded[..., 1] == gold_relations)
        total = int(scored.sum())
        return {"uas": head_correct.sum() / total, "las": labelled_correct.sum() / total}

    @classmethod
    def vocabulary_lines(cls, records: Sequence[UdSentence]) -> Iterable[str]:
        for record in records:
            yield "\t".join(record.words)
