"""The interface of a training method, and the registry that `xlt-train` selects methods from.

A method receives a prepared `TrainingJob` (model, data, arguments) and returns a
`TrainingResult` whose artifact `xlt-train` saves. New methods (adapters, for example) live in
their own module, subclass `TrainingMethod`, and register with `@register_method`. The package
`xlt.cli.methods` imports each method module so the registry is complete. Multi-source training
is not a method: the SFT methods train on several sources when `TrainingJob.source_sfts` is set.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from torch.utils.data import Dataset
from transformers import PreTrainedModel, Trainer, TrainingArguments

from sft import SFT, SftArguments

from ...madx.arguments import AdapterArguments

logger = logging.getLogger(__name__)


class SavableArtifact(Protocol):
    """What a method produces: anything that saves itself to a folder (an SFT, an adapter)."""

    def save_pretrained(self, save_directory: str) -> Any: ...


@dataclass
class TrainingJob:
    """Everything a method needs to train one model."""

    model: PreTrainedModel
    # Parameters that the base checkpoint did not provide (task head); never maskable.
    head_parameter_names: list[str]
    training_args: TrainingArguments
    sft_args: SftArguments
    train_dataset: Dataset
    eval_dataset: Dataset | None
    data_collator: Callable
    compute_metrics: Callable | None
    preprocess_logits_for_metrics: Callable | None
    # "language" or "task"; recorded in the SFT config.
    sft_kind: str
    # Extra entries for the SFT config's training_arguments (task, language, data, method).
    config_record: dict[str, Any] = field(default_factory=dict)
    # Options of the adapter method (`madx`); None for the SFT methods.
    adapter_args: AdapterArguments | None = None
    # Multi-source training: the SFT applied around each source's batches (None for a source
    # without one); `train_dataset` and `eval_dataset` are then `sft.MultiSourceDataset`s.
    source_sfts: dict[str, SFT | None] | None = None


@dataclass
class TrainingResult:
    """A trained artifact, the Trainer that produced it, and numbers that describe the run."""

    artifact: SavableArtifact
    trainer: Trainer
    train_metrics: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


class TrainingMethod(ABC):
    """One way of training: LT-SFT, random-mask SFT, dense fine-tuning, ..."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def train(self, job: TrainingJob) -> TrainingResult:
        """Train `job.model` on `job.train_dataset` and return the artifact to save."""


# Method classes by the name given to `xlt-train --method`.
METHODS: dict[str, type[TrainingMethod]] = {}


def register_method(method_class: type[TrainingMethod]) -> type[TrainingMethod]:
    """Class decorator adding a method to `METHODS` under its `name`."""
    if method_class.name in METHODS:
        raise ValueError(f"a training method named {method_class.name!r} is already registered")
    METHODS[method_class.name] = method_class
    return method_class


def get_method(name: str) -> TrainingMethod:
    """Return an instance of the method registered under `name`."""
    try:
        return METHODS[name]()
    except KeyError:
        raise ValueError(
            f"training method {name!r} is not supported; use one of {', '.join(sorted(METHODS))}"
        ) from None
