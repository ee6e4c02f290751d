"""Dense fine-tuning, saved as an SFT holding the whole difference (K = every maskable entry).

Used by the full fine-tuning baseline and the dense-composition baseline: a plain `Trainer`
trains every trainable weight, and the difference to the starting weights becomes an SFT, so
evaluation and composition treat it like any other SFT.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
from transformers import Trainer

from sft import SFT, MultiSourceTrainer, apply_freeze_options, maskable_parameter_names

from .base import TrainingJob, TrainingMethod, TrainingResult, register_method

logger = logging.getLogger(__name__)


@register_method
class DenseMethod(TrainingMethod):
    """Plain fine-tuning of every trainable weight, with the freeze options of SftArguments."""

    name = "dense"
    description = "every maskable entry free, with the whole difference stored as an SFT"

    def train(self, job: TrainingJob) -> TrainingResult:
        apply_freeze_options(job.model, job.sft_args)
        maskable = maskable_parameter_names(job.model, exclude=job.head_parameter_names)
        with torch.no_grad():
            starting_weights = {
                name: parameter.detach().clone()
                for name, parameter in job.model.named_parameters()
                if parameter.requires_grad
            }
        multi_source = {} if job.source_sfts is None else {"source_sfts": job.source_sfts}
        trainer = (MultiSourceTrainer if multi_source else Trainer)(
            model=job.model,
            **multi_source,
            args=job.training_args,
            train_dataset=job.train_dataset,
            eval_dataset=job.eval_dataset,
            data_collator=job.data_collator,
            compute_metrics=job.compute_metrics,
            preprocess_logits_for_metrics=job.preprocess_logits_for_metrics,
        )
        output = trainer.train()
        sft = SFT.from_difference(
            job.model,
            starting_weights,
            diff_params=maskable,
            kind=job.sft_kind,
            training_arguments={
                "sft_arguments": dataclasses.asdict(job.sft_args),
                "trainer_arguments": job.training_args.to_sanitized_dict(),
                **job.config_record,
            },
        )
        num_maskable = sum(starting_weights[name].numel() for name in maskable)
        summary = {
            "ft_params_num": sft.config.ft_params_num,
            "num_maskable_entries": num_maskable,
            "num_diff_entries": sft.num_diff_entries,
            "num_diff_tensors": len(sft.diffs),
            "abs_parameters": sorted(sft.abs),
        }
        logger.info(
            "dense fine-tuning: %d of %d maskable entries changed, %d dense parameters",
            sft.num_diff_entries, num_maskable, len(sft.abs),
        )
        return TrainingResult(artifact=sft, trainer=trainer, train_metrics=dict(output.metrics), summary=summary)
