"""Steps shared by the entry points: reading records with a cap, loading SFTs, choosing a device."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from sft import SFT

from ..tasks import Task

logger = logging.getLogger(__name__)


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """Load a fast tokenizer, whose word ids the word-level tasks need."""
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True)
    if not tokenizer.is_fast:
        raise ValueError(
            f"{name_or_path}: the tasks need a fast tokenizer (tokenizer.json) to map sub-words to "
            "words, but only a slow tokenizer was found"
        )
    return tokenizer


def read_records(
    task: Task, files: Sequence[str], max_records: int | None, reader_options: dict[str, Any]
) -> list[Any]:
    """Read the records of `files` in order, keeping only the first `max_records` when given."""
    records: list[Any] = []
    for path in files:
        if not Path(path).is_file():
            raise FileNotFoundError(f"data file {path} not found")
        file_records = task.read(path, **reader_options)
        logger.info("Read %d records from %s", len(file_records), path)
        records.extend(file_records)
        if max_records is not None and len(records) >= max_records:
            break
    if max_records is not None and len(records) > max_records:
        records = records[:max_records]
        logger.info("Kept the first %d records", max_records)
    if not records:
        raise ValueError(f"no records in {', '.join(files)}")
    return records


def apply_sft(
    model: PreTrainedModel, name_or_path: str, with_abs: bool, role: str
) -> SFT:
    """Load the SFT at `name_or_path` and apply it to `model`, logging what was applied."""
    sft = SFT.from_pretrained(name_or_path)
    sft.apply(model, with_abs=with_abs)
    logger.info(
        "Applied %s SFT %s (%s its dense head values)", role, name_or_path,
        "with" if with_abs else "without",
    )
    return sft


def select_device(requested: str | None) -> torch.device:
    """Return the requested device, or CUDA when available and CPU otherwise."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
