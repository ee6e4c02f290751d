import pytest
import torch
from tiny_models import tiny_bert_config
from sft_testing import RandomTokenDataset, random_sft, training_arguments
from transformers import BertForMaskedLM, Trainer, TrainerCallback

from sft import SFT, LotteryTicketSparseFineTuner, SftArguments, make_sparse_fine_tuner
from sft.selection import random_masks


def make_trainer(
    model,
    output_dir,
    sft_args,
    trainer_class=LotteryTicketSparseFineTuner,
    dataset=None,
    callbacks=None,
    **overrides,
):
    return trainer_class(
        model=model,
        args=training_arguments(output_dir, **overrides),
        train_dataset=dataset if dataset is not None else RandomTokenDataset(),
        sft_args=sft_args,
        callbacks=callbacks,
    )


def trainable_snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def count_changed(model, reference, names):
    return sum(int((model.get_parameter(name) != reference[name]).sum()) for name in names)


class PhaseRecorder(TrainerCallback):
    """Records, for each Trainer.train call, the weights, optimizer and step count."""

    def __init__(self):
        self.phases = []

    def on_train_begin(
        self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs
    ):
        self.phases.append(
            {
                "start": trainable_snapshot(model),
                "optimizer": optimizer,
                "optimizer_state_size": len(optimizer.optimizer.state),
                "scheduler_epoch": lr_scheduler.last_epoch,
                "steps": 0,
            }
        )

    def on_step_end(self, args, state, control, **kwargs):
        self.phases[-1]["steps"] += 1

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.phases[-1]["end"] = trainable_snapshot(model)


def test_lt_sft_changes_exactly_k_entries(tmp_path, tiny_mlm_model):
    sft_args = SftArguments(
        ft_params_num=300,
        n_ft_iterations=2,
        full_ft_max_steps_per_iteration=3,
        sparse_ft_max_steps_per_iteration=3,
    )
    # Weight decay and Adam momentum would move unselected entries if they were not restored.
    trainer = make_trainer(tiny_mlm_model, tmp_path, sft_args, weight_decay=0.1)
    initial = trainable_snapshot(tiny_mlm_model)
    trainer.train()

    maskable = trainer.maskable_params
    assert count_changed(tiny_mlm_model, initial, maskable) == 300
    for (name, _), mask in zip(trainer._sft_maskable, trainer._sft_selected):
        changed = tiny_mlm_model.get_parameter(name) != initial[name]
        assert not bool((changed & ~mask).any()), name

    sft = trainer.sft(kind="language")
    assert list(sft.diffs) == maskable
    assert sft.num_diff_entries == 300
    assert sorted(sft.abs) == [
        "cls.predictions.bias",
        "cls.predictions.transform.LayerNorm.bias",
        "cls.predictions.transform.LayerNorm.weight",
        "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.dense.weight",
    ]
    assert sft.config.kind == "language"
    assert sft.config.ft_params_num == 300
    assert sft.config.training_arguments["sft_arguments"]["n_ft_iterations"] == 2
    assert sft.config.training_arguments["trainer_arguments"]["weight_decay"] == 0.1
    assert sft.config.base_model_fingerprint is not None


def test_sft_reproduces_trained_model(tmp_path, tiny_mlm_model):
    base = BertForMaskedLM(tiny_bert_config())
    base.load_state_dict(tiny_mlm_model.state_dict())
    sft_args = SftArguments(
        ft_params_num=200, full_ft_max_steps_per_iteration=2, sparse_ft_max_steps_per_iteration=2
    )
    trainer = make_trainer(tiny_mlm_model, tmp_path, sft_args)
    trainer.train()
    trainer.sft().apply(base)
    for name, parameter in tiny_mlm_model.named_parameters():
        torch.testing.assert_close(base.get_parameter(name), parameter, rtol=0, atol=1e-7)


def test_rewind_before_sparse_phase(tmp_path, tiny_mlm_model):
    recorder = PhaseRecorder()
    sft_args = SftArguments(
        ft_params_num=200,
        n_ft_iterations=2,
        full_ft_max_steps_per_iteration=2,
        sparse_ft_max_steps_per_iteration=2,
    )
    initial = trainable_snapshot(tiny_mlm_model)
    trainer = make_trainer(tiny_mlm_model, tmp_path, sft_args, callbacks=[recorder])
    trainer.train()

    full_1, sparse_1, full_2, sparse_2 = recorder.phases
    head = "cls.predictions.transform.dense.weight"
    assert not torch.equal(full_1["end"][head], initial[head])
    for name, value in initial.items():
        assert torch.equal(sparse_1["start"][name], value), name
        assert torch.equal(full_2["start"][name], sparse_1["end"][name]), name
        assert torch.equal(sparse_2["start"][name], sparse_1["end"][name]), name


def test_fresh_optimizer_per_phase(tmp_path, tiny_mlm_model):
    recorder = PhaseRecorder()
    sft_args = SftArguments(
        ft_params_num=200,
        n_ft_iterations=2,
        full_ft_max_steps_per_iteration=2,
        sparse_ft_max_steps_per_iteration=2,
    )
    make_trainer(tiny_mlm_model, tmp_path, sft_args, callbacks=[recorder]).train()
    assert len(recorder.phases) == 4
    assert len({id(phase["optimizer"].optimizer) for phase in recorder.phases}) == 4
    assert [phase["optimizer_state_size"] for phase in recorder.phases] == [0, 0, 0, 0]
    assert [phase["scheduler_epoch"] for phase in recorder.phases] == [0, 0, 0, 0]


@pytest.mark.parametrize(
    ("limits", "expected_steps"),
    [
        # 32 examples, batch size 4 and 2 accumulation steps make 4 optimizer steps per epoch.
        ({"full_ft_max_steps_per_iteration": 3, "sparse_ft_max_epochs_per_iteration": 1.5}, [3, 6]),
        (
            {
                "full_ft_max_epochs_per_iteration": 2,
                "full_ft_max_steps_per_iteration": 5,
                "sparse_ft_max_epochs_per_iteration": 0.5,
                "sparse_ft_min_steps_per_iteration": 3,
            },
            [5, 3],
        ),
        (
            {
                "full_ft_max_epochs_per_iteration": 0.25,
                "sparse_ft_max_epochs_per_iteration": 0.5,
                "sparse_ft_max_steps_per_iteration": 10,
            },
            [1, 2],
        ),
    ],
)
def test_phase_lengths(tmp_path, tiny_mlm_model, limits, expected_steps):
    recorder = PhaseRecorder()
    sft_args = SftArguments(ft_params_num=100, **limits)
    trainer = make_trainer(
        tiny_mlm_model,
        tmp_path,
        sft_args,
        callbacks=[recorder],
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
    )
    trainer.train()
    assert [phase["steps"] for phase in recorder.phases] == expected_steps
    assert trainer.args.max_steps == -1


def test_phase_length_defaults_to_training_arguments(tmp_path, tiny_mlm_model):
    recorder = PhaseRecorder()
    trainer = make_trainer(
        tiny_mlm_model, tmp_path, SftArguments(ft_params_num=100), callbacks=[recorder], max_steps=2
    )
    trainer.train()
    assert [phase["steps"] for phase in recorder.phases] == [2, 2]
    assert trainer.args.max_steps == 2


def train_full_phase(tmp_path, l1_reg, batch_size, accumulation):
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_bert_config())
    recorder = PhaseRecorder()
    sft_args = SftArguments(
        ft_params_num=100,
        full_ft_max_steps_per_iteration=3,
        sparse_ft_max_steps_per_iteration=1,
        full_l1_reg=l1_reg,
    )
    trainer = make_trainer(
        model,
        tmp_path,
        sft_args,
        callbacks=[recorder],
        optim="sgd",
        learning_rate=0.5,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        logging_strategy="steps",
        logging_steps=1,
    )
    trainer.train()
    reg_logs = [
        entry["l1_reg_loss"]
        for entry in trainer.state.log_history
        if entry.get("sft_phase") == "full" and "l1_reg_loss" in entry
    ]
    return recorder.phases[0]["end"], reg_logs


def test_l1_regularisation_ignores_gradient_accumulation(tmp_path):
    plain, plain_logs = train_full_phase(tmp_path, l1_reg=1.0, batch_size=8, accumulation=1)
    accumulated, accumulated_logs = train_full_phase(
        tmp_path, l1_reg=1.0, batch_size=4, accumulation=2
    )
    unregularised, _ = train_full_phase(tmp_path, l1_reg=0.0, batch_size=8, accumulation=1)

    # Attention key biases get no gradient in exact arithmetic (softmax ignores a shift), so
    # sign(θ − θ0) follows rounding noise there and differs between any two runs.
    names = [name for name in plain if "attention.self.key.bias" not in name]
    reg_effect = max(float((plain[name] - unregularised[name]).abs().max()) for name in names)
    accumulation_effect = max(
        float((plain[name] - accumulated[name]).abs().max()) for name in names
    )
    assert reg_effect > 1e-5
    assert accumulation_effect < reg_effect / 20
    assert len(plain_logs) == 3
    torch.testing.assert_close(
        torch.tensor(accumulated_logs), torch.tensor(plain_logs), rtol=1e-3, atol=1e-9
    )


def test_logged_l1_value_matches_definition(tmp_path, tiny_mlm_model):
    recorder = PhaseRecorder()
    initial = trainable_snapshot(tiny_mlm_model)
    sft_args = SftArguments(
        ft_params_num=100,
        full_ft_max_steps_per_iteration=2,
        sparse_ft_max_steps_per_iteration=1,
        full_l1_reg=0.3,
        apply_reg_to_sparse_only=True,
    )

    class AfterFirstStep(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == 1 and not hasattr(self, "weights"):
                self.weights = trainable_snapshot(model)

    after_first_step = AfterFirstStep()
    trainer = make_trainer(
        tiny_mlm_model,
        tmp_path,
        sft_args,
        callbacks=[recorder, after_first_step],
        logging_strategy="steps",
        logging_steps=1,
    )
    trainer.train()
    maskable = trainer.maskable_params
    num_entries = sum(initial[name].numel() for name in maskable)
    distance = sum(
        float((after_first_step.weights[name] - initial[name]).abs().sum(dtype=torch.float64))
        for name in maskable
    )
    logged = [entry["l1_reg_loss"] for entry in trainer.state.log_history if "l1_reg_loss" in entry]
    assert logged[0] == 0.0
    assert logged[1] == pytest.approx(0.3 * distance / num_entries, rel=1e-6)


def test_random_mask_method(tmp_path, tiny_mlm_model):
    recorder = PhaseRecorder()
    sft_args = SftArguments(
        sparse_ft_method="random",
        ft_params_num=250,
        n_ft_iterations=2,
        sparse_ft_max_steps_per_iteration=2,
        random_mask_seed=7,
    )
    initial = trainable_snapshot(tiny_mlm_model)
    trainer = make_trainer(
        tiny_mlm_model, tmp_path, sft_args, callbacks=[recorder], weight_decay=0.1
    )
    trainer.train()

    # No full fine-tuning phase: one sparse phase per iteration.
    assert len(recorder.phases) == 2
    assert count_changed(tiny_mlm_model, initial, trainer.maskable_params) == 250

    # Iteration i draws its share with seed random_mask_seed + i among the unselected entries.
    shapes = [initial[name].shape for name in trainer.maskable_params]
    first = random_masks(shapes, 125, seed=7, show_progress=False)
    second = random_masks(shapes, 125, seed=8, exclude=first, show_progress=False)
    for selected, mask_1, mask_2 in zip(trainer._sft_selected, first, second):
        assert torch.equal(selected, mask_1 | mask_2)


def test_theta0_includes_applied_sft(tmp_path, tiny_mlm_model):
    language = random_sft(tiny_mlm_model, density=0.2, seed=0)
    language.diffs = {
        name: diff for name, diff in language.diffs.items() if name.startswith("bert.")
    }
    language.apply(tiny_mlm_model)
    with_language = trainable_snapshot(tiny_mlm_model)
    sft_args = SftArguments(
        ft_params_num=150, full_ft_max_steps_per_iteration=2, sparse_ft_max_steps_per_iteration=2
    )
    trainer = make_trainer(tiny_mlm_model, tmp_path, sft_args)
    trainer.train()
    assert count_changed(tiny_mlm_model, with_language, trainer.maskable_params) == 150
    assert trainer.sft().num_diff_entries == 150


def test_mixin_works_with_trainer_subclass(tmp_path, tiny_mlm_model):
    class CountingTrainer(Trainer):
        loss_calls = 0

        def compute_loss(self, model, inputs, *args, **kwargs):
            CountingTrainer.loss_calls += 1
            return super().compute_loss(model, inputs, *args, **kwargs)

    trainer_class = make_sparse_fine_tuner(CountingTrainer)
    assert issubclass(trainer_class, CountingTrainer)
    sft_args = SftArguments(
        ft_params_num=120, full_ft_max_steps_per_iteration=2, sparse_ft_max_steps_per_iteration=2
    )
    trainer = make_trainer(tiny_mlm_model, tmp_path, sft_args, trainer_class=trainer_class)
    trainer.train()
    assert CountingTrainer.loss_calls == 4
    assert trainer.sft().num_diff_entries == 120


def test_make_sparse_fine_tuner_rejects_non_trainer():
    with pytest.raises(TypeError, match="subclass of transformers.Trainer"):
        make_sparse_fine_tuner(object)


def test_task_head_and_pooler_stored_dense(tmp_path):
    from transformers import BertForSequenceClassification

    from sft import maskable_parameter_names

    class LabelDataset(RandomTokenDataset):
        def __getitem__(self, index):
            return {"input_ids": self.input_ids[index], "labels": self.labels[index][0]}

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_bert_config(num_labels=3))
    maskable = maskable_parameter_names(model, exclude=["bert.pooler"])
    sft_args = SftArguments(
        ft_params_num=100,
        freeze_layer_norm=True,
        full_ft_max_steps_per_iteration=2,
        sparse_ft_max_steps_per_iteration=2,
    )
    trainer = LotteryTicketSparseFineTuner(
        model=model,
        args=training_arguments(tmp_path),
        train_dataset=LabelDataset(num_labels=3),
        sft_args=sft_args,
        maskable_params=maskable,
    )
    trainer.train()
    sft = trainer.sft(kind="task")
    assert sorted(sft.abs) == [
        "bert.pooler.dense.bias",
        "bert.pooler.dense.weight",
        "classifier.bias",
        "classifier.weight",
    ]
    assert not any("LayerNorm" in name for name in sft.diffs)
    assert sft.num_diff_entries == 100


def test_freeze_decoder_in_trainer(tmp_path, tiny_mlm_model):
    sft_args = SftArguments(
        ft_params_num=100,
        freeze_decoder=True,
        full_ft_max_steps_per_iteration=1,
        sparse_ft_max_steps_per_iteration=1,
    )
    trainer = make_trainer(tiny_mlm_model, tmp_path, sft_args)
    decoder = tiny_mlm_model.get_output_embeddings().weight.detach().clone()
    trainer.train()
    sft = trainer.sft()
    assert "bert.embeddings.word_embeddings.weight" in sft.diffs
    assert "cls.predictions.decoder.weight" not in sft.abs
    assert torch.equal(tiny_mlm_model.get_output_embeddings().weight, decoder)


def test_unsupported_setups_are_rejected(tmp_path, tiny_mlm_model):
    sft_args = SftArguments(
        ft_params_num=10, full_ft_max_steps_per_iteration=1, sparse_ft_max_steps_per_iteration=1
    )
    optimizer = torch.optim.SGD(tiny_mlm_model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="optimizer_cls_and_kwargs"):
        LotteryTicketSparseFineTuner(
            model=tiny_mlm_model,
            args=training_arguments(tmp_path),
            train_dataset=RandomTokenDataset(),
            sft_args=sft_args,
            optimizers=(optimizer, None),
        )
    with pytest.raises(ValueError, match="load_best_model_at_end"):
        LotteryTicketSparseFineTuner(
            model=tiny_mlm_model,
            args=training_arguments(
                tmp_path, load_best_model_at_end=True, eval_strategy="steps", save_strategy="steps"
            ),
            train_dataset=RandomTokenDataset(),
            eval_dataset=RandomTokenDataset(size=8),
            sft_args=sft_args,
        )
    with pytest.raises(ValueError, match="model_init"):
        LotteryTicketSparseFineTuner(
            args=training_arguments(tmp_path), model_init=lambda: tiny_mlm_model, sft_args=sft_args
        )
    trainer = make_trainer(tiny_mlm_model, tmp_path, sft_args)
    with pytest.raises(ValueError, match="cannot resume"):
        trainer.train(resume_from_checkpoint=True)


def test_invalid_maskable_params_are_rejected(tmp_path, tiny_mlm_model):
    sft_args = SftArguments(ft_params_num=10)
    with pytest.raises(ValueError, match="does not have: \\['bert.missing'\\]"):
        LotteryTicketSparseFineTuner(
            model=tiny_mlm_model,
            args=training_arguments(tmp_path),
            sft_args=sft_args,
            maskable_params=["bert.missing"],
        )
    tiny_mlm_model.bert.embeddings.position_embeddings.weight.requires_grad_(False)
    with pytest.raises(ValueError, match="frozen parameters"):
        LotteryTicketSparseFineTuner(
            model=tiny_mlm_model,
            args=training_arguments(tmp_path),
            sft_args=sft_args,
            maskable_params=["bert.embeddings.position_embeddings.weight"],
        )


def test_saved_trainer_sft_round_trips(tmp_path, tiny_mlm_model):
    sft_args = SftArguments(
        ft_params_num=100, full_ft_max_steps_per_iteration=1, sparse_ft_max_steps_per_iteration=1
    )
    trainer = make_trainer(tiny_mlm_model, tmp_path, sft_args)
    trainer.train()
    sft = trainer.sft(kind="language")
    sft.save_pretrained(tmp_path / "sft")
    loaded = SFT.from_pretrained(tmp_path / "sft")
    assert loaded.config == sft.config
    assert loaded.num_diff_entries == 100


def test_second_train_call_is_rejected(tmp_path, tiny_mlm_model):
    sft_args = SftArguments(
        ft_params_num=50, full_ft_max_steps_per_iteration=1, sparse_ft_max_steps_per_iteration=1
    )
    trainer = make_trainer(tiny_mlm_model, tmp_path, sft_args)
    trainer.train()
    with pytest.raises(RuntimeError, match="already trained"):
        trainer.train()
