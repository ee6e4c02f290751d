"""Multi-source training on a tiny BERT tagger: which weights each forward, backward and
optimizer step uses, and what the trained SFT contains."""

import pytest
import torch
from tiny_models import tiny_bert_config
from multisource_testing import (
    NUM_LABELS,
    SwapInspector,
    TaggedTokens,
    build_source_sfts,
    language_sft,
    mismatches,
    snapshot,
    tagger,
)
from sft_testing import training_arguments
from transformers import BertForTokenClassification, Trainer

from sft import (
    MultiSourceDataset,
    MultiSourceSparseFineTuner,
    MultiSourceTrainer,
    MultiSourceTrainingMixin,
    SftArguments,
    SparseFineTuningMixin,
)
from sft.application import applied_sfts


@pytest.fixture
def source_data():
    train = MultiSourceDataset(
        {
            "en": TaggedTokens("en", 10, seed=1),
            "mt": TaggedTokens("mt", 7, seed=2),
            "fo": TaggedTokens("fo", 5, seed=3),
        },
        upsampling={"fo": 2},
    )
    evaluation = MultiSourceDataset(
        {"en": TaggedTokens("en", 6, seed=4), "mt": TaggedTokens("mt", 5, seed=5)}
    )
    return train, evaluation


def make_trainer(model, tmp_path, train, source_sfts, sft_args, inspector, **overrides):
    return MultiSourceSparseFineTuner(
        model=model,
        args=training_arguments(tmp_path, per_device_train_batch_size=4, **overrides),
        train_dataset=train,
        source_sfts=source_sfts,
        sft_args=sft_args,
        callbacks=[inspector],
    )


def test_lt_sft_swaps_source_sfts(tmp_path, source_data):
    model = tagger()
    train, _ = source_data
    source_sfts = build_source_sfts(model)
    sft_values = {
        (source, name): diff.values.clone()
        for source, sft in source_sfts.items()
        if sft is not None
        for name, diff in sft.diffs.items()
    }
    inspector = SwapInspector(model, source_sfts)
    sft_args = SftArguments(
        ft_params_num=500,
        n_ft_iterations=2,
        full_ft_max_steps_per_iteration=3,
        sparse_ft_max_steps_per_iteration=3,
        full_l1_reg=0.5,
        sparse_l1_reg=0.5,
    )
    initial = snapshot(model)
    trainer = make_trainer(
        model,
        tmp_path,
        train,
        source_sfts,
        sft_args,
        inspector,
        gradient_accumulation_steps=2,
        weight_decay=0.1,
    )
    trainer.train()

    assert inspector.failures == []
    # Two iterations of two phases of three steps, each step two micro-batches.
    assert inspector.counts["optimizer"] == 12
    assert inspector.counts["forward"] == 24
    assert inspector.counts["backward"] == 2 * 24
    assert any(len(set(sources)) > 1 for sources in inspector.step_sources), inspector.step_sources
    assert {s for sources in inspector.step_sources for s in sources} == {"en", "mt", "fo"}
    assert applied_sfts(model) == []

    maskable = trainer.maskable_params
    changed = sum(int((model.get_parameter(n) != initial[n]).sum()) for n in maskable)
    assert changed == 500
    for (name, _), mask in zip(trainer._sft_maskable, trainer._sft_selected):
        outside = (model.get_parameter(name) != initial[name]) & ~mask
        assert not bool(outside.any()), name
    assert trainer.sft(kind="task").num_diff_entries == 500
    for (source, name), values in sft_values.items():
        assert torch.equal(source_sfts[source].diffs[name].values, values), (source, name)


def test_random_mask_swaps_source_sfts(tmp_path, source_data):
    model = tagger()
    train, _ = source_data
    source_sfts = build_source_sfts(model)
    inspector = SwapInspector(model, source_sfts)
    sft_args = SftArguments(
        sparse_ft_method="random", ft_params_num=300, sparse_ft_max_steps_per_iteration=4
    )
    initial = snapshot(model)
    trainer = make_trainer(
        model, tmp_path, train, source_sfts, sft_args, inspector, weight_decay=0.1
    )
    trainer.train()

    assert inspector.failures == []
    assert inspector.counts["optimizer"] == 4
    changed = sum(
        int((model.get_parameter(n) != initial[n]).sum()) for n in trainer.maskable_params
    )
    assert changed == 300
    assert trainer.sft().num_diff_entries == 300


def test_dense_trainer_swaps_source_sfts(tmp_path, source_data):
    model = tagger()
    train, _ = source_data
    source_sfts = build_source_sfts(model)
    inspector = SwapInspector(model, source_sfts)
    initial = snapshot(model)
    trainer = MultiSourceTrainer(
        model=model,
        args=training_arguments(tmp_path, per_device_train_batch_size=4, max_steps=5),
        train_dataset=train,
        source_sfts=source_sfts,
        callbacks=[inspector],
    )
    trainer.train()

    assert inspector.failures == []
    assert inspector.counts["optimizer"] == 5
    assert applied_sfts(model) == []
    assert mismatches(model, initial) != []


def test_evaluation_applies_source_sfts_in_order(tmp_path, source_data):
    model = tagger()
    train, evaluation = source_data
    source_sfts = build_source_sfts(model)
    inspector = SwapInspector(model, source_sfts)
    trainer = MultiSourceSparseFineTuner(
        model=model,
        args=training_arguments(tmp_path, per_device_eval_batch_size=4),
        train_dataset=train,
        eval_dataset=evaluation,
        source_sfts=source_sfts,
        sft_args=SftArguments(ft_params_num=100, sparse_ft_max_steps_per_iteration=1),
        callbacks=[inspector],
    )
    before = snapshot(model)
    metrics = trainer.evaluate()

    assert inspector.failures == []
    # en: 6 examples in batches of 4 and 2, then mt: 5 examples in batches of 4 and 1.
    assert inspector.step_sources[-1] == ["en", "en", "mt", "mt"]
    assert metrics["eval_loss"] > 0
    assert mismatches(model, before) == []
    assert applied_sfts(model) == []


def test_failed_step_reverts_source_sft(tmp_path, source_data):
    model = tagger()
    train, _ = source_data
    source_sfts = build_source_sfts(model)
    trainer = MultiSourceTrainer(
        model=model,
        args=training_arguments(tmp_path, per_device_train_batch_size=4),
        train_dataset=train,
        source_sfts=source_sfts,
    )
    before = snapshot(model)
    batch = next(iter(trainer.get_train_dataloader()))
    batch["labels"] = batch["labels"][:, :3]  # wrong shape: the loss raises
    with pytest.raises((ValueError, RuntimeError)):
        trainer.training_step(trainer.model, batch)
    assert applied_sfts(model) == []
    assert mismatches(model, before) == []


def test_source_without_sft_entry_is_rejected(tmp_path, source_data):
    model = tagger()
    train, _ = source_data
    with pytest.raises(ValueError, match=r"sources without an entry in source_sfts: \['fo'\]"):
        MultiSourceTrainer(
            model=model,
            args=training_arguments(tmp_path),
            train_dataset=train,
            source_sfts={"en": None, "mt": None},
        )


def test_source_sfts_are_required(tmp_path, source_data):
    with pytest.raises(ValueError, match="needs source_sfts"):
        MultiSourceTrainer(
            model=tagger(), args=training_arguments(tmp_path), train_dataset=source_data[0]
        )


def test_source_sft_for_another_model_is_rejected(tmp_path, source_data):
    model = tagger()
    other = BertForTokenClassification(tiny_bert_config(num_labels=NUM_LABELS, hidden_size=16))
    with pytest.raises(ValueError, match="shape"):
        MultiSourceTrainer(
            model=model,
            args=training_arguments(tmp_path),
            train_dataset=source_data[0],
            source_sfts={"en": language_sft(other, seed=1), "mt": None, "fo": None},
        )
    assert applied_sfts(model) == []


def test_mixin_after_sparse_mixin_is_required(tmp_path, source_data):
    class WrongOrder(MultiSourceTrainingMixin, SparseFineTuningMixin, Trainer):
        pass

    with pytest.raises(TypeError, match="SparseFineTuningMixin, MultiSourceTrainingMixin, Trainer"):
        WrongOrder(
            model=tagger(),
            args=training_arguments(tmp_path),
            train_dataset=source_data[0],
            source_sfts={"en": None, "mt": None, "fo": None},
        )
