"""Applying SFTs to a model in place and reverting them exactly.

`apply_sft` adds the diffs to the model's parameters and copies in the abs values. Before
writing, it records the values it overwrites (the original entries at the diff indices,
and the full original tensors of abs parameters) on a stack stored on the model.
`revert_sft` writes those values back, so that apply followed by revert leaves every
parameter bit-identical. SFTs must be reverted in reverse order of application.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from .errors import RevertOrderError
from .fingerprint import (
    check_mismatch_policy,
    parameter_shapes_digest,
    report_mismatch,
    same_base_model,
)

if TYPE_CHECKING:
    from .sft import SFT

logger = logging.getLogger(__name__)

# Attribute of the model holding the stack of applied SFTs.
APPLIED_STACK_ATTRIBUTE = "_sft_applied_stack"


@dataclass
class _AppliedRecord:
    sft: SFT
    # (parameter, indices, original values at those indices), in application order.
    diffs: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = field(default_factory=list)
    # (parameter, original tensor), in application order.
    abs: list[tuple[nn.Parameter, torch.Tensor]] = field(default_factory=list)


def applied_sfts(model: nn.Module) -> list[SFT]:
    """Return the SFTs currently applied to `model`, oldest first."""
    return [record.sft for record in getattr(model, APPLIED_STACK_ATTRIBUTE, [])]


def model_name_or_path(model: nn.Module) -> str | None:
    """Return the hub id or local path the model was loaded from, or None when unknown."""
    name = getattr(model, "name_or_path", None)
    if not name:
        name = getattr(getattr(model, "config", None), "_name_or_path", None)
    return name or None


def _resolve_parameter(
    model: nn.Module, name: str, expected_shape: torch.Size, sft: SFT, role: str
) -> nn.Parameter:
    try:
        parameter = model.get_parameter(name)
    except AttributeError:
        raise ValueError(
            f"cannot apply {sft.display_name}: {type(model).__name__} has no parameter {name!r}, which "
            f"the SFT has {role} for (shape {tuple(expected_shape)}). Is this the base model the "
            "SFT was made for? To skip the abs values, pass with_abs=False."
        ) from None
    if parameter.shape != expected_shape:
        raise ValueError(
            f"cannot apply {sft.display_name}: parameter {name!r} has shape {tuple(parameter.shape)} in "
            f"the model but shape {tuple(expected_shape)} in the SFT's {role}"
        )
    return parameter


def _check_no_shared_tensors(resolved: dict[str, nn.Parameter], sft: SFT, role: str) -> None:
    seen: dict[int, str] = {}
    for name, parameter in resolved.items():
        key = parameter.data_ptr()
        if key in seen:
            raise ValueError(
                f"cannot apply {sft.display_name}: its {role} for {seen[key]!r} and {name!r} refer to the "
                "same (tied) tensor in the model, so it would be changed twice"
            )
        seen[key] = name


def _check_fingerprint(
    sft: SFT, model: nn.Module, resolved_diffs: dict[str, nn.Parameter], on_mismatch: str
) -> None:
    config = sft.config
    recorded_name = config.base_model_name_or_path
    model_name = model_name_or_path(model)
    if same_base_model(recorded_name, model_name) is False:
        report_mismatch(
            f"{sft.display_name} was made for base model {recorded_name!r} but is applied to "
            f"{model_name!r}; pass on_mismatch='ignore' if this is intended",
            on_mismatch,
        )
    if config.base_model_fingerprint is not None:
        model_digest = parameter_shapes_digest(
            {name: p.shape for name, p in resolved_diffs.items()}
        )
        if model_digest != config.base_model_fingerprint:
            report_mismatch(
                f"{sft.display_name}: the parameter-shape fingerprint of the model ({model_digest[:12]}…) "
                f"differs from the one recorded in the SFT ({config.base_model_fingerprint[:12]}…)",
                on_mismatch,
            )


def apply_sft(sft: SFT, model: nn.Module, with_abs: bool = True, on_mismatch: str = "warn") -> None:
    """Apply `sft` to `model` in place; see `SFT.apply`."""
    check_mismatch_policy(on_mismatch)
    resolved_diffs = {
        name: _resolve_parameter(model, name, diff.shape, sft, "a diff")
        for name, diff in sft.diffs.items()
    }
    resolved_abs = {}
    if with_abs:
        resolved_abs = {
            name: _resolve_parameter(model, name, value.shape, sft, "an abs value")
            for name, value in sft.abs.items()
        }
    _check_no_shared_tensors(resolved_diffs, sft, "diffs")
    _check_no_shared_tensors(resolved_abs, sft, "abs values")
    _check_fingerprint(sft, model, resolved_diffs, on_mismatch)

    record = _AppliedRecord(sft=sft)
    with torch.no_grad():
        for name, parameter in resolved_diffs.items():
            diff = sft.diffs[name]
            indices = diff.indices.to(parameter.device)
            values = diff.values.to(parameter.device)
            # take and put_ index the parameter in row-major order, contiguous or not.
            original = torch.take(parameter, indices)
            if values.dtype == parameter.dtype:
                parameter.put_(indices, values, accumulate=True)
            else:
                parameter.put_(indices, (original.to(values.dtype) + values).to(parameter.dtype))
            record.diffs.append((parameter, indices, original))
        for name, parameter in resolved_abs.items():
            record.abs.append((parameter, parameter.detach().clone()))
            parameter.copy_(sft.abs[name])

    stack = model.__dict__.setdefault(APPLIED_STACK_ATTRIBUTE, [])
    stack.append(record)
    logger.debug(
        "Applied %s (%d diffs, %d abs values)", sft.display_name, len(record.diffs), len(record.abs)
    )


def revert_sft(sft: SFT, model: nn.Module) -> None:
    """Undo the most recent application of `sft` to `model`; see `SFT.revert`."""
    stack = model.__dict__.get(APPLIED_STACK_ATTRIBUTE, [])
    if not any(record.sft is sft for record in stack):
        raise RevertOrderError(f"cannot revert {sft.display_name}: it is not applied to this model")
    if stack[-1].sft is not sft:
        later = stack[-1].sft.display_name
        raise RevertOrderError(
            f"cannot revert {sft.display_name}: {later} was applied after it. Revert SFTs in reverse "
            "order of application."
        )
    record = stack.pop()
    with torch.no_grad():
        for parameter, original in reversed(record.abs):
            parameter.copy_(original)
        for parameter, indices, original in reversed(record.diffs):
            parameter.put_(indices, original)
    logger.debug("Reverted %s", sft.display_name)
