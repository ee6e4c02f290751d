"""Biaffine parser: parameter names, word pooling, tree decoding, learning and metrics."""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    AutoTokenizer,
    BertForTokenClassification,
    EvalPrediction,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
)

from xlt.data.records import UNIVERSAL_DEPRELS
from xlt.tasks import TaskArguments, build_task
from xlt.tasks.base import IGNORE_INDEX
from xlt.tasks.biaffine import Biaffine, pool_words
from xlt.tasks.parsing import decode_sentence

SNIPPETS = Path(__file__).parent / "snippets"


@pytest.fixture
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def english(tokenizer):
    task = build_task("dp", tokenizer, 32)
    return task.read(str(SNIPPETS / "tasks_en.conllu"))


def test_encoder_parameter_names_match_token_classification(tiny_model_dir, tokenizer):
    parser = build_task("dp", tokenizer, 32).build_model(str(tiny_model_dir)).model
    tagger = BertForTokenClassification.from_pretrained(tiny_model_dir)
    parser_encoder = {n for n, _ in parser.named_parameters() if n.startswith("bert.")}
    tagger_encoder = {n for n, _ in tagger.named_parameters() if n.startswith("bert.")}
    assert parser_encoder == tagger_encoder
    assert type(parser).__name__ == "BertForBiaffineParsing"


def test_parser_head_is_new_and_encoder_loaded(tiny_model_dir, tokenizer):
    loaded = build_task("dp", tokenizer, 32).build_model(str(tiny_model_dir))
    assert loaded.new_parameter_names
    assert all(name.startswith("parser.") for name in loaded.new_parameter_names)
    tagger = BertForTokenClassification.from_pretrained(tiny_model_dir)
    torch.testing.assert_close(
        loaded.model.bert.embeddings.word_embeddings.weight,
        tagger.bert.embeddings.word_embeddings.weight,
    )
    for module in loaded.model.modules():
        if isinstance(module, Biaffine):
            assert torch.count_nonzero(module.weight) == 0
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())


def test_parser_supports_xlm_roberta(tmp_path, tokenizer):
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=70, pad_token_id=0,
    )
    XLMRobertaForMaskedLM(config).save_pretrained(tmp_path / "xlmr")
    task = build_task("dp", tokenizer, 32)
    model = task.build_model(str(tmp_path / "xlmr")).model
    assert model.base_model_prefix == "roberta"
    assert any(name.startswith("roberta.encoder.") for name, _ in model.named_parameters())
    records = task.read(str(SNIPPETS / "tasks_target.conllu"))
    outputs = model(**task.collate(task.encode(records, training=True)))
    assert torch.isfinite(outputs.loss)


def test_pool_words_first_and_mean():
    hidden = torch.arange(12, dtype=torch.float).reshape(1, 6, 2)
    # Tokens: [CLS] w0 w0 w1 [SEP] [PAD]; word 2 has no token.
    token_word_ids = torch.tensor([[-1, 0, 0, 1, -1, -1]])
    first = pool_words(hidden, token_word_ids, 3, "first")
    mean = pool_words(hidden, token_word_ids, 3, "mean")
    torch.testing.assert_close(first[0], torch.tensor([[2.0, 3.0], [6.0, 7.0], [0.0, 0.0]]))
    torch.testing.assert_close(mean[0], torch.tensor([[3.0, 4.0], [6.0, 7.0], [0.0, 0.0]]))


def test_forward_masks_self_arcs_and_padding(tiny_model_dir, tokenizer, english):
    task = build_task("dp", tokenizer, 32)
    model = task.build_model(str(tiny_model_dir)).model.eval()
    batch = task.collate(task.encode(english[:2], training=True))
    with torch.no_grad():
        outputs = model(**batch)
    lowest = torch.finfo(outputs.arc_scores.dtype).min
    num_words = batch["word_mask"].shape[1]
    assert outputs.arc_scores.shape == (2, num_words, num_words + 1)
    assert outputs.relation_scores.shape == (2, num_words, num_words + 1, len(UNIVERSAL_DEPRELS))
    for word in range(num_words):
        assert outputs.arc_scores[0, word, word + 1] == lowest
    short = int(batch["word_mask"][1].sum())
    assert (outputs.arc_scores[1, :, short + 1 :] == lowest).all()
    assert torch.isfinite(outputs.loss)


def test_decode_sentence_yields_single_root_tree():
    torch.manual_seed(0)
    num_words = 5
    arc_scores = torch.randn(num_words, num_words + 1)
    arc_scores[:, 0] = 5.0  # every word prefers the root
    relation_scores = torch.randn(num_words, num_words + 1, len(UNIVERSAL_DEPRELS))
    relation_scores[..., UNIVERSAL_DEPRELS.index("root")] = 100.0  # and the root relation
    heads, relations = decode_sentence(arc_scores, relation_scores, torch.ones(num_words), num_words)
    assert heads.count(0) == 1
    root_word = heads.index(0)
    assert relations[root_word] == "root"
    assert all(rel != "root" for i, rel in enumerate(relations) if i != root_word)
    for start in range(1, num_words + 1):
        node, steps = start, 0
        while node != 0:
            node = heads[node - 1]
            steps += 1
            assert steps <= num_words


def test_decode_sentence_skips_words_without_tokens():
    arc_scores = torch.zeros(3, 4)
    relation_scores = torch.zeros(3, 4, len(UNIVERSAL_DEPRELS))
    heads, relations = decode_sentence(arc_scores, relation_scores, torch.tensor([1, 0, 1]), 3)
    assert heads[1] is None
    assert relations[1] is None
    assert heads[0] in (0, 3)
    assert heads[2] in (0, 1)
    assert [heads[0], heads[2]].count(0) == 1


def test_parser_learns_small_treebank(tiny_model_dir, tokenizer, english):
    options = TaskArguments(parser_dropout=0.0, parser_arc_size=64, parser_relation_size=32)
    task = build_task("dp", tokenizer, 32, options)
    torch.manual_seed(0)
    model = task.build_model(str(tiny_model_dir)).model
    batch = task.collate(task.encode(english, training=True))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
    metrics, rows = task.evaluate(model, english, batch_size=4)
    assert metrics["uas"] >= 0.9
    assert metrics["las"] >= 0.8
    assert metrics["num_words"] == sum(len(r.words) for r in english)
    for row in rows:
        assert row["predicted_heads"].count(0) == 1


def test_parser_evaluate_counts_truncated_words(tiny_model_dir, tokenizer, english):
    task = build_task("dp", tokenizer, 8)
    model = task.build_model(str(tiny_model_dir)).model
    metrics, _ = task.evaluate(model, english, batch_size=4)
    assert metrics["num_words_not_encoded"] > 0
    assert metrics["uas"] <= 1 - metrics["num_words_not_encoded"] / metrics["num_words"]
    assert "root-attached" in metrics["decoding"]


def test_parser_compute_metrics_on_labelled_words(tokenizer):
    task = build_task("dp", tokenizer, 32)
    nsubj, root = UNIVERSAL_DEPRELS.index("nsubj"), UNIVERSAL_DEPRELS.index("root")
    gold_heads = np.array([[2, 0, IGNORE_INDEX]])
    gold_relations = np.array([[nsubj, root, IGNORE_INDEX]])
    decoded = np.array([[[2, nsubj], [0, nsubj], [-1, -1]]])
    metrics = task.compute_metrics(
        EvalPrediction(predictions=decoded, label_ids=(gold_heads, gold_relations))
    )
    assert metrics["uas"] == 1.0
    assert metrics["las"] == 0.5


def test_parser_rejects_unknown_relation(tokenizer, english):
    task = build_task("dp", tokenizer, 32)
    english[0].deprels[0] = "nsubj:pass"
    with pytest.raises(ValueError, match="nsubj:pass"):
        task.encode(english, training=True)
