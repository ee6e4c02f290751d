"""The `SFT` container: sparse diffs and dense abs values of a sparse fine-tuning."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from . import application, composition, hub
from .config import SftConfig
from .constants import (
    FILE_FORMATS,
    LEGACY_WEIGHTS_NAME,
    SAFETENSORS_FORMAT,
    SFT_CONFIG_NAME,
    SFT_WEIGHTS_NAME,
)
from .fingerprint import parameter_shapes_digest
from .legacy import load_legacy_format, save_legacy_format
from .serialization import load_default_format, save_default_format
from .sparse_diff import SparseDiff

logger = logging.getLogger(__name__)


class SFT:
    """A sparse fine-tuning: sparse diffs plus dense abs values, keyed by parameter name.

    `diffs` maps full parameter names (as in `model.named_parameters()`) to `SparseDiff`s,
    the differences θ_ft − θ_base of the sparsely tuned parameters. `abs` maps names to
    the dense tensors of fully tuned parameters, usually the model head. `config` is the
    `SftConfig` with the base model, kind, budget K and training arguments. `name_or_path`
    is where the SFT was loaded from, or None.
    """

    def __init__(
        self,
        diffs: Mapping[str, SparseDiff] | None = None,
        abs: Mapping[str, torch.Tensor] | None = None,
        config: SftConfig | None = None,
        name_or_path: str | None = None,
    ) -> None:
        self.diffs: dict[str, SparseDiff] = dict(diffs or {})
        self.abs: dict[str, torch.Tensor] = dict(abs or {})
        self.config = config if config is not None else SftConfig()
        self.name_or_path = name_or_path
        for name, diff in self.diffs.items():
            if not isinstance(diff, SparseDiff):
                raise TypeError(f"diffs[{name!r}] must be a SparseDiff, got {type(diff).__name__}")
        for name, value in self.abs.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"abs[{name!r}] must be a tensor, got {type(value).__name__}")
        if not isinstance(self.config, SftConfig):
            raise TypeError(f"config must be an SftConfig, got {type(self.config).__name__}")

    # Description

    @property
    def display_name(self) -> str:
        """Name used in messages: the path or hub id, or a description of an unsaved SFT."""
        if self.name_or_path:
            return f"SFT {self.name_or_path!r}"
        if self.config.kind:
            return f"unsaved {self.config.kind} SFT"
        return "unsaved SFT"

    @property
    def num_diff_entries(self) -> int:
        """Total number of stored diff entries over all parameters."""
        return sum(diff.nnz for diff in self.diffs.values())

    def __repr__(self) -> str:
        return (
            f"SFT(name_or_path={self.name_or_path!r}, kind={self.config.kind!r}, "
            f"base_model={self.config.base_model_name_or_path!r}, diffs={len(self.diffs)} tensors "
            f"with {self.num_diff_entries} entries, abs={len(self.abs)} tensors)"
        )

    def to(self, device: torch.device | str) -> SFT:
        """Move diffs and abs values to `device` in place and return self.

        Applying an SFT that already lives on the model's device avoids a copy per call.
        """
        self.diffs = {name: diff.to(device) for name, diff in self.diffs.items()}
        self.abs = {name: value.to(device) for name, value in self.abs.items()}
        return self

    # Applying to a model

    def apply(self, model: nn.Module, with_abs: bool = True, on_mismatch: str = "warn") -> None:
        """Add the diffs to `model`'s parameters in place and, if `with_abs`, set the abs values.

        Every parameter the SFT touches must exist in the model with the same shape,
        otherwise ValueError names the parameter, both shapes and the SFT, and the model is
        left unchanged. The base model recorded in the config is then compared with the
        model's `name_or_path` (see `sft.fingerprint.same_base_model`), and the recorded
        parameter-shape fingerprint with the model's. A mismatch raises
        BaseModelMismatchError, logs a warning or is ignored, for `on_mismatch` "raise",
        "warn" or "ignore".

        The values overwritten are recorded on the model, so `revert` restores them bit for
        bit. Use `with_abs=False` to apply a language SFT to a task model, which lacks the
        language-model head the abs values belong to.
        """
        application.apply_sft(self, model, with_abs=with_abs, on_mismatch=on_mismatch)

    def revert(self, model: nn.Module) -> None:
        """Restore the values that the most recent `apply` of this SFT to `model` overwrote.

        The result is bit-identical to the parameters before `apply`; changes made to the
        touched entries in between are discarded. Raises RevertOrderError when another SFT
        was applied later and is still applied: revert SFTs in reverse order of application.
        """
        application.revert_sft(self, model)

    @contextlib.contextmanager
    def applied(
        self, model: nn.Module, with_abs: bool = True, on_mismatch: str = "warn"
    ) -> Iterator[SFT]:
        """Context manager that applies the SFT on entry and reverts it on exit."""
        self.apply(model, with_abs=with_abs, on_mismatch=on_mismatch)
        try:
            yield self
        finally:
            self.revert(model)

    # Composition

    @classmethod
    def compose(
        cls,
        sfts: Sequence[SFT],
        weights: Sequence[float] | None = None,
        abs_conflict: str = "error",
        on_mismatch: str = "warn",
    ) -> SFT:
        """Combine SFTs, for example a language SFT and a task SFT, into one.

        Diffs are summed, each multiplied by its weight (default 1), over the union of the
        operands' indices. An entry present in one operand only keeps its value times its
        weight. Summation is in float64, with the terms of each entry sorted, and rounds
        once, so the result is bit-identical for any order of `sfts`. Abs values are never
        scaled. When several SFTs have abs values for one parameter, `abs_conflict`
        "error" raises ValueError, "first" keeps the earliest in `sfts` and "last" the
        latest. Differing base models are reported per `on_mismatch` ("warn", "raise" or
        "ignore"). Differing shapes of a parameter always raise ValueError.
        """
        return composition.compose_sfts(
            sfts, weights=weights, abs_conflict=abs_conflict, on_mismatch=on_mismatch
        )

    def scale(self, factor: float) -> SFT:
        """Return a copy whose diffs are multiplied by `factor` (rounded once); abs values are kept."""
        return composition.scale_sft(self, factor)

    def __add__(self, other: SFT) -> SFT:
        if not isinstance(other, SFT):
            return NotImplemented
        return SFT.compose([self, other])

    def __mul__(self, factor: float) -> SFT:
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            return NotImplemented
        return self.scale(factor)

    __rmul__ = __mul__

    # Construction from a model

    @classmethod
    def from_difference(
        cls,
        model: nn.Module,
        base_state_dict: Mapping[str, torch.Tensor],
        diff_params: Sequence[str] | None = None,
        abs_params: Sequence[str] | None = None,
        kind: str | None = None,
        ft_params_num: int | None = None,
        training_arguments: dict | None = None,
    ) -> SFT:
        """Build an SFT from a fine-tuned `model` and the base weights it started from.

        `diff_params` (default: `maskable_parameter_names(model)`) get diffs holding every
        entry that differs from `base_state_dict`. `abs_params` (default: the other
        trainable parameters) are stored densely. This turns a dense fine-tuning run with a
        plain Trainer into an SFT. `ft_params_num` defaults to the number of entries of the
        diff parameters, that is, K is every maskable entry.
        """
        from .model_utils import maskable_parameter_names

        if diff_params is None:
            diff_params = maskable_parameter_names(model)
        diff_names = list(diff_params)
        if abs_params is None:
            abs_params = [
                name
                for name, p in model.named_parameters()
                if p.requires_grad and name not in set(diff_names)
            ]
        parameters = dict(model.named_parameters(remove_duplicate=False))
        missing = [name for name in [*diff_names, *abs_params] if name not in parameters]
        if missing:
            raise ValueError(f"{type(model).__name__} has no parameters named {missing}")
        missing_base = [name for name in diff_names if name not in base_state_dict]
        if missing_base:
            raise ValueError(
                f"base_state_dict has no entries for the diff parameters {missing_base}"
            )

        diffs = {}
        for name in diff_names:
            base = base_state_dict[name]
            if base.shape != parameters[name].shape:
                raise ValueError(
                    f"parameter {name!r} has shape {tuple(parameters[name].shape)} in the model but "
                    f"{tuple(base.shape)} in base_state_dict"
                )
            diffs[name] = SparseDiff.between(parameters[name], base).to("cpu")
        abs_values = {name: parameters[name].detach().cpu().clone() for name in abs_params}
        if ft_params_num is None:
            ft_params_num = sum(diff.numel for diff in diffs.values())
        config = SftConfig(
            kind=kind,
            base_model_name_or_path=application.model_name_or_path(model),
            base_model_fingerprint=parameter_shapes_digest(
                {name: diff.shape for name, diff in diffs.items()}
            ),
            ft_params_num=ft_params_num,
            training_arguments=dict(training_arguments or {}),
        )
        return cls(diffs=diffs, abs=abs_values, config=config)

    # Files

    def save_pretrained(self, folder: str | Path, file_format: str = SAFETENSORS_FORMAT) -> None:
        """Save the SFT into `folder`, creating it if needed.

        `file_format` "safetensors" (the default) writes `sft.safetensors` and
        `sft_config.json`. "legacy" writes `pytorch_diff.bin` in the format of the original
        composable-sft library, which has no config. Each file is written atomically.
        """
        if file_format not in FILE_FORMATS:
            raise ValueError(f"file_format must be one of {FILE_FORMATS}, got {file_format!r}")
        folder = Path(folder)
        if file_format == SAFETENSORS_FORMAT:
            save_default_format(folder, self.diffs, self.abs, self.config)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            save_legacy_format(folder / LEGACY_WEIGHTS_NAME, self.diffs, self.abs)
        kind = f"{self.config.kind} SFT" if self.config.kind else "SFT"
        logger.info(
            "Saved the %s (%d diffs, %d abs) to %s in the %s format",
            kind, len(self.diffs), len(self.abs), folder, file_format,
        )

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        revision: str | None = None,
        *,
        cache_dir: str | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> SFT:
        """Load an SFT from a local folder or file, or from a hub model repository.

        A local folder may contain the default format (`sft.safetensors` with
        `sft_config.json`) or the legacy `pytorch_diff.bin`. The default format wins when
        both are present. A path to either weights file also works. Any other string is
        taken as a hub repository id and downloaded with huggingface_hub at `revision`.
        Raises FileNotFoundError when neither a local SFT nor a hub download is found.
        """
        path = Path(name_or_path).expanduser()
        if path.is_file():
            folder = path.parent
            legacy_file = None if path.name in (SFT_WEIGHTS_NAME, SFT_CONFIG_NAME) else path
        elif path.is_dir():
            folder, legacy_file = path, None
        elif hub.is_hub_repo_id(str(name_or_path)):
            folder = hub.download_sft_folder(
                str(name_or_path),
                revision=revision,
                cache_dir=cache_dir,
                token=token,
                local_files_only=local_files_only,
            )
            legacy_file = None
        else:
            raise FileNotFoundError(
                f"no SFT found at {str(name_or_path)!r}: it is neither an existing file or folder nor "
                "a valid hub repository id"
            )

        if legacy_file is None and (folder / SFT_WEIGHTS_NAME).is_file():
            diffs, abs_values, config = load_default_format(folder)
        else:
            legacy_file = legacy_file or folder / LEGACY_WEIGHTS_NAME
            if not legacy_file.is_file():
                raise FileNotFoundError(
                    f"{folder} contains no SFT: expected {SFT_WEIGHTS_NAME} with {SFT_CONFIG_NAME}, "
                    f"or the legacy {LEGACY_WEIGHTS_NAME}"
                )
            diffs, abs_values = load_legacy_format(legacy_file)
            config = SftConfig()
        sft = cls(diffs=diffs, abs=abs_values, config=config, name_or_path=str(name_or_path))
        logger.info("Loaded %r", sft)
        return sft

    def push_to_hub(
        self,
        repo_id: str,
        *,
        file_format: str = SAFETENSORS_FORMAT,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        commit_message: str | None = None,
    ) -> str:
        """Upload the SFT to the hub model repository `repo_id`, creating it if needed.

        Returns the URL of the commit.
        """
        return hub.upload_sft(
            self,
            repo_id,
            file_format=file_format,
            private=private,
            token=token,
            revision=revision,
            commit_message=commit_message,
        )
