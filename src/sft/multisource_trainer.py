"""Multi-source training: each batch is trained with the language SFT of its source applied.

A task SFT trained on several source languages learns the task relative to the bare base
model. `MultiSourceTrainingMixin` runs the forward and backward pass of every batch of a
`MultiSourceDataset` with the SFT of the batch's source applied (without its abs values) and
reverts that SFT right after the backward pass. So no source SFT is applied when the
optimizer steps, when the sparse fine-tuner masks gradients, adds its L1 gradient or selects
entries, or when the trained SFT is read out. Revert restores the exact values that apply
overwrote, so repeated swaps never drift. Evaluation batches are handled the same way.

`MultiSourceSparseFineTuner` combines the mixin with LT-SFT and random-mask SFT, and
`MultiSourceTrainer` with plain dense training.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, MutableMapping
from functools import partial
from typing import Any

from torch.utils.data import DataLoader
from transformers import Trainer
from transformers.trainer_utils import seed_worker

from .constants import MISMATCH_POLICIES
from .multisource_data import (
    BATCH_SOURCE_KEY,
    MultiSourceBatchSampler,
    MultiSourceCollator,
    MultiSourceDataset,
)
from .sft import SFT
from .trainer import SparseFineTuningMixin

logger = logging.getLogger(__name__)


class MultiSourceTrainingMixin:
    """Mixin for a `transformers.Trainer` subclass that trains on several sources at once.

    The constructor takes `source_sfts`, a mapping from source names to the SFT to apply
    while training on that source's batches (usually its language SFT), or None for a
    source trained on the bare model. `on_mismatch` ("warn", "raise" or "ignore") sets how a
    source SFT made for another base model is reported. The constructor applies and reverts
    every source SFT once, which checks parameter names and shapes before training starts,
    and moves the SFTs to the model's device in place.

    Training and evaluation datasets that are a `MultiSourceDataset` get a data loader whose
    batches each come from one source (see `MultiSourceBatchSampler`): shuffled with the
    data seed for training, in a fixed order for evaluation. The Trainer's `data_collator`
    collates each batch. `group_by_length` does not apply to them. Other datasets are loaded
    and trained as usual, with no SFT applied.

    `training_step` and `prediction_step` apply the batch's source SFT, call `super()`, and
    revert it, also when the step raises. With gradient accumulation, each micro-batch
    applies its own source's SFT, so one optimizer step may combine gradients of several
    sources. Under DDP, each process applies the SFT of its own batch.

    With `SparseFineTuningMixin`, put that mixin first, so that its per-step work (gradient
    masks, L1 gradient) runs after the source SFT is reverted:
    `class MyTrainer(SparseFineTuningMixin, MultiSourceTrainingMixin, Trainer)`. Other
    orders raise TypeError.
    """

    def __init__(
        self,
        *args: Any,
        source_sfts: Mapping[str, SFT | None] | None = None,
        on_mismatch: str = "warn",
        **kwargs: Any,
    ) -> None:
        if not isinstance(source_sfts, Mapping) or not source_sfts:
            raise ValueError(
                "multi-source training needs source_sfts: a mapping from each source name to its "
                f"SFT (or None to train that source on the bare model), got {source_sfts!r}"
            )
        for name, sft in source_sfts.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"source_sfts keys must be non-empty strings, got {name!r}")
            if sft is not None and not isinstance(sft, SFT):
                raise TypeError(
                    f"source_sfts[{name!r}] must be an SFT or None, got {type(sft).__name__}"
                )
        if on_mismatch not in MISMATCH_POLICIES:
            raise ValueError(f"on_mismatch must be one of {MISMATCH_POLICIES}, got {on_mismatch!r}")

        super().__init__(*args, **kwargs)
        self._check_base_order()
        self.source_sfts: dict[str, SFT | None] = dict(source_sfts)
        # Name of the source whose SFT is applied right now, or None between batches.
        self.active_source: str | None = None
        self._check_source_sfts(on_mismatch)
        for dataset in (self.train_dataset, self.eval_dataset):
            if isinstance(dataset, MultiSourceDataset):
                self._check_dataset_sources(dataset)

    def _check_base_order(self) -> None:
        order = type(self).__mro__
        if SparseFineTuningMixin in order and order.index(SparseFineTuningMixin) > order.index(
            MultiSourceTrainingMixin
        ):
            raise TypeError(
                f"{type(self).__name__} puts MultiSourceTrainingMixin before SparseFineTuningMixin "
                "in its bases, so the sparse fine-tuner's per-step work would run with a source SFT "
                "applied; use class X(SparseFineTuningMixin, MultiSourceTrainingMixin, Trainer)"
            )

    def _check_source_sfts(self, on_mismatch: str) -> None:
        device = next(self.model.parameters()).device
        for name, sft in self.source_sfts.items():
            if sft is None:
                continue
            sft.to(device)
            sft.apply(self.model, with_abs=False, on_mismatch=on_mismatch)
            sft.revert(self.model)
            logger.info("Source %s: %r", name, sft)

    def _check_dataset_sources(self, dataset: MultiSourceDataset) -> None:
        missing = [name for name in dataset.source_names if name not in self.source_sfts]
        if missing:
            raise ValueError(
                f"the multi-source dataset has sources without an entry in source_sfts: {missing}; "
                f"source_sfts has {sorted(self.source_sfts)} (map a source to None to train it "
                "on the bare model)"
            )

    # Applying the source SFT around each step

    @contextlib.contextmanager
    def _source_sft_applied(self, inputs: Any) -> Iterator[str | None]:
        if not isinstance(inputs, MutableMapping) or BATCH_SOURCE_KEY not in inputs:
            yield None
            return
        source = inputs.pop(BATCH_SOURCE_KEY)
        if source not in self.source_sfts:
            raise ValueError(
                f"batch from source {source!r}, which has no entry in source_sfts "
                f"({sorted(self.source_sfts)})"
            )
        sft = self.source_sfts[source]
        if sft is not None:
            sft.apply(self.model, with_abs=False, on_mismatch="ignore")
        self.active_source = source
        try:
            yield source
        finally:
            self.active_source = None
            if sft is not None:
                sft.revert(self.model)

    def training_step(self, model, inputs, *args, **kwargs):
        with self._source_sft_applied(inputs):
            return super().training_step(model, inputs, *args, **kwargs)

    def prediction_step(self, model, inputs, *args, **kwargs):
        with self._source_sft_applied(inputs):
            return super().prediction_step(model, inputs, *args, **kwargs)

    # Data loaders

    def get_train_dataloader(self) -> DataLoader:
        if not isinstance(self.train_dataset, MultiSourceDataset):
            return super().get_train_dataloader()
        return self._multisource_dataloader(
            self.train_dataset, self._train_batch_size, shuffle=True
        )

    def get_eval_dataloader(self, eval_dataset=None) -> DataLoader:
        if isinstance(eval_dataset, str):
            dataset = self.eval_dataset[eval_dataset]
        else:
            dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        if not isinstance(dataset, MultiSourceDataset):
            return super().get_eval_dataloader(eval_dataset)
        return self._multisource_dataloader(dataset, self.args.eval_batch_size, shuffle=False)

    def get_test_dataloader(self, test_dataset) -> DataLoader:
        if not isinstance(test_dataset, MultiSourceDataset):
            return super().get_test_dataloader(test_dataset)
        return self._multisource_dataloader(test_dataset, self.args.eval_batch_size, shuffle=False)

    def _multisource_dataloader(
        self, dataset: MultiSourceDataset, batch_size: int, shuffle: bool
    ) -> DataLoader:
        self._check_dataset_sources(dataset)
        if self.args.group_by_length:
            logger.warning("group_by_length does not apply to a MultiSourceDataset; ignoring it")
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        sampler = MultiSourceBatchSampler(
            dataset,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            drop_last=self.args.dataloader_drop_last,
        )
        world_size = self.args.world_size
        if not shuffle and world_size > 1 and len(sampler) % world_size:
            # NOTE: accelerate cannot drop these repeats from the gathered predictions, because
            # the batches differ in size, so the metrics count their examples twice.
            logger.warning(
                "Evaluation: %d single-source batches do not divide evenly among %d processes, so "
                "%d batches are repeated and their examples count twice in the metrics; evaluate "
                "in one process for exact metrics",
                len(sampler),
                world_size,
                world_size - len(sampler) % world_size,
            )
        num_workers = self.args.dataloader_num_workers
        params: dict[str, Any] = {
            "batch_sampler": sampler,
            "collate_fn": MultiSourceCollator(self.data_collator),
            "num_workers": num_workers,
            "pin_memory": self.args.dataloader_pin_memory,
        }
        if num_workers > 0:
            params["persistent_workers"] = self.args.dataloader_persistent_workers
            params["prefetch_factor"] = self.args.dataloader_prefetch_factor
            params["worker_init_fn"] = partial(
                seed_worker, num_workers=num_workers, rank=self.args.process_index
            )
        return self.accelerator.prepare(DataLoader(dataset, **params))


class MultiSourceTrainer(MultiSourceTrainingMixin, Trainer):
    """`transformers.Trainer` that trains on several sources; see `MultiSourceTrainingMixin`."""


class MultiSourceSparseFineTuner(SparseFineTuningMixin, MultiSourceTrainingMixin, Trainer):
    """LT-SFT or random-mask SFT trained on several sources.

    Takes the arguments of `LotteryTicketSparseFineTuner` plus `source_sfts` and
    `on_mismatch` (see `MultiSourceTrainingMixin`). θ0 is the model as handed to the trainer,
    without any source SFT, so the learned SFT is relative to the bare base model.
    """
