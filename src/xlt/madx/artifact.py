"""Saving a trained adapter with its head, and loading it into a task model.

A MAD-X adapter folder contains:
- `adapter_config.json` and `adapter.safetensors`, written by the `adapters` library's
  `save_adapter` (so `model.load_adapter(folder)` also works outside this project);
- `head.safetensors`: the newly initialised head parameters trained with a task adapter
  (classifier, parser, pooler), possibly empty;
- `madx_config.json` (`MadxConfig`), written last, so that a folder with it is complete.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

from ..provenance import sha256_file
from .config import MadxConfig, MadxFormatError
from .modules import head_state_dict, load_head

logger = logging.getLogger(__name__)

MADX_CONFIG_NAME = "madx_config.json"
HEAD_WEIGHTS_NAME = "head.safetensors"
# Files that `save_adapter(..., use_safetensors=True)` writes in adapters 1.3.0.
ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter.safetensors"


@dataclass
class AdapterModule:
    """A trained adapter inside its model, with the config describing it: what `xlt-train` saves."""

    model: PreTrainedModel
    config: MadxConfig

    def save_pretrained(self, save_directory: str | Path) -> None:
        """Write the adapter, the head weights and the config into `save_directory`.

        Files are written to a temporary folder inside `save_directory` and moved into place one
        by one, the config last, so an interrupted save never leaves a config next to partial
        weights. Other files in the folder are kept.
        """
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".madx-", dir=folder) as staging:
            self.model.save_adapter(staging, self.config.adapter_name, with_head=False, use_safetensors=True)
            save_file(
                head_state_dict(self.model, self.config.head_parameter_names),
                os.path.join(staging, HEAD_WEIGHTS_NAME),
            )
            for name in sorted(os.listdir(staging)):
                os.replace(os.path.join(staging, name), folder / name)
        self.config.save(folder / MADX_CONFIG_NAME)
        logger.info(
            "Saved %s adapter %r (%d parameters, %d head parameters) to %s",
            self.config.kind, self.config.adapter_name, self.config.num_adapter_parameters,
            self.config.num_head_parameters, folder,
        )


def read_adapter_config(folder: str | Path, expected_kind: str | None = None) -> MadxConfig:
    """Read the `MadxConfig` of an adapter folder, checking that the adapter files are present.

    Raises MadxFormatError when a file is missing or, with `expected_kind`, when the folder
    contains an adapter of another kind.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"adapter folder {folder} not found")
    config = MadxConfig.from_json_file(folder / MADX_CONFIG_NAME)
    for name in (ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, HEAD_WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise MadxFormatError(f"{folder}: {name} is missing; train the adapter again")
    if expected_kind is not None and config.kind != expected_kind:
        raise MadxFormatError(
            f"{folder} contains a {config.kind} adapter (task {config.task}), but a {expected_kind} "
            "adapter is expected here"
        )
    return config


def load_adapter_module(
    model: PreTrainedModel,
    folder: str | Path,
    load_as: str,
    expected_kind: str,
    with_head: bool,
) -> MadxConfig:
    """Load the adapter in `folder` into an adapter model (see `init_adapters`) as `load_as`.

    Raises MadxFormatError when the folder contains an adapter of another kind than `expected_kind`.
    With `with_head`, the saved head weights are copied into the model's parameters of the same
    names. The adapter is loaded inactive; `activate` chooses the stack.
    """
    config = read_adapter_config(folder, expected_kind)
    model.load_adapter(str(folder), load_as=load_as, set_active=False, use_safetensors=True)
    if with_head and config.head_parameter_names:
        head_file = Path(folder) / HEAD_WEIGHTS_NAME
        state = load_file(str(head_file))
        if set(state) != set(config.head_parameter_names):
            raise MadxFormatError(
                f"{head_file} contains {sorted(state)}, but {MADX_CONFIG_NAME} lists "
                f"{sorted(config.head_parameter_names)}; train the adapter again"
            )
        load_head(model, state, source=str(head_file))
    logger.info(
        "Loaded %s adapter %s as %r (%s its head)", config.kind, folder, load_as,
        "with" if with_head else "without",
    )
    return config


def describe_adapter_folder(folder: str | Path) -> dict[str, Any]:
    """Describe an adapter by its path and the hashes of its two config files, for result files."""
    folder = Path(folder)
    hashes = {}
    for name in (MADX_CONFIG_NAME, ADAPTER_CONFIG_NAME):
        path = folder / name
        hashes[name] = sha256_file(path) if path.is_file() else None
    return {
        "name_or_path": str(folder),
        "config_sha256": hashes[MADX_CONFIG_NAME],
        "adapter_config_sha256": hashes[ADAPTER_CONFIG_NAME],
    }
