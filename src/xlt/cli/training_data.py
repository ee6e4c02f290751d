"""The training and validation data of one `xlt-train` run, from one source or several."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from sft import MultiSourceDataset

from ..tasks import Task
from ..tasks.base import FeatureDataset
from .arguments import DataArguments
from .common import read_records
from .multisource import SourceSpec

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """The datasets of one run, and the counts and files recorded with its metrics."""

    train_dataset: Dataset
    eval_dataset: Dataset | None
    num_train_records: int
    num_train_features: int
    num_eval_records: int
    train_files: list[str]
    validation_files: list[str]
    # Multi-source runs: per source, its settings and counts; None for single-source runs.
    sources: dict[str, dict[str, Any]] | None = None


def read_training_data(task: Task, data_args: DataArguments) -> TrainingData:
    """Read and encode the training and validation records that `data_args` names."""
    specs = data_args.source_specs()
    if specs is not None:
        return read_multisource_data(task, specs, data_args.reader_options())

    reader_options = data_args.reader_options()
    train_records = read_records(task, data_args.train_files, data_args.max_train_samples, reader_options)
    train_dataset = FeatureDataset(task.encode(train_records, training=True))
    eval_records, eval_dataset = [], None
    if data_args.validation_files:
        eval_records = read_records(
            task, data_args.validation_files, data_args.max_eval_samples, reader_options
        )
        eval_dataset = FeatureDataset(task.encode(eval_records, training=False))
    return TrainingData(
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        num_train_records=len(train_records),
        num_train_features=len(train_dataset),
        num_eval_records=len(eval_records),
        train_files=list(data_args.train_files),
        validation_files=list(data_args.validation_files),
    )


def read_multisource_data(
    task: Task, specs: Sequence[SourceSpec], reader_options: dict[str, Any]
) -> TrainingData:
    """Read every source on its own, with its caps, and join the sources in multi-source datasets.

    Sources without validation files are left out of the validation dataset, which is None
    when no source has any.
    """
    train_sources: dict[str, FeatureDataset] = {}
    eval_sources: dict[str, FeatureDataset] = {}
    summary: dict[str, dict[str, Any]] = {}
    for spec in specs:
        records = read_records(task, spec.train_files, spec.max_train_samples, reader_options)
        train_sources[spec.language] = FeatureDataset(task.encode(records, training=True))
        eval_records = []
        if spec.validation_files:
            eval_records = read_records(
                task, spec.validation_files, spec.max_eval_samples, reader_options
            )
            eval_sources[spec.language] = FeatureDataset(task.encode(eval_records, training=False))
        summary[spec.language] = {
            **spec.record(),
            "num_train_records": len(records),
            "num_train_features": len(train_sources[spec.language]),
            "num_validation_records": len(eval_records),
        }
        logger.info(
            "Source %s: %d training records (%d features, upsampling x%d), %d validation records",
            spec.language, len(records), len(train_sources[spec.language]), spec.upsampling,
            len(eval_records),
        )

    train_dataset = MultiSourceDataset(
        train_sources, upsampling={spec.language: spec.upsampling for spec in specs}
    )
    eval_dataset = MultiSourceDataset(eval_sources) if eval_sources else None
    return TrainingData(
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        num_train_records=sum(entry["num_train_records"] for entry in summary.values()),
        num_train_features=sum(entry["num_train_features"] for entry in summary.values()),
        num_eval_records=sum(entry["num_validation_records"] for entry in summary.values()),
        train_files=[path for spec in specs for path in spec.train_files],
        validation_files=[path for spec in specs for path in spec.validation_files],
        sources=summary,
    )
