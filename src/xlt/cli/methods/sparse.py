"""Sparse fine-tuning methods: Lottery Ticket SFT and random-mask SFT, both from the `sft` library."""

from __future__ import annotations

import logging

from sft import (
    LotteryTicketSparseFineTuner,
    MultiSourceSparseFineTuner,
    apply_freeze_options,
    maskable_parameter_names,
)

from .base import TrainingJob, TrainingMethod, TrainingResult, register_method

logger = logging.getLogger(__name__)


class SparseMethod(TrainingMethod):
    """Train with `LotteryTicketSparseFineTuner`, selecting entries by the method's name.

    Maskable parameters are the trainable encoder parameters except the newly initialised ones
    (such as a pooler the checkpoint lacked), which are trained densely and stored as abs values
    together with the rest of the head. With `job.source_sfts` the trainer is
    `MultiSourceSparseFineTuner`, which applies each batch's source SFT around its step.
    """

    def train(self, job: TrainingJob) -> TrainingResult:
        job.sft_args.sparse_ft_method = self.name
        # Freeze and untie first, so that the maskable list leaves out frozen parameters. The
        # trainer applies the same options again, which changes nothing the second time.
        apply_freeze_options(job.model, job.sft_args)
        maskable = maskable_parameter_names(job.model, exclude=job.head_parameter_names)
        multi_source = {} if job.source_sfts is None else {"source_sfts": job.source_sfts}
        trainer_class = MultiSourceSparseFineTuner if multi_source else LotteryTicketSparseFineTuner
        trainer = trainer_class(
            model=job.model,
            args=job.training_args,
            sft_args=job.sft_args,
            maskable_params=maskable,
            **multi_source,
            train_dataset=job.train_dataset,
            eval_dataset=job.eval_dataset,
            data_collator=job.data_collator,
            compute_metrics=job.compute_metrics,
            preprocess_logits_for_metrics=job.preprocess_logits_for_metrics,
        )

        output = trainer.train()

        sft = trainer.sft(kind=job.sft_kind)
        sft.config.training_arguments.update(job.config_record)
        summary = {
            "ft_params_num": trainer.sft_num_tunable_entries,
            "num_maskable_entries": trainer.sft_num_maskable_entries,
            "num_diff_entries": sft.num_diff_entries,
            "num_diff_tensors": len(sft.diffs),
            "abs_parameters": sorted(sft.abs),
        }
        logger.info(
            "%s SFT: %d of %d maskable entries changed (budget K = %d), %d dense parameters",
            self.name, sft.num_diff_entries, trainer.sft_num_maskable_entries,
            trainer.sft_num_tunable_entries, len(sft.abs),
        )
        return TrainingResult(
            artifact=sft,
            trainer=trainer,
            train_metrics=dict(output.metrics) if output is not None else {},
            summary=summary,
        )


@register_method
class LotteryTicketMethod(SparseMethod):
    name = "lottery_ticket"
    description = "LT-SFT: train all weights, keep the K that changed most, rewind, train those K"


@register_method
class RandomMaskMethod(SparseMethod):
    name = "random"
    description = "K entries drawn uniformly at random (seeded), then trained sparsely"
