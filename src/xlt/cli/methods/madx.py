"""MAD-X adapters as a training method: language adapters (masked-LM) and task adapters.

A language adapter (`SeqBnInvConfig`) trains on masked-LM with everything else frozen. A task
adapter (`SeqBnConfig`) trains together with the task head on labelled data, stacked on the frozen
source-language adapter given by `--language_adapter`: `Stack(language, task)`. The saved artifact
is the adapter, the head weights and a `MadxConfig` (see `xlt.madx.artifact`).
"""

from __future__ import annotations

import dataclasses
import logging
from importlib import metadata

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


@register_method
class MadxMethod(TrainingMethod):
    """Train one MAD-X adapter (and, for task adapters, the head) with the base model frozen."""

    name = "madx"
    description = "MAD-X bottleneck adapters: language adapters with invertible adapters, task adapters stacked on them"

    def train(self, job: TrainingJob) -> TrainingResult:
        adapter_args = job.adapter_args if job.adapter_args is not None else AdapterArguments()
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
        num_adapter = count_entries(model, adapter_parameters)
        num_head = count_entries(model, job.head_parameter_names)
        logger.info(
            "%s adapter %r: %d parameters (%.2f%% of the %d maskable entries), %d head parameters, "
            "stacked on %s",
            kind, adapter_name, num_adapter, 100 * num_adapter / num_maskable, num_maskable, num_head,
            stacked_on or "nothing",
        )

        # A plain Trainer: its checkpoints hold the whole model, head included, so that
        # load_best_model_at_end restores adapter and head together. AdapterTrainer's
        # checkpoints hold only adapters and flexible heads, not the static heads used here.
        trainer = Trainer(
            model=model,
            args=job.training_args,
            train_dataset=job.train_dataset,
            eval_dataset=job.eval_dataset,
            data_collator=job.data_collator,
            compute_metrics=job.compute_metrics,
            preprocess_logits_for_metrics=job.preprocess_logits_for_metrics,
        )
        output = trainer.train()

        config = MadxConfig(
            kind=kind,
            task=task_name,
            language=language,
            adapter_name=adapter_name,
            adapter_config=adapter_config.to_dict(),
            reduction_factor=adapter_args.adapter_reduction_factor,
            inv_reduction_factor=adapter_args.inv_adapter_reduction_factor if kind == "language" else None,
            num_adapter_parameters=num_adapter,
            head_parameter_names=list(job.head_parameter_names),
            num_head_parameters=num_head,
            stacked_on=stacked_on,
            base_model_name_or_path=getattr(model.config, "name_or_path", None) or None,
            adapters_version=metadata.version("adapters"),
            training_arguments={
                **job.config_record,
                "adapter_arguments": dataclasses.asdict(adapter_args),
                "trainer_arguments": job.training_args.to_sanitized_dict(),
            },
        )
        summary = {
            "adapter_name": adapter_name,
            "num_adapter_parameters": num_adapter,
            "num_head_parameters": num_head,
            "num_trainable_parameters": num_trainable,
            "num_maskable_entries": num_maskable,
            "adapter_proportion_of_maskable": num_adapter / num_maskable,
            "reduction_factor": config.reduction_factor,
            "inv_reduction_factor": config.inv_reduction_factor,
            "stacked_on": stacked_on,
        }
        return TrainingResult(
            artifact=AdapterModule(model=model, config=config),
            trainer=trainer,
            train_metrics=dict(output.metrics),
            summary=summary,
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
