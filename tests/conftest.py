"""Shared fixtures: tiny random models, a tiny tokenizer and the offline data mirror."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import BertForMaskedLM, BertForTokenClassification

from tiny_models import REPO_ROOT, build_tiny_tokenizer, tiny_bert_config

# Sibling folder of the checkout holding the offline data mirror; XLT_DATA_MIRROR overrides it.
DEFAULT_DATA_MIRROR = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def tiny_config():
    return tiny_bert_config()


@pytest.fixture
def tiny_mlm_model(tiny_config) -> BertForMaskedLM:
    torch.manual_seed(0)
    return BertForMaskedLM(tiny_config).eval()


@pytest.fixture
def tiny_token_classification_model(tiny_config) -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(tiny_bert_config(num_labels=5)).eval()


@pytest.fixture
def tiny_model_dir(tmp_path) -> Path:
    """A local folder with a tiny random BertForMaskedLM and its tokenizer, loadable by name."""
    folder = tmp_path / "tiny-bert"
    tokenizer = build_tiny_tokenizer(folder)
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_bert_config(vocab_size=len(tokenizer)))
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The offline data mirror; tests that use it skip with a reason when it is absent."""
    path = Path(os.environ.get("XLT_DATA_MIRROR", DEFAULT_DATA_MIRROR))
    if not (path / "MANIFEST.tsv").is_file():
        pytest.skip(
            f"offline data mirror not found at {path} (no MANIFEST.tsv); "
            "set XLT_DATA_MIRROR to a copy of the mirror to run this test"
        )
    return path
