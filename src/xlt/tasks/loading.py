"""Loading a base checkpoint into a task's model class and finding the newly initialised weights."""

from __future__ import annotations

import logging
from typing import Any

from transformers import PreTrainedModel

from .base import LoadedModel

logger = logging.getLogger(__name__)


def load_with_new_parameters(
    model_class: Any, model_name_or_path: str, **from_pretrained_kwargs
) -> LoadedModel:
    """Load `model_name_or_path` with `model_class.from_pretrained` and list the new parameters.

    A parameter is new when the checkpoint has no value for it (the loading info's missing keys),
    for example a classifier, a parser head or a pooler that the base checkpoint lacks. Buffers
    are not parameters and are left out. A tied parameter (such as an output embedding tied to
    the input embedding) gets its value through the tie, so it is not new.
    """
    model, loading_info = model_class.from_pretrained(
        model_name_or_path, output_loading_info=True, **from_pretrained_kwargs
    )
    parameter_names = {name for name, _ in model.named_parameters()}
    new_parameter_names = sorted(
        name for name in loading_info.get("missing_keys", ()) if name in parameter_names
    )
    if new_parameter_names:
        logger.info(
            "%d parameters of %s are newly initialised (task head): %s",
            len(new_parameter_names), type(model).__name__, ", ".join(new_parameter_names),
        )
    return LoadedModel(model=model, new_parameter_names=new_parameter_names)


def base_model_parameter_names(model: PreTrainedModel) -> list[str]:
    """Return the names of the parameters under the model's base model (the encoder)."""
    prefix = model.base_model_prefix + "."
    return [name for name, _ in model.named_parameters() if name.startswith(prefix)]
