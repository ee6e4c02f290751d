"""`SftArguments`: options of sparse fine-tuning, parsed by `transformers.HfArgumentParser`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

LOTTERY_TICKET = "lottery_ticket"
RANDOM = "random"
SPARSE_FT_METHODS = (LOTTERY_TICKET, RANDOM)

# (min steps, max steps, max epochs) field names of each phase.
_PHASE_FIELDS = {
    "full": (
        "full_ft_min_steps_per_iteration",
        "full_ft_max_steps_per_iteration",
        "full_ft_max_epochs_per_iteration",
    ),
    "sparse": (
        "sparse_ft_min_steps_per_iteration",
        "sparse_ft_max_steps_per_iteration",
        "sparse_ft_max_epochs_per_iteration",
    ),
}


@dataclass
class SftArguments:
    """Options of sparse fine-tuning (LT-SFT or a random mask) for the SFT trainers."""

    sparse_ft_method: str = field(
        default=LOTTERY_TICKET,
        metadata={
            "help": "How the tunable entries are chosen: 'lottery_ticket' (train all weights, keep the "
            "K that changed most, rewind, train those K) or 'random' (K entries drawn uniformly at "
            "random with a fixed seed, then trained; no full fine-tuning phase)."
        },
    )
    ft_params_num: int | None = field(
        default=None,
        metadata={
            "help": "Number K of maskable entries the SFT may change, summed over all iterations. "
            "Overrides ft_params_proportion when set."
        },
    )
    ft_params_proportion: float = field(
        default=0.01,
        metadata={
            "help": "K as a fraction of the number of maskable entries, in (0, 1]; rounded down. "
            "Used when ft_params_num is not set."
        },
    )
    n_ft_iterations: int = field(
        default=1,
        metadata={
            "help": "Number of select-and-train iterations. Each selects K // n_ft_iterations new "
            "entries; the last one also takes the remainder, so exactly K are selected in total."
        },
    )
    full_ft_min_steps_per_iteration: int | None = field(
        default=None,
        metadata={
            "help": "Minimum number of optimizer steps of the full fine-tuning phase, applied when "
            "full_ft_max_epochs_per_iteration amounts to fewer steps."
        },
    )
    full_ft_max_steps_per_iteration: int | None = field(
        default=None,
        metadata={
            "help": "Maximum number of optimizer steps of the full fine-tuning phase of each iteration. "
            "When the epoch limit is also set, the phase stops at whichever comes first. When neither "
            "is set, the phase uses TrainingArguments.max_steps or, if that is not positive, "
            "TrainingArguments.num_train_epochs."
        },
    )
    full_ft_max_epochs_per_iteration: float | None = field(
        default=None,
        metadata={
            "help": "Maximum number of epochs (passes over the training set) of the full fine-tuning "
            "phase of each iteration."
        },
    )
    sparse_ft_min_steps_per_iteration: int | None = field(
        default=None,
        metadata={
            "help": "Minimum number of optimizer steps of the sparse fine-tuning phase, applied when "
            "sparse_ft_max_epochs_per_iteration amounts to fewer steps."
        },
    )
    sparse_ft_max_steps_per_iteration: int | None = field(
        default=None,
        metadata={
            "help": "Maximum number of optimizer steps of the sparse fine-tuning phase of each "
            "iteration. When the epoch limit is also set, the phase stops at whichever comes first. "
            "When neither is set, the phase uses TrainingArguments.max_steps or, if that is not "
            "positive, TrainingArguments.num_train_epochs."
        },
    )
    sparse_ft_max_epochs_per_iteration: float | None = field(
        default=None,
        metadata={
            "help": "Maximum number of epochs (passes over the training set) of the sparse fine-tuning "
            "phase of each iteration."
        },
    )
    full_l1_reg: float = field(
        default=0.0,
        metadata={
            "help": "Coefficient λ of the L1 penalty toward the initial weights during full fine-tuning. "
            "The penalty is λ · Σ|θ − θ0| / N, with N the number of regularised entries, once per "
            "optimizer step."
        },
    )
    sparse_l1_reg: float = field(
        default=0.0,
        metadata={
            "help": "Coefficient λ of the L1 penalty toward the initial weights during sparse "
            "fine-tuning; same normalisation as full_l1_reg."
        },
    )
    apply_reg_to_sparse_only: bool = field(
        default=False,
        metadata={
            "help": "Regularise only the maskable parameters. By default every trainable parameter is "
            "regularised, the head included."
        },
    )
    freeze_layer_norm: bool = field(
        default=False,
        metadata={"help": "Freeze the weights and biases of every layer normalisation module."},
    )
    freeze_embeddings: bool = field(
        default=False,
        metadata={"help": "Freeze the input word embeddings (model.get_input_embeddings())."},
    )
    freeze_decoder: bool = field(
        default=False,
        metadata={
            "help": "Untie the output embeddings (model.get_output_embeddings()) from the input "
            "embeddings and freeze them, so that only the input embeddings are tuned."
        },
    )
    untie_embeddings: bool = field(
        default=False,
        metadata={
            "help": "Give the output embeddings their own copy of the input embedding weights, so the "
            "two are trained separately. The untied output weights are not maskable and, unless "
            "frozen, are stored densely in the SFT's abs values."
        },
    )
    random_mask_seed: int | None = field(
        default=None,
        metadata={
            "help": "Seed of the random mask when sparse_ft_method is 'random'; "
            "defaults to TrainingArguments.seed."
        },
    )

    def __post_init__(self) -> None:
        if self.sparse_ft_method not in SPARSE_FT_METHODS:
            raise ValueError(
                f"sparse_ft_method must be one of {SPARSE_FT_METHODS}, got {self.sparse_ft_method!r}"
            )
        _check_optional_int(self, "ft_params_num", minimum=1)
        _check_number(self, "ft_params_proportion")
        if not 0.0 < self.ft_params_proportion <= 1.0:
            raise ValueError(
                f"ft_params_proportion must be in (0, 1], got {self.ft_params_proportion!r}"
            )
        _check_optional_int(self, "n_ft_iterations", minimum=1, required=True)

        for min_name, max_name, epochs_name in _PHASE_FIELDS.values():
            _check_optional_int(self, min_name, minimum=1)
            _check_optional_int(self, max_name, minimum=1)
            epochs = getattr(self, epochs_name)
            if epochs is not None:
                _check_number(self, epochs_name)
                if not epochs > 0:
                    raise ValueError(f"{epochs_name} must be positive or None, got {epochs!r}")
            minimum, maximum = getattr(self, min_name), getattr(self, max_name)
            if minimum is not None and maximum is not None and minimum > maximum:
                raise ValueError(f"{min_name} ({minimum}) must not exceed {max_name} ({maximum})")

        for name in ("full_l1_reg", "sparse_l1_reg"):
            _check_number(self, name)
            if not getattr(self, name) >= 0.0:
                raise ValueError(
                    f"{name} must be a non-negative number, got {getattr(self, name)!r}"
                )
        for name in (
            "apply_reg_to_sparse_only",
            "freeze_layer_norm",
            "freeze_embeddings",
            "freeze_decoder",
            "untie_embeddings",
        ):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        _check_optional_int(self, "random_mask_seed", minimum=0)

    def phase_limits(self, phase: str) -> tuple[int | None, int | None, float | None]:
        """Return (min steps, max steps, max epochs) of `phase`, 'full' or 'sparse'."""
        if phase not in _PHASE_FIELDS:
            raise ValueError(f"phase must be one of {tuple(_PHASE_FIELDS)}, got {phase!r}")
        return tuple(getattr(self, name) for name in _PHASE_FIELDS[phase])  # type: ignore[return-value]

    def num_tunable_entries(self, num_maskable: int) -> int:
        """Return the budget K for a model with `num_maskable` maskable entries."""
        if self.ft_params_num is not None:
            k = self.ft_params_num
        else:
            k = math.floor(self.ft_params_proportion * num_maskable)
        if k > num_maskable:
            raise ValueError(
                f"ft_params_num is {k} but the model has only {num_maskable} maskable entries"
            )
        if k < self.n_ft_iterations:
            raise ValueError(
                f"the budget K = {k} tunable entries is smaller than n_ft_iterations "
                f"({self.n_ft_iterations}); raise ft_params_num or ft_params_proportion"
            )
        return k


def _check_optional_int(
    arguments: SftArguments, name: str, minimum: int, required: bool = False
) -> None:
    value = getattr(arguments, name)
    if value is None and not required:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer{'' if required else ' or None'}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def _check_number(arguments: SftArguments, name: str) -> None:
    value = getattr(arguments, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
