"""Model helpers: which parameters are maskable, and the freeze and untie options."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import nn

from .arguments import SftArguments

logger = logging.getLogger(__name__)


def _base_model_prefix(model: nn.Module) -> str | None:
    prefix = getattr(model, "base_model_prefix", "")
    if prefix and isinstance(getattr(model, prefix, None), nn.Module):
        return prefix
    return None


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.startswith(pattern + ".")


def maskable_parameter_names(model: nn.Module, exclude: Iterable[str] = ()) -> list[str]:
    """List the parameters an SFT trains sparsely, in `model.named_parameters()` order.

    These are the trainable parameters (requires_grad) of the base model: those whose names
    start with `model.base_model_prefix` (for example "bert.") when the model has a
    submodule of that name, and all trainable parameters otherwise (a bare `BertModel`, or
    a plain nn.Module). Trainable parameters outside the base model, such as a
    classification head, are not maskable; the SFT trainers store them densely as abs
    values.

    `exclude` contains parameter names or module prefixes to leave out, for example
    "bert.pooler" for a newly initialised pooler that should be trained like the head.
    Raises ValueError when an entry of `exclude` matches no parameter of the model.
    """
    if isinstance(exclude, str):
        raise TypeError(f"exclude must be a list of names, got the string {exclude!r}")
    exclusions = list(exclude)
    prefix = _base_model_prefix(model)
    names = [name for name, _ in model.named_parameters()]
    unmatched = [
        pattern for pattern in exclusions if not any(_matches(name, pattern) for name in names)
    ]
    if unmatched:
        raise ValueError(
            f"exclude entries {unmatched} match no parameter of {type(model).__name__}; give full "
            "parameter names or module prefixes as listed by model.named_parameters()"
        )
    return [
        name
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
        and (prefix is None or name.startswith(prefix + "."))
        and not any(_matches(name, pattern) for pattern in exclusions)
    ]


def _is_layer_norm(module: nn.Module) -> bool:
    # Many models define their own normalisation classes (T5LayerNorm, LlamaRMSNorm, ...).
    class_name = type(module).__name__
    return isinstance(module, nn.LayerNorm) or class_name.endswith(("LayerNorm", "RMSNorm"))


def untie_output_embeddings(model: nn.Module) -> bool:
    """Give the output embeddings their own copy of the tied input embedding weights.

    Also sets `model.config.tie_word_embeddings = False`, so that `tie_weights()` does not
    tie them again. Returns whether the weights were tied before the call.
    """
    output_embeddings = model.get_output_embeddings()
    if output_embeddings is None:
        raise ValueError(
            f"cannot untie embeddings: {type(model).__name__} has no output embeddings "
            "(get_output_embeddings() returned None); unset untie_embeddings and freeze_decoder"
        )
    input_weight = model.get_input_embeddings().weight
    tied = output_embeddings.weight is input_weight
    if tied:
        output_embeddings.weight = nn.Parameter(input_weight.detach().clone())
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "tie_word_embeddings"):
        config.tie_word_embeddings = False
    return tied


def apply_freeze_options(model: nn.Module, sft_args: SftArguments) -> list[str]:
    """Apply the untie and freeze options of `sft_args` to `model` in place.

    Returns the names of the parameters frozen by the call, which are neither trained nor
    stored in the SFT. Untying runs first, so that freezing the decoder leaves the input
    embeddings trainable.
    """
    untie = sft_args.untie_embeddings or sft_args.freeze_decoder
    if untie and untie_output_embeddings(model):
        logger.info("Untied the output embeddings from the input embeddings")

    to_freeze: list[torch.nn.Parameter] = []
    if sft_args.freeze_embeddings:
        to_freeze.append(model.get_input_embeddings().weight)
    if sft_args.freeze_decoder:
        to_freeze.append(model.get_output_embeddings().weight)
    if sft_args.freeze_layer_norm:
        for module in model.modules():
            if _is_layer_norm(module):
                to_freeze.extend(module.parameters(recurse=False))

    frozen_ids = {id(parameter) for parameter in to_freeze if parameter.requires_grad}
    frozen = [name for name, parameter in model.named_parameters() if id(parameter) in frozen_ids]
    for parameter in to_freeze:
        parameter.requires_grad_(False)
    if frozen:
        logger.info("Froze %d parameters: %s", len(frozen), ", ".join(frozen))
    return frozen
