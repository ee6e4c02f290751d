"""Evaluation metrics of the tasks, computed from word-level or sentence-level predictions.

Every function takes predictions and gold labels per sentence (or per example), checks that their
shapes agree, and returns a dict of plain Python numbers that can go straight into a metrics JSON.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

# How the dependency-parsing scores are counted; recorded next to the scores in metrics files.
ATTACHMENT_SCOPE = (
    "all words, punctuation included, words attached to the root included; multiword tokens "
    "and empty nodes excluded"
)

# How entities are matched; recorded next to the NER scores in metrics files.
ENTITY_SCHEME = (
    "exact span and type match, micro-averaged over entities; spans decoded by seqeval's default "
    "(conlleval-compatible) mode, which starts a new entity at an I- tag that does not continue "
    "one, and never across a sentence boundary"
)


def _check_parallel(name: str, predicted: Sequence, gold: Sequence) -> None:
    if len(predicted) != len(gold):
        raise ValueError(
            f"{name}: got {len(predicted)} predicted sentences but {len(gold)} gold sentences; "
            "pass one prediction list per gold sentence, in the same order"
        )
    for index, (predicted_sentence, gold_sentence) in enumerate(zip(predicted, gold)):
        if len(predicted_sentence) != len(gold_sentence):
            raise ValueError(
                f"{name}: sentence {index} has {len(predicted_sentence)} predicted labels but "
                f"{len(gold_sentence)} gold labels; predict exactly one label per gold word"
            )


def accuracy(predictions: Sequence[Hashable], references: Sequence[Hashable]) -> dict[str, Any]:
    """Compute the fraction of examples whose prediction equals the reference (e.g. NLI labels)."""
    if len(predictions) != len(references):
        raise ValueError(
            f"accuracy: got {len(predictions)} predictions but {len(references)} references"
        )
    if not references:
        raise ValueError("accuracy: there are no examples to score")
    correct = sum(p == r for p, r in zip(predictions, references))
    return {"accuracy": correct / len(references), "num_examples": len(references)}


def word_accuracy(
    predicted: Sequence[Sequence[Hashable]], gold: Sequence[Sequence[Hashable]]
) -> dict[str, Any]:
    """Compute the fraction of words whose predicted tag equals the gold tag, over all sentences."""
    _check_parallel("word_accuracy", predicted, gold)
    num_words = sum(len(sentence) for sentence in gold)
    if num_words == 0:
        raise ValueError("word_accuracy: there are no words to score")
    correct = sum(
        p == g for p_sentence, g_sentence in zip(predicted, gold) for p, g in zip(p_sentence, g_sentence)
    )
    return {"accuracy": correct / num_words, "num_words": num_words, "num_sentences": len(gold)}


def majority_tag_accuracy(gold: Sequence[Sequence[Hashable]]) -> dict[str, Any]:
    """Compute the word accuracy of always predicting the most frequent gold tag of `gold` itself.

    This is the baseline that a tagger must beat. Ties between equally frequent tags go to the
    tag that sorts first, so the result does not depend on sentence order.
    """
    counts = Counter(tag for sentence in gold for tag in sentence)
    if not counts:
        raise ValueError("majority_tag_accuracy: there are no words to score")
    best_count = max(counts.values())
    majority_tag = min(str(tag) for tag, count in counts.items() if count == best_count)
    num_words = sum(counts.values())
    return {"majority_tag": majority_tag, "accuracy": best_count / num_words, "num_words": num_words}


def entity_scores(
    predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Compute entity-level micro precision, recall and F1 with seqeval, plus per-type scores.

    Sentences are passed to seqeval as separate lists, so an entity ending one sentence and an
    I- tag starting the next are two entities, not one.
    """
    from seqeval.metrics import classification_report
    from seqeval.metrics.sequence_labeling import get_entities

    _check_parallel("entity_scores", predicted, gold)
    predicted_lists = [list(sentence) for sentence in predicted]
    gold_lists = [list(sentence) for sentence in gold]
    if not any(gold_lists):
        raise ValueError("entity_scores: there are no words to score")

    num_gold = len(get_entities(gold_lists))
    num_predicted = len(get_entities(predicted_lists))
    if num_gold == 0 and num_predicted == 0:
        # seqeval's report has no rows at all here; every score is 0 by the usual convention.
        return {
            "precision": 0.0, "recall": 0.0, "f1": 0.0,
            "num_gold_entities": 0, "num_predicted_entities": 0, "per_type": {},
        }

    report = classification_report(gold_lists, predicted_lists, output_dict=True, zero_division=0)
    micro = report["micro avg"]
    per_type = {
        name: {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": int(row["support"]),
        }
        for name, row in sorted(report.items())
        if not name.endswith(" avg")
    }
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "num_gold_entities": num_gold,
        "num_predicted_entities": num_predicted,
        "per_type": per_type,
    }


def attachment_scores(
    predicted_heads: Sequence[Sequence[int]],
    predicted_relations: Sequence[Sequence[str]],
    gold_heads: Sequence[Sequence[int]],
    gold_relations: Sequence[Sequence[str]],
) -> dict[str, Any]:
    """Compute unlabelled and labelled attachment scores (UAS, LAS) over every word.

    Heads are 1-based word indices with 0 for the root. A word counts for UAS when its head is
    right and for LAS when its head and its relation are both right. Every word is scored:
    punctuation and words attached to the root are included (see `ATTACHMENT_SCOPE`).
    """
    _check_parallel("attachment_scores (heads)", predicted_heads, gold_heads)
    _check_parallel("attachment_scores (relations)", predicted_relations, gold_relations)
    _check_parallel("attachment_scores (gold heads and relations)", gold_relations, gold_heads)

    num_words = sum(len(sentence) for sentence in gold_heads)
    if num_words == 0:
        raise ValueError("attachment_scores: there are no words to score")
    head_correct = 0
    labelled_correct = 0
    for sentence in zip(predicted_heads, predicted_relations, gold_heads, gold_relations):
        for p_head, p_relation, g_head, g_relation in zip(*sentence):
            if p_head == g_head:
                head_correct += 1
                if p_relation == g_relation:
                    labelled_correct += 1
    return {
        "uas": head_correct / num_words,
        "las": labelled_correct / num_words,
        "num_words": num_words,
        "num_sentences": len(gold_heads),
        "scope": ATTACHMENT_SCOPE,
    }
