"""Composition and scaling of SFTs.

Composing sums the diffs of several SFTs, each multiplied by its weight, over the union of
their indices. Each term is computed in float64. With three or more operands, the terms
of every entry are sorted before summation, and the sum is rounded once to the operands'
common dtype. The result is therefore bit-identical whatever the order of the operands
(with two operands this is true without sorting, because floating-point addition is
commutative). Abs values are not scaled; when several operands have abs values for the
same parameter, `abs_conflict` decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import reduce
from typing import TYPE_CHECKING

import torch

from .config import SftConfig
from .fingerprint import (
    check_mismatch_policy,
    parameter_shapes_digest,
    report_mismatch,
    same_base_model,
)
from .sparse_diff import SparseDiff

if TYPE_CHECKING:
    from .sft import SFT

ABS_CONFLICT_POLICIES = ("error", "first", "last")


def _weighted_sum(diffs: Sequence[SparseDiff], weights: Sequence[float]) -> SparseDiff:
    dtype = reduce(torch.promote_types, (diff.dtype for diff in diffs))
    device = diffs[0].device
    if len(diffs) == 1:
        diff = diffs[0]
        return SparseDiff(
            diff.shape, diff.indices.clone(), (diff.values.double() * weights[0]).to(dtype)
        )

    presence = torch.zeros(diffs[0].numel, dtype=torch.bool, device=device)
    for diff in diffs:
        presence[diff.indices.to(device)] = True
    union = torch.nonzero(presence, as_tuple=True)[0]
    del presence

    terms = torch.zeros((len(diffs), union.numel()), dtype=torch.float64, device=device)
    for row, (diff, weight) in enumerate(zip(diffs, weights)):
        positions = torch.searchsorted(union, diff.indices.to(device))
        terms[row, positions] = diff.values.to(device, torch.float64) * weight
    if len(diffs) > 2:
        terms = torch.sort(terms, dim=0).values
    return SparseDiff(diffs[0].shape, union, terms.sum(dim=0).to(dtype))


def _check_weights(sfts: Sequence[SFT], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(sfts)
    weights = list(weights)
    if len(weights) != len(sfts):
        raise ValueError(
            f"got {len(weights)} weights for {len(sfts)} SFTs; give one weight per SFT"
        )
    for weight in weights:
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
        ):
            raise TypeError(f"weights must be finite numbers, got {weight!r}")
    return [float(weight) for weight in weights]


def _common_base_model(sfts: Sequence[SFT], on_mismatch: str) -> str | None:
    named = [sft for sft in sfts if sft.config.base_model_name_or_path]
    for other in named[1:]:
        if (
            same_base_model(
                named[0].config.base_model_name_or_path, other.config.base_model_name_or_path
            )
            is False
        ):
            report_mismatch(
                f"composing SFTs made for different base models: {named[0].display_name} for "
                f"{named[0].config.base_model_name_or_path!r} and {other.display_name} for "
                f"{other.config.base_model_name_or_path!r}",
                on_mismatch,
            )
    return named[0].config.base_model_name_or_path if named else None


def compose_sfts(
    sfts: Sequence[SFT],
    weights: Sequence[float] | None = None,
    abs_conflict: str = "error",
    on_mismatch: str = "warn",
) -> SFT:
    """Combine SFTs into one; see `SFT.compose`."""
    from .sft import SFT

    sfts = list(sfts)
    if not sfts:
        raise ValueError("compose needs at least one SFT")
    for sft in sfts:
        if not isinstance(sft, SFT):
            raise TypeError(f"compose takes SFT objects, got {type(sft).__name__}")
    if abs_conflict not in ABS_CONFLICT_POLICIES:
        raise ValueError(
            f"abs_conflict must be one of {ABS_CONFLICT_POLICIES}, got {abs_conflict!r}"
        )
    check_mismatch_policy(on_mismatch)
    weights = _check_weights(sfts, weights)
    base_model = _common_base_model(sfts, on_mismatch)

    diffs = {}
    for name in sorted({name for sft in sfts for name in sft.diffs}):
        operands = [(sft, weight) for sft, weight in zip(sfts, weights) if name in sft.diffs]
        shapes = {sft.diffs[name].shape for sft, _ in operands}
        if len(shapes) > 1:
            described = ", ".join(
                f"{tuple(sft.diffs[name].shape)} in {sft.display_name}" for sft, _ in operands
            )
            raise ValueError(
                f"cannot compose: parameter {name!r} has different shapes: {described}"
            )
        diffs[name] = _weighted_sum(
            [sft.diffs[name] for sft, _ in operands], [w for _, w in operands]
        )

    abs_values = {}
    owners: dict[str, SFT] = {}
    for sft in sfts:
        for name, value in sft.abs.items():
            if name in abs_values:
                if abs_conflict == "error":
                    raise ValueError(
                        f"cannot compose: {owners[name].display_name} and {sft.display_name} both have abs "
                        f"values for {name!r}; pass abs_conflict='first' or 'last' to choose one"
                    )
                if abs_conflict == "first":
                    continue
            abs_values[name] = value
            owners[name] = sft

    config = SftConfig(
        kind="composed",
        base_model_name_or_path=base_model,
        base_model_fingerprint=parameter_shapes_digest(
            {name: diff.shape for name, diff in diffs.items()}
        ),
        components=[
            {"name_or_path": sft.name_or_path, "kind": sft.config.kind, "weight": weight}
            for sft, weight in zip(sfts, weights)
        ],
    )
    return SFT(diffs=diffs, abs=abs_values, config=config)


def scale_sft(sft: SFT, factor: float) -> SFT:
    """Return a copy of `sft` with its diffs multiplied by `factor`; see `SFT.scale`."""
    from .sft import SFT

    (factor,) = _check_weights([sft], [factor])
    diffs = {name: _weighted_sum([diff], [factor]) for name, diff in sft.diffs.items()}
    config = SftConfig(
        **{
            **sft.config.to_dict(),
            "components": [
                {"name_or_path": sft.name_or_path, "kind": sft.config.kind, "weight": factor}
            ],
        }
    )
    return SFT(diffs=diffs, abs=dict(sft.abs), config=config)
