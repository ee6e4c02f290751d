"""Metric functions against hand-computed values."""

import math

import pytest

from xlt.metrics import (
    accuracy,
    attachment_scores,
    entity_scores,
    majority_tag_accuracy,
    word_accuracy,
)


def test_accuracy_counts_equal_labels():
    scores = accuracy([0, 1, 2, 2], [0, 2, 2, 1])
    assert scores["accuracy"] == 0.5
    assert scores["num_examples"] == 4


def test_accuracy_rejects_length_mismatch():
    with pytest.raises(ValueError, match="3 predictions but 2 references"):
        accuracy([0, 1, 2], [0, 1])


def test_accuracy_rejects_empty_input():
    with pytest.raises(ValueError, match="no examples"):
        accuracy([], [])


def test_word_accuracy_pools_words_over_sentences():
    predicted = [["NOUN", "VERB", "DET"], ["PUNCT"]]
    gold = [["NOUN", "ADJ", "DET"], ["PUNCT"]]
    scores = word_accuracy(predicted, gold)
    # 3 of 4 words right; a per-sentence average would give (2/3 + 1) / 2 instead.
    assert scores["accuracy"] == 0.75
    assert scores["num_words"] == 4
    assert scores["num_sentences"] == 2


def test_word_accuracy_counts_missing_prediction_as_error():
    scores = word_accuracy([["NOUN", None]], [["NOUN", "VERB"]])
    assert scores["accuracy"] == 0.5


def test_word_accuracy_rejects_sentence_length_mismatch():
    with pytest.raises(ValueError, match="sentence 1 has 1 predicted labels but 2 gold labels"):
        word_accuracy([["A"], ["B"]], [["A"], ["B", "C"]])


def test_word_accuracy_rejects_sentence_count_mismatch():
    with pytest.raises(ValueError, match="1 predicted sentences but 2 gold sentences"):
        word_accuracy([["A"]], [["A"], ["B"]])


def test_majority_tag_accuracy_uses_most_frequent_gold_tag():
    gold = [["NOUN", "VERB", "NOUN"], ["PUNCT", "NOUN"]]
    scores = majority_tag_accuracy(gold)
    assert scores["majority_tag"] == "NOUN"
    assert scores["accuracy"] == 3 / 5
    assert scores["num_words"] == 5


def test_majority_tag_accuracy_breaks_ties_alphabetically():
    scores = majority_tag_accuracy([["VERB", "NOUN"], ["NOUN", "VERB"]])
    assert scores["majority_tag"] == "NOUN"
    assert scores["accuracy"] == 0.5


def test_entity_scores_exact_match():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"]]
    scores = entity_scores(predicted, gold)
    # Gold PER(0-1), LOC(3); predicted PER(0-1), ORG(3): one of two correct either way.
    assert scores["precision"] == 0.5
    assert scores["recall"] == 0.5
    assert scores["f1"] == 0.5
    assert scores["per_type"]["PER"]["f1"] == 1.0
    assert scores["per_type"]["LOC"]["recall"] == 0.0
    assert scores["per_type"]["ORG"]["precision"] == 0.0


def test_entity_scores_partial_span_is_wrong():
    scores = entity_scores([["B-PER", "O"]], [["B-PER", "I-PER"]])
    assert scores["f1"] == 0.0
    assert scores["num_gold_entities"] == 1
    assert scores["num_predicted_entities"] == 1


def test_entity_scores_never_merge_across_sentence_boundary():
    # Sentence 1 ends with B-PER and sentence 2 starts with I-PER. Scored per sentence there are
    # two gold entities, PER at the end of sentence 1 and PER at the start of sentence 2 (an I-
    # tag that continues nothing starts an entity), so the prediction finds 1 of 2: P = 1,
    # R = 1/2, F1 = 2/3. Merged into one sequence the gold would be a single two-token PER and
    # the prediction would score 0.
    gold = [["O", "B-PER"], ["I-PER", "O"]]
    predicted = [["O", "B-PER"], ["O", "O"]]
    scores = entity_scores(predicted, gold)
    assert scores["num_gold_entities"] == 2
    assert scores["num_predicted_entities"] == 1
    assert scores["precision"] == 1.0
    assert scores["recall"] == 0.5
    assert math.isclose(scores["f1"], 2 / 3)


def test_entity_scores_without_any_entity_are_zero():
    scores = entity_scores([["O", "O"]], [["O", "O"]])
    assert scores["f1"] == 0.0
    assert scores["num_gold_entities"] == 0


def test_attachment_scores_include_root_attached_word():
    # "dogs bark loudly": bark is attached to the root. The prediction gets every head right but
    # labels the root-attached word ccomp. The root-attached word counts, so LAS is 2/3 (a
    # scorer dropping root-attached words would report 1.0).
    gold_heads = [[2, 0, 2]]
    gold_relations = [["nsubj", "root", "advmod"]]
    predicted_heads = [[2, 0, 2]]
    predicted_relations = [["nsubj", "ccomp", "advmod"]]
    scores = attachment_scores(predicted_heads, predicted_relations, gold_heads, gold_relations)
    assert scores["uas"] == 1.0
    assert math.isclose(scores["las"], 2 / 3)
    assert scores["num_words"] == 3


def test_attachment_scores_wrong_root_choice():
    # Predicted tree: "dogs" attached to the root, "bark" under "dogs": two heads wrong.
    gold_heads = [[2, 0, 2]]
    gold_relations = [["nsubj", "root", "advmod"]]
    predicted_heads = [[0, 1, 2]]
    predicted_relations = [["root", "acl", "advmod"]]
    scores = attachment_scores(predicted_heads, predicted_relations, gold_heads, gold_relations)
    assert math.isclose(scores["uas"], 1 / 3)
    assert math.isclose(scores["las"], 1 / 3)


def test_attachment_scores_include_punctuation_and_pool_sentences():
    gold_heads = [[2, 0, 2], [0, 1]]
    gold_relations = [["nsubj", "root", "punct"], ["root", "punct"]]
    # The punctuation of sentence 1 gets the wrong head; sentence 2 is right.
    predicted_heads = [[2, 0, 1], [0, 1]]
    predicted_relations = [["nsubj", "root", "punct"], ["root", "punct"]]
    scores = attachment_scores(predicted_heads, predicted_relations, gold_heads, gold_relations)
    assert scores["num_words"] == 5
    assert scores["uas"] == 4 / 5
    assert scores["las"] == 4 / 5
    assert "punctuation included" in scores["scope"]


def test_attachment_scores_count_missing_head_as_error():
    scores = attachment_scores([[None, 0]], [[None, "root"]], [[2, 0]], [["nsubj", "root"]])
    assert scores["uas"] == 0.5
    assert scores["las"] == 0.5


def test_attachment_scores_reject_relation_length_mismatch():
    with pytest.raises(ValueError, match="relations"):
        attachment_scores([[2, 0]], [["nsubj"]], [[2, 0]], [["nsubj", "root"]])
