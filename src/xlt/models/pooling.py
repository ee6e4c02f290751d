"""Sentence embeddings as e5 computes them: mean of the last hidden states, L2-normalised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, PreTrainedModel

# Model types whose base model takes `add_pooling_layer`; the pooler is unused here.
_POOLER_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")


def load_encoder(model_dir: str | Path) -> PreTrainedModel:
    """Load the base model of a folder or hub id in eval mode, without a pooler where possible."""
    config = AutoConfig.from_pretrained(model_dir)
    kwargs = {"add_pooling_layer": False} if config.model_type in _POOLER_MODEL_TYPES else {}
    return AutoModel.from_pretrained(model_dir, **kwargs).eval()


@torch.no_grad()
def mean_pooled_embeddings(model, tokenizer, texts: list[str], batch_size: int = 16) -> np.ndarray:
    """Mean-pool the last hidden states over real tokens and L2-normalise each row."""
    rows = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True,
                          return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
        rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(rows)
