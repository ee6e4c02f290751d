"""MAD-X adapters as a training method: language adapters (masked-LM) and task adapters.

A language adapter (`SeqBnInvConfig`) trains on masked-LM with everything else frozen. A task
adapter (`SeqBnConfig`) trains together with the task head on labelled data, stacked on the frozen
source-language adapter given by `--language_adapter`: `Stack(language, task)`. The saved artifact
is the adapter, the head weights and a `MadxConfig` (see `xlt.madx.artifact`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from importlib import metadata

from adapters import BnConfig
from transformers import PreTrainedModel, Trainer

from ...madx.arguments import AdapterArguments
from ...madx.artifact import AdapterModule, load_adapter_module, read_adapter_config
from ...madx.config import MadxConfig
from ...madx.modules import (
    activate,
    add_adapter,
    build_adapter_config,
    count_entries,
    count_maskable_entries,
    init_adapters,
    set_trainable,
)
from .base import TrainingJob, TrainingMethod, TrainingResult, register_method

logger = logging.getLogger(__name__)


@dataclass
class PreparedAdapter:
    """A model with its new adapter added and activated, and the numbers that describe it."""

    kind: str
    task: str
    language: str
    adapter_name: str
    adapter_config: BnConfig
    stacked_on: str | None
    num_adapter: int
    num_head: int
    num_trainable: int
    num_maskable: int


@register_method
class MadxMethod(TrainingMethod):
    """Train one MAD-X adapter (and, for task adapters, the head) with the base model frozen."""

    name = "madx"
    description = "MAD-X bottleneck adapters: language adapters with invertible adapters, task adapters stacked on them"

    def train(self, job: TrainingJob) -> TrainingResult:
        if job.source_sfts is not None:
            raise ValueError("MAD-X adapters do not support multi-source training (source SFTs)")
        adapter_args = job.adapter_args if job.adapter_args is not None else AdapterArguments()
        prepared = prepare_adapter(job, adapter_args)

        # A plain Trainer: its checkpoints contain the whole model, head included, so that
        # load_best_model_at_end restores adapter and head together. The checkpoints of
        # AdapterTrainer (adapters 1.3.0) contain only adapters and flexible heads, not the
        # static heads used here.
        trainer = Trainer(
            model=job.model,
            args=job.training_args,
            train_dataset=job.train_dataset,
            eval_dataset=job.eval_dataset,
            data_collator=job.data_collator,
            compute_metrics=job.compute_metrics,
            preprocess_logits_for_metrics=job.preprocess_logits_for_metrics,
        )
        output = trainer.train()

        config = describe_adapter(prepared, job, adapter_args)
        summary = {
            "adapter_name": prepared.adapter_name,
            "num_adapter_parameters": prepared.num_adapter,
            "num_head_parameters": prepared.num_head,
            "num_trainable_parameters": prepared.num_trainable,
            "num_maskable_entries": prepared.num_maskable,
            "adapter_proportion_of_maskable": prepared.num_adapter / prepared.num_maskable,
            "reduction_factor": config.reduction_factor,
            "inv_reduction_factor": config.inv_reduction_factor,
            "stacked_on": prepared.stacked_on,
        }
        return TrainingResult(
            artifact=AdapterModule(model=job.model, config=config),
            trainer=trainer,
            train_metrics=dict(output.metrics),
            summary=summary,
        )


def prepare_adapter(job: TrainingJob, adapter_args: AdapterArguments) -> PreparedAdapter:
    """Add the adapter to `job.model`, stack it on the language adapter, and freeze the rest."""
    model = job.model
    kind = job.sft_kind
    task_name = job.config_record.get("task", {}).get("task")
    language = job.config_record.get("language")
    if not task_name or not language:
        raise ValueError("the training job must record its task and language for an adapter")
    if kind == "language" and adapter_args.language_adapter:
        raise ValueError(
            "language_adapter is for task adapters, which stack on it; a language adapter "
            "(task mlm) trains on the bare model"
        )

    # Counted before the adapters are added, with the SFT's freeze options, so that the
    # adapter's size can be compared with the SFT budget K of the same run configuration.
    num_maskable = count_maskable_entries(model, job.head_parameter_names, job.sft_args)
    init_adapters(model)

    stacked_on = None
    if adapter_args.language_adapter:
        stacked_on = load_language_adapter(model, adapter_args.language_adapter, task_name).adapter_name

    adapter_name = language if kind == "language" else task_name
    adapter_config = build_adapter_config(
        kind, adapter_args.adapter_reduction_factor, adapter_args.inv_adapter_reduction_factor
    )
    adapter_parameters = add_adapter(model, adapter_name, adapter_config)
    model.train_adapter(adapter_name)
    activate(model, stacked_on, adapter_name)
    # train_adapter leaves parameters outside the base model (a masked-LM head's transform)
    # trainable, so the trained set is made explicit: the new adapter and the new head.
    num_trainable = set_trainable(model, adapter_parameters + job.head_parameter_names)

    prepared = PreparedAdapter(
        kind=kind,
        task=task_name,
        language=language,
        adapter_name=adapter_name,
        adapter_config=adapter_config,
        stacked_on=stacked_on,
        num_adapter=count_entries(model, adapter_parameters),
        num_head=count_entries(model, job.head_parameter_names),
        num_trainable=num_trainable,
        num_maskable=num_maskable,
    )
    logger.info(
        "%s adapter %r: %d parameters (%.2f%% of the %d maskable entries), %d head parameters, "
        "stacked on %s",
        kind, adapter_name, prepared.num_adapter, 100 * prepared.num_adapter / num_maskable, num_maskable,
        prepared.num_head, stacked_on or "nothing",
    )
    return prepared


def describe_adapter(prepared: PreparedAdapter, job: TrainingJob, adapter_args: AdapterArguments) -> MadxConfig:
    """Build the config that is saved with the trained adapter."""
    language_adapter = prepared.kind == "language"
    return MadxConfig(
        kind=prepared.kind,
        task=prepared.task,
        language=prepared.language,
        adapter_name=prepared.adapter_name,
        adapter_config=prepared.adapter_config.to_dict(),
        reduction_factor=adapter_args.adapter_reduction_factor,
        inv_reduction_factor=adapter_args.inv_adapter_reduction_factor if language_adapter else None,
        num_adapter_parameters=prepared.num_adapter,
        head_parameter_names=list(job.head_parameter_names),
        num_head_parameters=prepared.num_head,
        stacked_on=prepared.stacked_on,
        base_model_name_or_path=getattr(job.model.config, "name_or_path", None) or None,
        adapters_version=metadata.version("adapters"),
        training_arguments={
            **job.config_record,
            "adapter_arguments": dataclasses.asdict(adapter_args),
            "trainer_arguments": job.training_args.to_sanitized_dict(),
        },
    )


def load_language_adapter(model: PreTrainedModel, folder: str, task_name: str) -> MadxConfig:
    """Load the source-language adapter that a task adapter stacks on, under its own name.

    Only the adapter is loaded: the task model has no use for a masked-LM head.
    """
    language_config = read_adapter_config(folder, expected_kind="language")
    if language_config.adapter_name == task_name:
        raise ValueError(
            f"the language adapter {folder} is named {task_name!r}, like the task adapter; "
            "adapter names in one model must differ"
        )
    return load_adapter_module(
        model, folder, load_as=language_config.adapter_name, expected_kind="language", with_head=False
    )
