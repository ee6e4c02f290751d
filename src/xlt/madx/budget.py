"""Count the parameters of MAD-X adapters for a model, to match them to an SFT's budget K.

`python -m xlt.madx.budget --model MODEL_DIR --reduction_factors 16 4 2 1 0.5` prints, for each
reduction factor, the entries of a task adapter and of a language adapter (with its invertible
adapter), also as a share of the entries an SFT selects K from. The model is built on PyTorch's
meta device from its config alone, so counting needs no weights and little memory.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import AutoConfig, AutoModel, PretrainedConfig

from .arguments import DEFAULT_INV_REDUCTION_FACTOR, DEFAULT_REDUCTION_FACTOR
from .modules import add_adapter, build_adapter_config, count_entries, init_adapters

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdapterBudget:
    """Entries of the adapters of one reduction factor, and the SFT denominator they compare with."""

    reduction_factor: float
    inv_reduction_factor: float
    task_adapter_entries: int
    language_adapter_entries: int
    maskable_entries: int

    @property
    def task_proportion(self) -> float:
        return self.task_adapter_entries / self.maskable_entries

    @property
    def language_proportion(self) -> float:
        return self.language_adapter_entries / self.maskable_entries


def count_sft_maskable_entries(model: torch.nn.Module, freeze_layer_norm: bool, freeze_embeddings: bool) -> int:
    """Return the entries of a bare encoder that an SFT selects from, pooler excluded.

    The task models of `xlt.tasks` either have no pooler or train a missing one as part of the
    head, so the pooler is left out. The freeze options remove layer norms and the input
    embeddings, as `sft.apply_freeze_options` does.
    """
    excluded: set[int] = set()
    if freeze_embeddings:
        excluded.add(id(model.get_input_embeddings().weight))
    if freeze_layer_norm:
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                excluded.update(id(parameter) for parameter in module.parameters(recurse=False))
    return sum(
        parameter.numel()
        for name, parameter in model.named_parameters()
        if id(parameter) not in excluded and not name.startswith("pooler.")
    )


def adapter_budget(
    model_config: PretrainedConfig,
    reduction_factor: float,
    inv_reduction_factor: float = DEFAULT_INV_REDUCTION_FACTOR,
    freeze_layer_norm: bool = False,
    freeze_embeddings: bool = False,
) -> AdapterBudget:
    """Count the entries of a task and a language adapter of `reduction_factor` for a model config."""
    with torch.device("meta"):
        model = AutoModel.from_config(model_config)
    maskable = count_sft_maskable_entries(model, freeze_layer_norm, freeze_embeddings)
    init_adapters(model)
    task_names = add_adapter(model, "task", build_adapter_config("task", reduction_factor, inv_reduction_factor))
    language_names = add_adapter(
        model, "language", build_adapter_config("language", reduction_factor, inv_reduction_factor)
    )
    return AdapterBudget(
        reduction_factor=reduction_factor,
        inv_reduction_factor=inv_reduction_factor,
        task_adapter_entries=count_entries(model, task_names),
        language_adapter_entries=count_entries(model, language_names),
        maskable_entries=maskable,
    )


def format_budgets(budgets: Sequence[AdapterBudget]) -> str:
    """Render budgets as a Markdown table."""
    lines = [
        "| reduction factor | task adapter | % of maskable | language adapter | % of maskable |",
        "|---:|---:|---:|---:|---:|",
    ]
    for budget in budgets:
        lines.append(
            f"| {budget.reduction_factor:g} | {budget.task_adapter_entries:,} | "
            f"{budget.task_proportion * 100:.2f} | {budget.language_adapter_entries:,} | "
            f"{budget.language_proportion * 100:.2f} |"
        )
    maskable = budgets[0].maskable_entries if budgets else 0
    lines.append("")
    lines.append(f"Maskable entries (the SFT's denominator): {maskable:,}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder (or hub id) whose config.json is read")
    parser.add_argument(
        "--reduction_factors", nargs="+", type=float, default=[DEFAULT_REDUCTION_FACTOR],
        help="bottleneck reduction factors to count (bottleneck size = hidden size // factor)",
    )
    parser.add_argument(
        "--inv_adapter_reduction_factor", type=float, default=DEFAULT_INV_REDUCTION_FACTOR,
        help="reduction factor of the language adapters' invertible adapter",
    )
    parser.add_argument(
        "--freeze_layer_norm", action="store_true",
        help="leave layer norms out of the maskable entries, as the SFT option of that name does",
    )
    parser.add_argument(
        "--freeze_embeddings", action="store_true",
        help="leave the input embeddings out of the maskable entries, as the SFT option does",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for factor in args.reduction_factors:
        if not factor > 0:
            parser.error(f"--reduction_factors must be positive numbers, got {factor}")

    model_config = AutoConfig.from_pretrained(args.model)
    budgets = [
        adapter_budget(
            model_config, factor, args.inv_adapter_reduction_factor,
            freeze_layer_norm=args.freeze_layer_norm, freeze_embeddings=args.freeze_embeddings,
        )
        for factor in args.reduction_factors
    ]
    sys.stdout.write(format_budgets(budgets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
