"""Adding MAD-X adapters to a task model, choosing what trains, and activating a stack.

MAD-X uses two bottleneck configurations of the `adapters` library: language adapters are
`SeqBnInvConfig` ("pfeiffer+inv": a bottleneck after each layer's feed-forward block plus an
invertible NICE adapter on the embeddings), task adapters are `SeqBnConfig` ("pfeiffer"). The
task models of `xlt.tasks` keep their own heads; `adapters.init` turns them into adapter models
in place.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping

import adapters
import torch
from adapters import BnConfig, SeqBnConfig, SeqBnInvConfig, Stack
from adapters.methods.invertible import inv_hook_fn
from transformers import PreTrainedModel

from sft import SftArguments, apply_freeze_options, maskable_parameter_names

logger = logging.getLogger(__name__)


def build_adapter_config(kind: str, reduction_factor: float, inv_reduction_factor: float) -> BnConfig:
    """Return the MAD-X configuration of a language or a task adapter."""
    if kind == "language":
        return SeqBnInvConfig(
            reduction_factor=reduction_factor, inv_adapter_reduction_factor=inv_reduction_factor
        )
    if kind == "task":
        return SeqBnConfig(reduction_factor=reduction_factor)
    raise ValueError(f"adapter kind must be 'language' or 'task', got {kind!r}")


def init_adapters(model: PreTrainedModel) -> None:
    """Make `model` an adapter model in place (`adapters.init`) and complete its invertible adapters."""
    adapters.init(model)
    add_reverse_invertible_hook(model)


def add_reverse_invertible_hook(model: PreTrainedModel) -> bool:
    """Run the active invertible adapter in reverse on the input of the output embeddings.

    MAD-X applies the invertible adapter after the input embeddings and its inverse before the
    output embeddings, which are tied to the input embeddings. adapters 1.3.0 registers
    the inverse only for its own language-model heads and for models set up through an
    `AdapterModelInterface`. After `adapters.init` on a built-in architecture with a Hugging Face
    masked-LM head (BertForMaskedLM, XLMRobertaForMaskedLM) the inverse is missing, so this adds
    it. Returns whether a hook was added: models without output embeddings (task models) and
    models that already have the library's hook get none.
    """
    output_embeddings = model.get_output_embeddings()
    if output_embeddings is None:
        return False
    for hook in output_embeddings._forward_pre_hooks.values():
        if isinstance(hook, functools.partial) and hook.func in (inv_hook_fn, _reverse_invertible):
            return False
    output_embeddings.register_forward_pre_hook(functools.partial(_reverse_invertible, model.base_model))
    return True


def _reverse_invertible(base_model: torch.nn.Module, module: torch.nn.Module, args: tuple) -> tuple:
    hidden_states = args[0]
    # The coupling blocks index (batch, sequence, hidden); the masked-position models of
    # xlt.tasks pass the selected positions as (positions, hidden).
    flat = hidden_states.dim() == 2
    if flat:
        hidden_states = hidden_states.unsqueeze(0)
    hidden_states = base_model.invertible_adapters_forward(hidden_states, rev=True)
    if flat:
        hidden_states = hidden_states.squeeze(0)
    return (hidden_states, *args[1:])


def add_adapter(model: PreTrainedModel, name: str, config: BnConfig) -> list[str]:
    """Add a new adapter and return the names of the parameters it added."""
    before = {parameter_name for parameter_name, _ in model.named_parameters()}
    model.add_adapter(name, config=config)
    return [parameter_name for parameter_name, _ in model.named_parameters() if parameter_name not in before]


def count_entries(model: PreTrainedModel, names: Iterable[str]) -> int:
    """Return the number of entries of the named parameters."""
    parameters = dict(model.named_parameters())
    return sum(parameters[name].numel() for name in names)


def count_maskable_entries(
    model: PreTrainedModel, head_parameter_names: list[str], sft_args: SftArguments
) -> int:
    """Return the number of entries an SFT of `model` could select from, under `sft_args`.

    This is the denominator of an SFT's budget proportion, so that an adapter's size can be
    compared with K. It applies the freeze and untie options of `sft_args` to `model` in place,
    which changes nothing an adapter trains: the base model is frozen for adapter training, and
    untying copies the output embeddings without changing their values.
    """
    apply_freeze_options(model, sft_args)
    return count_entries(model, maskable_parameter_names(model, exclude=head_parameter_names))


def set_trainable(model: PreTrainedModel, trainable: Iterable[str]) -> int:
    """Let exactly the named parameters train and freeze the rest; return the trainable entries."""
    trainable = set(trainable)
    missing = sorted(trainable - {name for name, _ in model.named_parameters()})
    if missing:
        raise ValueError(f"{type(model).__name__} has no parameters named {', '.join(missing)}")
    total = 0
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in trainable)
        if name in trainable:
            total += parameter.numel()
    return total


def head_state_dict(model: PreTrainedModel, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Return detached CPU copies of the named parameters, each with its own storage.

    Copies keep tensors that share memory in the model (a tied bias, for example) saveable with
    safetensors, which rejects shared storage.
    """
    parameters = dict(model.named_parameters())
    return {name: parameters[name].detach().to("cpu", copy=True).contiguous() for name in names}


def load_head(model: PreTrainedModel, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy head weights into the model's parameters of the same names and shapes."""
    parameters = dict(model.named_parameters())
    missing = sorted(set(state) - set(parameters))
    if missing:
        raise ValueError(
            f"{source}: the {type(model).__name__} model has no parameters {', '.join(missing)}; "
            "was the adapter trained for another task or label set?"
        )
    with torch.no_grad():
        for name, value in state.items():
            if parameters[name].shape != value.shape:
                raise ValueError(
                    f"{source}: head parameter {name} has shape {tuple(value.shape)}, but the model "
                    f"expects {tuple(parameters[name].shape)}; was it trained with another label set?"
                )
            parameters[name].copy_(value)


def activate(model: PreTrainedModel, language: str | None, task: str | None) -> None:
    """Activate `Stack(language, task)`, or the one adapter given when the other is None."""
    if language is not None and task is not None:
        setup = Stack(language, task)
    elif language is not None or task is not None:
        setup = language if language is not None else task
    else:
        raise ValueError("activate needs a language adapter, a task adapter or both")
    model.set_active_adapters(setup)
    logger.info("Active adapters: %s", setup)
