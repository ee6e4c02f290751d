"""Masked-LM task: block building, masking, the masked-positions model and evaluation."""

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertForMaskedLM

from xlt.tasks import TaskArguments, build_task
from xlt.tasks.base import IGNORE_INDEX
from xlt.tasks.masked_lm import mask_tokens
from xlt.tasks.masked_lm_model import masked_positions_class

SNIPPETS = Path(__file__).parent / "snippets"
SPECIAL_IDS = torch.tensor([0, 1, 2, 3, 4])
MASK_ID = 4


@pytest.fixture
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def lines():
    return [line for line in (SNIPPETS / "tasks_text_en.txt").read_text().splitlines() if line]


def test_mask_tokens_skips_special_tokens():
    input_ids = torch.tensor([[2, 10, 11, 12, 3, 0, 0]] * 50)
    generator = torch.Generator().manual_seed(0)
    corrupted, labels = mask_tokens(input_ids, SPECIAL_IDS, MASK_ID, 100, 0.5, generator)
    special = torch.isin(input_ids, SPECIAL_IDS)
    assert (labels[special] == IGNORE_INDEX).all()
    assert torch.equal(corrupted[special], input_ids[special])


def test_mask_tokens_selects_at_least_one_token_per_row():
    input_ids = torch.tensor([[2, 10, 3, 0]] * 200)
    generator = torch.Generator().manual_seed(0)
    _, labels = mask_tokens(input_ids, SPECIAL_IDS, MASK_ID, 100, 0.01, generator)
    assert ((labels != IGNORE_INDEX).sum(dim=1) == 1).all()


def test_mask_tokens_follows_80_10_10_rule():
    input_ids = torch.randint(5, 1000, (400, 400), generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(2)
    corrupted, labels = mask_tokens(input_ids, SPECIAL_IDS, MASK_ID, 1000, 0.15, generator)
    selected = labels != IGNORE_INDEX
    assert torch.equal(labels[selected], input_ids[selected])
    assert abs(selected.float().mean().item() - 0.15) < 0.005
    masked = (corrupted[selected] == MASK_ID).float().mean().item()
    unchanged = (corrupted[selected] == input_ids[selected]).float().mean().item()
    assert abs(masked - 0.8) < 0.01
    # Unchanged: the 10% kept plus random draws that hit the original id (1 in 1000).
    assert abs(unchanged - 0.1) < 0.01
    assert torch.equal(corrupted[~selected], input_ids[~selected])


def test_blocks_fill_max_seq_length(tokenizer, lines):
    task = build_task("mlm", tokenizer, 16)
    blocks = task.make_blocks(lines)
    assert all(len(block) <= 16 for block in blocks)
    assert all(len(block) == 16 for block in blocks[:-1])
    assert all(block[0] == tokenizer.cls_token_id and block[-1] == tokenizer.sep_token_id for block in blocks)
    stream = [token for line in lines for token in tokenizer(line, add_special_tokens=False)["input_ids"]]
    assert [token for block in blocks for token in block[1:-1]] == stream


def test_evaluation_masks_are_reproducible(tokenizer, lines):
    task = build_task("mlm", tokenizer, 16)
    first = task.encode(lines, training=False)
    second = task.encode(lines, training=False)
    assert first == second
    other_seed = build_task("mlm", tokenizer, 16, TaskArguments(mlm_eval_masking_seed=1))
    assert other_seed.encode(lines, training=False) != first


def test_training_batches_are_masked_afresh(tokenizer, lines):
    task = build_task("mlm", tokenizer, 16)
    features = task.encode(lines, training=True)
    assert all("labels" not in feature for feature in features)
    torch.manual_seed(0)
    first = task.collate(features)
    second = task.collate(features)
    assert not torch.equal(first["labels"], second["labels"])
    assert (first["labels"] != IGNORE_INDEX).any(dim=1).all()


def test_masked_positions_model_matches_full_model(tiny_model_dir, tokenizer, lines):
    full = BertForMaskedLM.from_pretrained(tiny_model_dir).eval()
    gathered = masked_positions_class(BertForMaskedLM).from_pretrained(tiny_model_dir).eval()
    assert [n for n, _ in full.named_parameters()] == [n for n, _ in gathered.named_parameters()]

    task = build_task("mlm", tokenizer, 16)
    batch = task.collate(task.encode(lines, training=False))
    with torch.no_grad():
        full_outputs = full(**batch)
        gathered_outputs = gathered(**batch)
    selected = batch["labels"] != IGNORE_INDEX
    assert gathered_outputs.logits.shape == (int(selected.sum()), full.config.vocab_size)
    torch.testing.assert_close(gathered_outputs.logits, full_outputs.logits[selected])
    torch.testing.assert_close(gathered_outputs.loss, full_outputs.loss)


def test_masked_positions_model_without_labels_returns_all_logits(tiny_model_dir, tokenizer):
    model = masked_positions_class(BertForMaskedLM).from_pretrained(tiny_model_dir).eval()
    encoding = tokenizer(["the dog runs"], return_tensors="pt")
    with torch.no_grad():
        logits = model(**encoding).logits
    assert logits.shape == (1, encoding["input_ids"].shape[1], model.config.vocab_size)


def test_freeze_mlm_head_keeps_input_embeddings_trainable(tiny_model_dir, tokenizer):
    task = build_task("mlm", tokenizer, 16, TaskArguments(freeze_mlm_head=True))
    model = task.build_model(str(tiny_model_dir)).model
    task.prepare_model_for_training(model)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {
        "cls.predictions.bias",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight",
        "cls.predictions.transform.LayerNorm.bias",
    }
    assert model.get_input_embeddings().weight.requires_grad


def test_masked_lm_evaluate_counts_masked_tokens(tiny_model_dir, tokenizer, lines):
    task = build_task("mlm", tokenizer, 16)
    model = task.build_model(str(tiny_model_dir)).model
    features = task.encode(lines, training=False)
    metrics, rows = task.evaluate(model, lines, batch_size=3)
    expected = sum(sum(label != IGNORE_INDEX for label in f["labels"]) for f in features)
    assert metrics["num_masked_tokens"] == expected
    assert metrics["num_blocks"] == len(features) == len(rows)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    # A random 128-piece model is close to uniform: loss near log(128) = 4.85.
    assert 3.5 < metrics["loss"] < 6.5


def test_masked_lm_evaluate_loss_matches_batch_loss(tiny_model_dir, tokenizer, lines):
    task = build_task("mlm", tokenizer, 16)
    model = task.build_model(str(tiny_model_dir)).model.eval()
    features = task.encode(lines, training=False)
    with torch.no_grad():
        batch_loss = model(**task.collate(features)).loss.item()
    metrics, _ = task.evaluate(model, lines, batch_size=2)
    assert metrics["loss"] == pytest.approx(batch_loss, rel=1e-5)


def test_masked_lm_requires_mask_token(tiny_model_dir, tokenizer):
    tokenizer.mask_token = None
    with pytest.raises(ValueError, match="no mask token"):
        build_task("mlm", tokenizer, 16)
