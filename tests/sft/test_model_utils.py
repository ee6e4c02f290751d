import pytest
import torch
from tiny_models import tiny_bert_config
from transformers import BertForSequenceClassification, BertModel

from sft import SftArguments, apply_freeze_options, maskable_parameter_names


def test_maskable_parameters_are_base_model_parameters(tiny_mlm_model):
    names = maskable_parameter_names(tiny_mlm_model)
    assert names[0] == "bert.embeddings.word_embeddings.weight"
    assert all(name.startswith("bert.") for name in names)
    # BertForMaskedLM ties the decoder to the word embeddings, so the entries are counted once.
    body = sum(
        p.numel() for name, p in tiny_mlm_model.named_parameters() if name.startswith("bert.")
    )
    assert sum(tiny_mlm_model.get_parameter(name).numel() for name in names) == body


def test_frozen_parameters_are_not_maskable(tiny_mlm_model):
    tiny_mlm_model.bert.embeddings.position_embeddings.weight.requires_grad_(False)
    assert "bert.embeddings.position_embeddings.weight" not in maskable_parameter_names(
        tiny_mlm_model
    )


def test_exclusions_by_name_and_prefix():
    model = BertForSequenceClassification(tiny_bert_config(num_labels=3))
    names = maskable_parameter_names(
        model, exclude=["bert.pooler", "bert.embeddings.token_type_embeddings.weight"]
    )
    assert not any(name.startswith("bert.pooler.") for name in names)
    assert "bert.embeddings.token_type_embeddings.weight" not in names
    assert "classifier.weight" not in names


def test_unknown_exclusion_is_rejected(tiny_mlm_model):
    with pytest.raises(ValueError, match=r"\['bert.pooler'\] match no parameter"):
        maskable_parameter_names(tiny_mlm_model, exclude=["bert.pooler"])
    with pytest.raises(TypeError, match="list of names"):
        maskable_parameter_names(tiny_mlm_model, exclude="bert.pooler")


def test_bare_base_model_is_fully_maskable():
    model = BertModel(tiny_bert_config())
    assert maskable_parameter_names(model) == [name for name, _ in model.named_parameters()]


def test_freeze_layer_norm_and_embeddings(tiny_mlm_model):
    frozen = apply_freeze_options(
        tiny_mlm_model, SftArguments(freeze_layer_norm=True, freeze_embeddings=True)
    )
    assert "bert.embeddings.word_embeddings.weight" in frozen
    assert "bert.encoder.layer.0.output.LayerNorm.weight" in frozen
    assert not tiny_mlm_model.bert.embeddings.word_embeddings.weight.requires_grad
    assert all(
        not p.requires_grad for name, p in tiny_mlm_model.named_parameters() if "LayerNorm" in name
    )
    assert tiny_mlm_model.bert.encoder.layer[0].output.dense.weight.requires_grad


def test_freeze_decoder_unties_and_freezes_output_embeddings(tiny_mlm_model):
    decoder = tiny_mlm_model.get_output_embeddings()
    assert decoder.weight is tiny_mlm_model.get_input_embeddings().weight
    apply_freeze_options(tiny_mlm_model, SftArguments(freeze_decoder=True))
    assert decoder.weight is not tiny_mlm_model.get_input_embeddings().weight
    assert torch.equal(decoder.weight, tiny_mlm_model.get_input_embeddings().weight)
    assert not decoder.weight.requires_grad
    assert tiny_mlm_model.get_input_embeddings().weight.requires_grad
    assert tiny_mlm_model.config.tie_word_embeddings is False


def test_untie_embeddings_keeps_both_trainable(tiny_mlm_model):
    apply_freeze_options(tiny_mlm_model, SftArguments(untie_embeddings=True))
    names = [name for name, p in tiny_mlm_model.named_parameters() if p.requires_grad]
    assert "cls.predictions.decoder.weight" in names
    assert "bert.embeddings.word_embeddings.weight" in names


def test_untie_without_output_embeddings_is_rejected(tiny_token_classification_model):
    with pytest.raises(ValueError, match="has no output embeddings"):
        apply_freeze_options(tiny_token_classification_model, SftArguments(untie_embeddings=True))
