import logging

import pytest
import torch
from tiny_models import tiny_bert_config
from sft_testing import parameters_snapshot, random_sft
from transformers import BertForMaskedLM, BertForTokenClassification

from sft import SFT, BaseModelMismatchError, RevertOrderError, SftConfig, SparseDiff
from sft.application import applied_sfts
from sft.fingerprint import canonical_model_name, same_base_model

HEAD = ("cls.predictions.bias", "cls.predictions.transform.dense.weight")


def assert_parameters_identical(model, snapshot):
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, snapshot[name]), name


def test_apply_then_revert_is_bit_identical(tiny_mlm_model):
    before = parameters_snapshot(tiny_mlm_model)
    sft = random_sft(tiny_mlm_model, density=0.2, seed=0, with_abs=HEAD)
    sft.apply(tiny_mlm_model)
    changed = [
        name for name, p in tiny_mlm_model.named_parameters() if not torch.equal(p, before[name])
    ]
    assert set(HEAD) <= set(changed)
    assert len(changed) > len(HEAD)
    sft.revert(tiny_mlm_model)
    assert_parameters_identical(tiny_mlm_model, before)
    assert applied_sfts(tiny_mlm_model) == []


def test_apply_adds_diffs_and_sets_abs(tiny_mlm_model):
    name = "bert.encoder.layer.0.attention.self.query.weight"
    before = tiny_mlm_model.get_parameter(name).detach().clone()
    diff = SparseDiff(before.shape, torch.tensor([0, 5, 100]), torch.tensor([1.0, -2.0, 0.5]))
    head = torch.full_like(tiny_mlm_model.get_parameter("cls.predictions.bias"), 3.0)
    SFT(diffs={name: diff}, abs={"cls.predictions.bias": head}).apply(tiny_mlm_model)
    assert torch.equal(tiny_mlm_model.get_parameter(name), before + diff.to_dense())
    assert torch.equal(tiny_mlm_model.get_parameter("cls.predictions.bias"), head)


def test_nested_applications_revert_in_reverse_order(tiny_mlm_model):
    before = parameters_snapshot(tiny_mlm_model)
    language = random_sft(tiny_mlm_model, density=0.2, seed=0)
    task = random_sft(tiny_mlm_model, density=0.2, seed=1, with_abs=HEAD)
    language.apply(tiny_mlm_model)
    task.apply(tiny_mlm_model)
    with pytest.raises(RevertOrderError, match="reverse order of application"):
        language.revert(tiny_mlm_model)
    task.revert(tiny_mlm_model)
    language.revert(tiny_mlm_model)
    assert_parameters_identical(tiny_mlm_model, before)


def test_revert_of_unapplied_sft_fails(tiny_mlm_model):
    with pytest.raises(RevertOrderError, match="not applied"):
        random_sft(tiny_mlm_model, density=0.1, seed=0).revert(tiny_mlm_model)


def test_applied_context_manager_reverts(tiny_mlm_model):
    before = parameters_snapshot(tiny_mlm_model)
    sft = random_sft(tiny_mlm_model, density=0.2, seed=0)
    with sft.applied(tiny_mlm_model):
        assert applied_sfts(tiny_mlm_model) == [sft]
    assert_parameters_identical(tiny_mlm_model, before)


def test_bfloat16_model_reverts_exactly(tiny_mlm_model):
    model = tiny_mlm_model.to(torch.bfloat16)
    before = parameters_snapshot(model)
    sft = random_sft(model, density=0.3, seed=0)
    sft.apply(model)
    sft.revert(model)
    assert_parameters_identical(model, before)


def test_language_sft_on_task_model(tiny_mlm_model, tiny_token_classification_model):
    language = random_sft(tiny_mlm_model, density=0.1, seed=0, with_abs=HEAD)
    language.diffs = {
        name: diff for name, diff in language.diffs.items() if name.startswith("bert.")
    }
    with pytest.raises(ValueError, match="no parameter 'cls.predictions.bias'.*with_abs=False"):
        language.apply(tiny_token_classification_model)
    before = parameters_snapshot(tiny_token_classification_model)
    language.apply(tiny_token_classification_model, with_abs=False)
    language.revert(tiny_token_classification_model)
    assert_parameters_identical(tiny_token_classification_model, before)


def test_missing_parameter_leaves_model_unchanged(tiny_mlm_model):
    sft = random_sft(tiny_mlm_model, density=0.2, seed=0)
    sft.diffs["bert.pooler.dense.weight"] = SparseDiff.empty((32, 32))
    sft.name_or_path = "sfts/lang-xx"
    before = parameters_snapshot(tiny_mlm_model)
    with pytest.raises(
        ValueError,
        match=r"SFT 'sfts/lang-xx'.*no parameter 'bert\.pooler\.dense\.weight'.*\(32, 32\)",
    ):
        sft.apply(tiny_mlm_model)
    assert_parameters_identical(tiny_mlm_model, before)
    assert applied_sfts(tiny_mlm_model) == []


def test_shape_mismatch_names_both_shapes(tiny_mlm_model):
    other = BertForMaskedLM(tiny_bert_config(vocab_size=100))
    sft = random_sft(other, density=0.1, seed=0)
    sft.name_or_path = "sfts/small-vocab"
    with pytest.raises(
        ValueError,
        match=r"SFT 'sfts/small-vocab'.*'bert\.embeddings\.word_embeddings\.weight' has shape \(128, 32\) in the model but shape \(100, 32\)",
    ):
        sft.apply(tiny_mlm_model)


def test_tied_parameters_are_not_changed_twice(tiny_mlm_model):
    shape = tiny_mlm_model.get_parameter("bert.embeddings.word_embeddings.weight").shape
    diff = SparseDiff(shape, torch.tensor([0]), torch.tensor([1.0]))
    sft = SFT(
        diffs={
            "bert.embeddings.word_embeddings.weight": diff,
            "cls.predictions.decoder.weight": diff,
        }
    )
    with pytest.raises(ValueError, match="same \\(tied\\) tensor"):
        sft.apply(tiny_mlm_model)


def make_named_sft(model, base_name):
    sft = random_sft(model, density=0.1, seed=0)
    sft.config = SftConfig(base_model_name_or_path=base_name)
    return sft


def test_base_model_mismatch_policies(tiny_mlm_model, caplog):
    tiny_mlm_model.config._name_or_path = "/models/bert-base-multilingual-cased"
    sft = make_named_sft(tiny_mlm_model, "xlm-roberta-base")
    with pytest.raises(BaseModelMismatchError, match="xlm-roberta-base"):
        sft.apply(tiny_mlm_model, on_mismatch="raise")
    with caplog.at_level(logging.WARNING, logger="sft"):
        sft.apply(tiny_mlm_model, on_mismatch="warn")
    assert "made for base model 'xlm-roberta-base'" in caplog.text
    sft.revert(tiny_mlm_model)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sft"):
        sft.apply(tiny_mlm_model, on_mismatch="ignore")
    assert caplog.text == ""
    sft.revert(tiny_mlm_model)
    with pytest.raises(ValueError, match="on_mismatch must be one of"):
        sft.apply(tiny_mlm_model, on_mismatch="skip")


def test_same_model_other_path_accepted(tiny_mlm_model):
    tiny_mlm_model.config._name_or_path = "/scratch/copy/bert-base-multilingual-cased/"
    sft = make_named_sft(tiny_mlm_model, "google-bert/bert-base-multilingual-cased")
    sft.apply(tiny_mlm_model, on_mismatch="raise")
    sft.revert(tiny_mlm_model)


def test_fingerprint_mismatch_is_reported(tiny_mlm_model):
    sft = random_sft(tiny_mlm_model, density=0.1, seed=0)
    sft.config = SftConfig(base_model_fingerprint="0" * 64)
    with pytest.raises(BaseModelMismatchError, match="fingerprint"):
        sft.apply(tiny_mlm_model, on_mismatch="raise")


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("bert-base-multilingual-cased", "google-bert/bert-base-multilingual-cased", True),
        ("/data/Bert-Base-Multilingual-Cased/", "bert-base-multilingual-cased", True),
        (
            "/cache/hub/models--google-bert--bert-base-multilingual-cased/snapshots/abc123",
            "bert-base-multilingual-cased",
            True,
        ),
        ("xlm-roberta-base", "bert-base-multilingual-cased", False),
        (None, "bert-base-multilingual-cased", None),
        ("", "bert-base-multilingual-cased", None),
    ],
)
def test_same_base_model(first, second, expected):
    assert same_base_model(first, second) is expected


def test_canonical_model_name_of_windows_path():
    assert canonical_model_name("C:\\models\\mbert\\") == "mbert"


def test_apply_to_task_model_with_task_head(tiny_token_classification_model):
    model = tiny_token_classification_model
    before = parameters_snapshot(model)
    task = random_sft(model, density=0.1, seed=0, with_abs=("classifier.weight", "classifier.bias"))
    task.apply(model)
    assert torch.equal(model.classifier.weight, task.abs["classifier.weight"])
    task.revert(model)
    assert_parameters_identical(model, before)
    assert isinstance(model, BertForTokenClassification)


def test_apply_to_non_contiguous_parameter():
    model = torch.nn.Linear(4, 3)
    with torch.no_grad():
        model.weight = torch.nn.Parameter(torch.arange(12.0).reshape(4, 3).t())
    assert not model.weight.is_contiguous()
    before = model.weight.detach().clone()
    diff = SparseDiff((3, 4), torch.tensor([1, 6]), torch.tensor([10.0, 20.0]))
    sft = SFT(diffs={"weight": diff})
    sft.apply(model)
    assert torch.equal(model.weight, before + diff.to_dense())
    sft.revert(model)
    assert torch.equal(model.weight, before)
