"""Masked-LM models that compute vocabulary logits only at the masked positions.

With a 250,002-piece vocabulary the output projection dominates the cost of a masked-LM step when
it runs at every position. Only about 15% of positions carry a label, so the classes built here
gather those positions before the prediction head. They subclass the Hugging Face masked-LM class
of the checkpoint without adding or renaming parameters, so an SFT trained with them applies to
the standard classes (and to token-classification models sharing the encoder) unchanged.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from transformers import AutoConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING

from .base import IGNORE_INDEX

# Attribute holding the prediction head in the supported masked-LM classes: "cls" in BERT,
# "lm_head" in RoBERTa and XLM-R.
MLM_HEAD_ATTRIBUTES: tuple[str, ...] = ("cls", "lm_head")


class MaskedPositionsMixin:
    """Forward pass that runs the prediction head on labelled (masked) positions only.

    With `labels`, `logits` has shape (number of labelled positions, vocabulary size), in
    row-major order of the labelled positions, so `labels[labels != -100]` lines up with it.
    Without `labels`, the forward pass of the parent class runs and returns logits everywhere.
    """

    # Average the loss per batch; the Trainer must not pass num_items_in_batch.
    accepts_loss_kwargs = False

    def prediction_head(self) -> torch.nn.Module:
        for attribute in MLM_HEAD_ATTRIBUTES:
            head = getattr(self, attribute, None)
            if head is not None:
                return head
        raise TypeError(
            f"{type(self).__name__} has none of the prediction-head attributes "
            f"{', '.join(MLM_HEAD_ATTRIBUTES)}; masked-position logits support BERT, RoBERTa and "
            "XLM-R style masked-LM classes"
        )

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ):
        if labels is None:
            return super().forward(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                inputs_embeds=inputs_embeds,
                return_dict=return_dict,
            )

        encoder = getattr(self, self.base_model_prefix)
        encoder_outputs = encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
        )
        selected = labels != IGNORE_INDEX
        logits = self.prediction_head()(encoder_outputs.last_hidden_state[selected])
        target = labels[selected]
        if target.numel():
            loss = F.cross_entropy(logits.float(), target)
        else:
            # No labelled position in this batch: a zero loss that keeps the graph connected.
            loss = logits.sum() * 0.0
        if return_dict is False:
            return (loss, logits)
        return MaskedLMOutput(loss=loss, logits=logits)


@functools.cache
def masked_positions_class(masked_lm_class: type[PreTrainedModel]) -> type[PreTrainedModel]:
    """Return a subclass of `masked_lm_class` whose forward pass uses `MaskedPositionsMixin`."""
    return type(
        f"MaskedPositions{masked_lm_class.__name__}",
        (MaskedPositionsMixin, masked_lm_class),
        {"__doc__": f"{masked_lm_class.__name__} computing logits at masked positions only."},
    )


def masked_positions_class_for(model_name_or_path: str, **config_kwargs) -> type[PreTrainedModel]:
    """Return the masked-positions model class for the architecture of a checkpoint."""
    config = AutoConfig.from_pretrained(model_name_or_path, **config_kwargs)
    try:
        masked_lm_class = MODEL_FOR_MASKED_LM_MAPPING[type(config)]
    except KeyError:
        raise ValueError(
            f"{model_name_or_path}: model type {config.model_type!r} has no masked-LM class in "
            "transformers"
        ) from None
    return masked_positions_class(masked_lm_class)
