"""Trainers that learn sparse fine-tunings (LT-SFT and random-mask SFT).

`SparseFineTuningMixin` adds sparse fine-tuning to any `transformers.Trainer` subclass;
`LotteryTicketSparseFineTuner` is the mixin applied to `Trainer`, and
`make_sparse_fine_tuner` applies it to another subclass.

Lottery Ticket SFT runs `n_ft_iterations` iterations of two phases. Phase 1 trains every
trainable weight. Then the trainer selects the K / n_ft_iterations maskable entries, not
selected before, that moved furthest from their initial values θ0. It rewinds every
weight, the head included, to its value at the start of the iteration. Phase 2 trains
only the selected entries and the non-maskable trainable parameters, such as the head.
Each phase is one call of `Trainer.train` with a fresh optimizer and learning-rate
schedule. The random method skips phase 1 and selects entries uniformly at random.

In phase 2, gradients of unselected entries are zeroed after each backward pass, before
gradient clipping, and after each optimizer step the unselected entries are copied back
from θ0. So they end bit-identical to θ0 whatever the optimizer does (weight decay,
momentum).

The L1 penalty toward θ0 is λ · Σ|θ − θ0| / N, with N the number of regularised entries,
added once per optimizer step whatever the gradient accumulation. It is implemented as a
gradient, λ/N · sign(θ − θ0), added after the last backward pass of the step, and its
value is logged as `l1_reg_loss` (the mean over the steps since the last log).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import has_length

from .application import model_name_or_path
from .arguments import LOTTERY_TICKET, SftArguments
from .config import SftConfig
from .fingerprint import parameter_shapes_digest
from .model_utils import apply_freeze_options, maskable_parameter_names
from .phases import phase_num_steps, update_steps_per_epoch
from .selection import largest_change_masks, random_masks
from .sft import SFT
from .sparse_diff import SparseDiff

logger = logging.getLogger(__name__)

FULL_PHASE = "full"
SPARSE_PHASE = "sparse"


class _SparseUpdateCallback(TrainerCallback):
    """Restores the unselected entries after every optimizer step of a sparse phase."""

    def __init__(self, trainer: SparseFineTuningMixin) -> None:
        self._trainer = trainer

    def on_optimizer_step(self, args, state, control, **kwargs):
        self._trainer._sft_after_optimizer_step()


class SparseFineTuningMixin:
    """Mixin that turns a `transformers.Trainer` subclass into a sparse fine-tuner.

    Put it before the Trainer class in the bases, for example
    `class MyFineTuner(SparseFineTuningMixin, MyTrainer)`, or use `make_sparse_fine_tuner`.

    Besides the Trainer's arguments, the constructor takes `sft_args` (SftArguments,
    default SftArguments()) and `maskable_params`, the names of the parameters to tune
    sparsely (default: `maskable_parameter_names(model)`, the trainable parameters of the
    base model). The other trainable parameters are trained densely and stored as abs
    values. The freeze and untie options of `sft_args` are applied to the model first,
    and θ0 is the model as handed to the trainer, after those options. Parameters frozen by
    those options are dropped from `maskable_params`; other frozen ones raise ValueError.

    `train()` runs every phase of every iteration and returns the result of the last
    phase's `Trainer.train`. `sft()` returns the learned SFT.

    Not supported: `model_init`, an optimizer instance passed in `optimizers` (each phase
    needs a fresh optimizer; use `optimizer_cls_and_kwargs`), `resume_from_checkpoint`,
    `load_best_model_at_end`, DeepSpeed and FSDP. Checkpoints saved during training cannot
    be resumed from.
    """

    def __init__(
        self,
        *args: Any,
        sft_args: SftArguments | None = None,
        maskable_params: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        sft_args = SftArguments() if sft_args is None else sft_args
        if not isinstance(sft_args, SftArguments):
            raise TypeError(f"sft_args must be an SftArguments, got {type(sft_args).__name__}")
        if kwargs.get("model_init") is not None:
            raise ValueError(
                "sparse fine-tuning does not support model_init; pass the model instead"
            )
        model = kwargs.get("model", args[0] if args else None)
        if model is None:
            raise ValueError("sparse fine-tuning needs a model")
        frozen_by_options = apply_freeze_options(model, sft_args)

        super().__init__(*args, **kwargs)
        self._check_supported_setup()
        self.sft_args = sft_args
        self._sft_init_parameters(maskable_params, frozen_by_options)

        self._sft_phase: str | None = None
        self._sft_selected: list[torch.Tensor] | None = None
        self._sft_l1_coefficient = 0.0
        self._sft_l1_total: torch.Tensor | None = None
        self._sft_l1_steps = 0
        self._sft_steps_per_epoch: int | None = None
        self.add_callback(_SparseUpdateCallback(self))

    def _check_supported_setup(self) -> None:
        if self.optimizer is not None:
            raise ValueError(
                "sparse fine-tuning creates a fresh optimizer for every phase, so it cannot use an "
                "optimizer instance passed in `optimizers`; pass optimizer_cls_and_kwargs instead"
            )
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            raise ValueError("sparse fine-tuning supports neither DeepSpeed nor FSDP")
        if self.args.load_best_model_at_end:
            raise ValueError(
                "sparse fine-tuning does not support load_best_model_at_end, because loading a "
                "checkpoint between phases would break the rewind; set it to False"
            )

    def _sft_init_parameters(
        self, maskable_params: Sequence[str] | None, frozen_by_options: list[str]
    ) -> None:
        parameters = dict(self.model.named_parameters())
        if maskable_params is None:
            maskable_names = maskable_parameter_names(self.model)
        else:
            maskable_names = list(maskable_params)
            unknown = [name for name in maskable_names if name not in parameters]
            if unknown:
                raise ValueError(
                    f"maskable_params names parameters the model does not have: {unknown}"
                )
            # The list may predate the freeze options, which the trainer applied just now.
            dropped = [name for name in maskable_names if name in set(frozen_by_options)]
            if dropped:
                logger.info(
                    "Not masking %d parameters frozen by the SftArguments freeze options",
                    len(dropped),
                )
                maskable_names = [name for name in maskable_names if name not in set(dropped)]
            frozen = [name for name in maskable_names if not parameters[name].requires_grad]
            if frozen:
                raise ValueError(
                    f"maskable_params names frozen parameters (requires_grad=False): {frozen}"
                )
        if not maskable_names:
            raise ValueError("the model has no maskable parameters to fine-tune sparsely")
        maskable_set = set(maskable_names)

        self.maskable_params = maskable_names
        self._sft_maskable = [(name, parameters[name]) for name in maskable_names]
        self._sft_dense = [
            (name, p)
            for name, p in parameters.items()
            if p.requires_grad and name not in maskable_set
        ]
        with torch.no_grad():
            self._sft_initial = {
                name: p.detach().clone() for name, p in parameters.items() if p.requires_grad
            }
        self.sft_num_maskable_entries = sum(p.numel() for _, p in self._sft_maskable)
        self.sft_num_tunable_entries = self.sft_args.num_tunable_entries(
            self.sft_num_maskable_entries
        )
        logger.info(
            "Sparse fine-tuning: %d maskable parameters with %d entries, budget K = %d; "
            "%d densely trained parameters: %s",
            len(self._sft_maskable),
            self.sft_num_maskable_entries,
            self.sft_num_tunable_entries,
            len(self._sft_dense),
            ", ".join(name for name, _ in self._sft_dense) or "none",
        )

    # Training loop

    def train(self, resume_from_checkpoint=None, trial=None, ignore_keys_for_eval=None, **kwargs):
        """Run every phase of every sparse fine-tuning iteration; call it once per trainer."""
        if resume_from_checkpoint not in (None, False):
            raise ValueError("sparse fine-tuning cannot resume from a checkpoint; start a new run")
        if self._sft_selected is not None:
            raise RuntimeError(
                "this trainer has already trained; create a new trainer for another run"
            )

        iterations = self.sft_args.n_ft_iterations
        budgets = [self.sft_num_tunable_entries // iterations] * iterations
        budgets[-1] += self.sft_num_tunable_entries % iterations

        original_max_steps = self.args.max_steps
        train_kwargs = dict(trial=trial, ignore_keys_for_eval=ignore_keys_for_eval, **kwargs)
        history: list[dict[str, Any]] = []
        result = None
        try:
            for iteration, budget in enumerate(budgets):
                if self.sft_args.sparse_ft_method == LOTTERY_TICKET:
                    start = self._sft_snapshot() if iteration > 0 else None
                    self._sft_run_phase(
                        FULL_PHASE, iteration, original_max_steps, history, train_kwargs
                    )
                    self._sft_select_largest_changes(budget)
                    self._sft_rewind(start)
                else:
                    self._sft_select_random(budget, iteration)
                result = self._sft_run_phase(
                    SPARSE_PHASE, iteration, original_max_steps, history, train_kwargs
                )
        finally:
            self.args.max_steps = original_max_steps
            self._sft_phase = None

        self.state.log_history = history
        return result

    def _sft_run_phase(
        self,
        phase: str,
        iteration: int,
        original_max_steps: int,
        history: list[dict[str, Any]],
        train_kwargs: dict[str, Any],
    ):
        num_steps = self._sft_phase_num_steps(phase, original_max_steps)
        self.args.max_steps = num_steps
        self.optimizer, self.lr_scheduler = None, None
        self._sft_phase = phase
        self._sft_l1_coefficient = (
            self.sft_args.full_l1_reg if phase == FULL_PHASE else self.sft_args.sparse_l1_reg
        )
        logger.info(
            "Sparse fine-tuning iteration %d/%d: %s fine-tuning phase, %d optimizer steps",
            iteration + 1,
            self.sft_args.n_ft_iterations,
            phase,
            num_steps,
        )
        result = super().train(**train_kwargs)
        history.extend(
            {**entry, "sft_iteration": iteration + 1, "sft_phase": phase}
            for entry in self.state.log_history
        )
        logger.info("Finished the %s fine-tuning phase of iteration %d", phase, iteration + 1)
        return result

    def _sft_phase_num_steps(self, phase: str, original_max_steps: int) -> int:
        min_steps, max_steps, max_epochs = self.sft_args.phase_limits(phase)
        if max_steps is None and max_epochs is None:
            if original_max_steps > 0:
                max_steps = original_max_steps
            else:
                max_epochs = self.args.num_train_epochs
        steps_per_epoch = None
        if max_epochs is not None:
            steps_per_epoch = self._sft_update_steps_per_epoch()
        return phase_num_steps(min_steps, max_steps, max_epochs, steps_per_epoch)

    def _sft_update_steps_per_epoch(self) -> int | None:
        if self._sft_steps_per_epoch is None:
            dataloader = self.get_train_dataloader()
            if not has_length(dataloader):
                return None
            self._sft_steps_per_epoch = update_steps_per_epoch(
                len(dataloader), self.args.gradient_accumulation_steps
            )
        return self._sft_steps_per_epoch

    # Selection and rewinding

    def _sft_snapshot(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {
                name: p.detach().to("cpu", copy=True)
                for name, p in self._sft_maskable + self._sft_dense
            }

    def _sft_rewind(self, snapshot: dict[str, torch.Tensor] | None) -> None:
        source = snapshot if snapshot is not None else self._sft_initial
        with torch.no_grad():
            for name, p in self._sft_maskable + self._sft_dense:
                p.copy_(source[name])
        logger.info("Rewound all trainable weights to their values at the start of the iteration")

    def _sft_merge_selection(self, new_masks: list[torch.Tensor]) -> None:
        if self._sft_selected is None:
            self._sft_selected = new_masks
        else:
            self._sft_selected = [old | new for old, new in zip(self._sft_selected, new_masks)]
        total = sum(int(mask.count_nonzero()) for mask in self._sft_selected)
        logger.info("Selected %d entries in total", total)

    def _sft_select_largest_changes(self, budget: int) -> None:
        masks = largest_change_masks(
            [p for _, p in self._sft_maskable],
            [self._sft_initial[name] for name, _ in self._sft_maskable],
            budget,
            exclude=self._sft_selected,
            show_progress=not self.args.disable_tqdm and self.is_local_process_zero(),
        )
        self._sft_merge_selection(masks)

    def _sft_select_random(self, budget: int, iteration: int) -> None:
        seed = self.sft_args.random_mask_seed
        seed = (self.args.seed if seed is None else seed) + iteration
        masks = random_masks(
            [p.shape for _, p in self._sft_maskable],
            budget,
            seed,
            exclude=self._sft_selected,
            show_progress=not self.args.disable_tqdm and self.is_local_process_zero(),
        )
        devices = [p.device for _, p in self._sft_maskable]
        self._sft_merge_selection([mask.to(device) for mask, device in zip(masks, devices)])

    # Per-step hooks

    def training_step(self, *args, **kwargs):
        loss = super().training_step(*args, **kwargs)
        # The accelerator marks the last micro-batch of each optimizer step.
        if self._sft_phase is not None and self.accelerator.sync_gradients:
            self._sft_before_optimizer_step()
        return loss

    def _sft_regularised_parameters(self):
        if self.sft_args.apply_reg_to_sparse_only:
            return self._sft_maskable
        return self._sft_maskable + self._sft_dense

    def _sft_before_optimizer_step(self) -> None:
        with torch.no_grad():
            if self._sft_l1_coefficient > 0:
                self._sft_add_l1_gradient()
            if self._sft_phase == SPARSE_PHASE:
                for (_, p), mask in zip(self._sft_maskable, self._sft_selected):
                    if p.grad is not None:
                        p.grad.mul_(mask)

    def _sft_add_l1_gradient(self) -> None:
        parameters = self._sft_regularised_parameters()
        num_entries = sum(p.numel() for _, p in parameters)
        step = self._sft_l1_coefficient / num_entries
        # With fp16 mixed precision the gradients still carry the loss scale at this point, so
        # the L1 gradient gets the same scale. NOTE: no test covers this, because it needs a GPU.
        scaler = getattr(self.accelerator, "scaler", None)
        grad_step = step * (scaler.get_scale() if scaler is not None else 1.0)
        total = None
        for name, p in parameters:
            change = p - self._sft_initial[name]
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            p.grad.add_(torch.sign(change), alpha=grad_step)
            distance = change.abs_().sum(dtype=torch.float64)
            total = distance if total is None else total + distance.to(total.device)
        value = total * step
        self._sft_l1_total = value if self._sft_l1_total is None else self._sft_l1_total + value
        self._sft_l1_steps += 1

    def _sft_after_optimizer_step(self) -> None:
        if self._sft_phase != SPARSE_PHASE:
            return
        with torch.no_grad():
            for (name, p), mask in zip(self._sft_maskable, self._sft_selected):
                torch.where(mask, p, self._sft_initial[name], out=p)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if self._sft_l1_steps and "loss" in logs:
            logs["l1_reg_loss"] = float(self._sft_l1_total) / self._sft_l1_steps
            self._sft_l1_total, self._sft_l1_steps = None, 0
        super().log(logs, *args, **kwargs)

    # Result

    def sft(self, kind: str | None = None) -> SFT:
        """Return the learned SFT.

        Diffs contain every maskable entry that differs from θ0, and abs values contain the
        other trainable parameters. `kind` ("language", "task" or None) is recorded in the config,
        with the base model, its fingerprint, K and the training arguments.
        """
        with torch.no_grad():
            diffs = {
                name: SparseDiff.between(p, self._sft_initial[name]).to("cpu")
                for name, p in self._sft_maskable
            }
            abs_values = {name: p.detach().to("cpu", copy=True) for name, p in self._sft_dense}
        config = SftConfig(
            kind=kind,
            base_model_name_or_path=model_name_or_path(self.model),
            base_model_fingerprint=parameter_shapes_digest(
                {name: diff.shape for name, diff in diffs.items()}
            ),
            ft_params_num=self.sft_num_tunable_entries,
            training_arguments={
                "sft_arguments": dataclasses.asdict(self.sft_args),
                "trainer_arguments": self.args.to_sanitized_dict(),
            },
        )
        return SFT(diffs=diffs, abs=abs_values, config=config)


class LotteryTicketSparseFineTuner(SparseFineTuningMixin, Trainer):
    """`transformers.Trainer` that learns a sparse fine-tuning; see `SparseFineTuningMixin`."""


def make_sparse_fine_tuner(trainer_class: type[Trainer]) -> type:
    """Return a subclass of `trainer_class` with `SparseFineTuningMixin` mixed in."""
    if not (isinstance(trainer_class, type) and issubclass(trainer_class, Trainer)):
        raise TypeError(
            f"trainer_class must be a subclass of transformers.Trainer, got {trainer_class!r}"
        )
    return type(
        f"SparseFineTuning{trainer_class.__name__}", (SparseFineTuningMixin, trainer_class), {}
    )
