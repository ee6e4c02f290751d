"""MAD-X building blocks on the tiny random BERT: configs, counts, the invertible inverse, saving."""

import json

import pytest
import torch
from adapters import SeqBnConfig, SeqBnInvConfig
from tiny_models import tiny_bert_config
from transformers import BertForMaskedLM, BertForTokenClassification, BertModel

from sft import SftArguments, maskable_parameter_names
from xlt.madx import (
    AdapterModule,
    MadxConfig,
    MadxFormatError,
    activate,
    add_adapter,
    build_adapter_config,
    init_adapters,
    load_adapter_module,
    read_adapter_config,
    set_trainable,
)
from xlt.madx.artifact import ADAPTER_WEIGHTS_NAME, HEAD_WEIGHTS_NAME, MADX_CONFIG_NAME
from xlt.madx.budget import adapter_budget, format_budgets
from xlt.madx.budget import main as budget_main
from xlt.madx.modules import add_reverse_invertible_hook, count_entries, count_maskable_entries
from xlt.tasks.masked_lm_model import masked_positions_class

HIDDEN = 32
LAYERS = 2


def bottleneck_entries(bottleneck: int) -> int:
    """Entries of one sequential bottleneck adapter per layer: down and up projections with biases."""
    return LAYERS * (2 * HIDDEN * bottleneck + bottleneck + HIDDEN)


def nice_entries(inv_reduction_factor: float) -> int:
    """Entries of a NICE coupling block on the hidden size: two two-layer networks on each half."""
    half = HIDDEN // 2
    inner = int(half // inv_reduction_factor)
    return 2 * (half * inner + inner + inner * half + half)


def masked_lm_model():
    torch.manual_seed(0)
    return masked_positions_class(BertForMaskedLM)(tiny_bert_config()).eval()


def tagger():
    torch.manual_seed(0)
    return BertForTokenClassification(tiny_bert_config(num_labels=5)).eval()


def perturb(model, names):
    """Move the named parameters away from their initial values, as training would."""
    parameters = dict(model.named_parameters())
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name in names:
            parameters[name].add_(torch.randn(parameters[name].shape, generator=generator) * 0.1)


def madx_config(kind="task", **overrides):
    values = {
        "kind": kind,
        "task": "pos" if kind == "task" else "mlm",
        "language": "en",
        "adapter_name": "pos" if kind == "task" else "en",
        "adapter_config": {},
        "reduction_factor": 2.0,
        "num_adapter_parameters": 10,
    }
    values.update(overrides)
    return MadxConfig(**values)


# ------------------------------------------------------------------ configurations and counts


def test_language_adapter_config_is_pfeiffer_inv():
    config = build_adapter_config("language", 4.0, 2.0)
    assert isinstance(config, SeqBnInvConfig)
    assert config.reduction_factor == 4.0
    assert config.inv_adapter == "nice"
    assert config.inv_adapter_reduction_factor == 2.0


def test_task_adapter_config_is_pfeiffer():
    config = build_adapter_config("task", 8.0, 2.0)
    assert isinstance(config, SeqBnConfig)
    assert not isinstance(config, SeqBnInvConfig)
    assert config.reduction_factor == 8.0


def test_unknown_adapter_kind_is_rejected():
    with pytest.raises(ValueError, match="'language' or 'task'"):
        build_adapter_config("domain", 2.0, 2.0)


@pytest.mark.parametrize(("reduction_factor", "bottleneck"), [(16.0, 2), (2.0, 16), (0.5, 64), (0.7, 45)])
def test_task_adapter_parameter_count(reduction_factor, bottleneck):
    model = tagger()
    init_adapters(model)
    names = add_adapter(model, "pos", build_adapter_config("task", reduction_factor, 2.0))
    assert all(".adapters.pos." in name for name in names)
    assert count_entries(model, names) == bottleneck_entries(bottleneck)


def test_language_adapter_count_includes_invertible_adapter():
    model = masked_lm_model()
    init_adapters(model)
    names = add_adapter(model, "en", build_adapter_config("language", 0.7, 2.0))
    invertible = [name for name in names if "invertible_adapters.en." in name]
    assert invertible
    assert count_entries(model, invertible) == nice_entries(2.0)
    assert count_entries(model, names) == bottleneck_entries(45) + nice_entries(2.0)


def test_budget_matches_training_counts():
    budget = adapter_budget(tiny_bert_config(), 0.7, 2.0)
    assert budget.task_adapter_entries == bottleneck_entries(45)
    assert budget.language_adapter_entries == bottleneck_entries(45) + nice_entries(2.0)
    encoder = BertModel(tiny_bert_config(), add_pooling_layer=False)
    assert budget.maskable_entries == count_entries(encoder, maskable_parameter_names(encoder))
    assert budget.task_proportion == pytest.approx(budget.task_adapter_entries / budget.maskable_entries)


def test_budget_freeze_layer_norm_shrinks_maskable():
    plain = adapter_budget(tiny_bert_config(), 2.0)
    frozen = adapter_budget(tiny_bert_config(), 2.0, freeze_layer_norm=True)
    # One embedding layer norm and two per layer, each with a weight and a bias of HIDDEN entries.
    assert plain.maskable_entries - frozen.maskable_entries == (1 + 2 * LAYERS) * 2 * HIDDEN


def test_budget_command_prints_table(tmp_path, capsys):
    tiny_bert_config().save_pretrained(tmp_path)
    assert budget_main(["--model", str(tmp_path), "--reduction_factors", "2", "0.5"]) == 0
    output = capsys.readouterr().out
    assert f"| 2 | {bottleneck_entries(16):,} |" in output
    assert f"| 0.5 | {bottleneck_entries(64):,} |" in output
    assert "Maskable entries" in output


def test_format_budgets_lists_every_factor():
    budgets = [adapter_budget(tiny_bert_config(), factor) for factor in (4.0, 1.0)]
    rows = [line for line in format_budgets(budgets).splitlines() if line.startswith("| ") and "factor" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["4", "1"]


def test_maskable_entries_follow_sft_freeze_options():
    model = tagger()
    head = ["classifier.weight", "classifier.bias"]
    all_entries = count_maskable_entries(model, head, SftArguments())
    frozen = count_maskable_entries(tagger(), head, SftArguments(freeze_layer_norm=True))
    assert all_entries == sum(p.numel() for n, p in model.named_parameters() if n.startswith("bert."))
    assert all_entries - frozen == (1 + 2 * LAYERS) * 2 * HIDDEN


# ------------------------------------------------------------------ training setup


def test_set_trainable_freezes_everything_else():
    model = tagger()
    init_adapters(model)
    names = add_adapter(model, "pos", build_adapter_config("task", 2.0, 2.0))
    model.train_adapter("pos")
    trainable = names + ["classifier.weight", "classifier.bias"]
    total = set_trainable(model, trainable)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(trainable)
    assert total == count_entries(model, trainable)


def test_set_trainable_rejects_unknown_names():
    with pytest.raises(ValueError, match="no parameters named nope"):
        set_trainable(tagger(), ["nope"])


def test_activate_builds_stack():
    model = tagger()
    init_adapters(model)
    add_adapter(model, "en", build_adapter_config("language", 2.0, 2.0))
    add_adapter(model, "pos", build_adapter_config("task", 2.0, 2.0))
    activate(model, "en", "pos")
    assert str(model.active_adapters) == "Stack[en, pos]"
    activate(model, None, "pos")
    assert str(model.active_adapters) == "Stack[pos]"
    with pytest.raises(ValueError, match="needs a language adapter"):
        activate(model, None, None)


# ------------------------------------------------------------------ invertible adapters


def test_reverse_hook_added_once():
    model = masked_lm_model()
    init_adapters(model)
    assert not add_reverse_invertible_hook(model), "init_adapters already added the hook"
    assert len(model.get_output_embeddings()._forward_pre_hooks) == 1


def test_task_models_get_no_reverse_hook():
    model = tagger()
    init_adapters(model)
    assert model.get_output_embeddings() is None
    assert not add_reverse_invertible_hook(model)


def test_invertible_inverse_runs_before_output_embeddings():
    model = masked_lm_model()
    init_adapters(model)
    names = add_adapter(model, "en", build_adapter_config("language", 2.0, 2.0))
    perturb(model, names)
    activate(model, "en", None)
    input_ids = torch.randint(5, 100, (2, 6))

    with torch.no_grad():
        logits = model(input_ids=input_ids).logits
        hidden = model.bert(input_ids=input_ids).last_hidden_state
        transformed = model.cls.predictions.transform(hidden)
        inverted = model.bert.invertible_adapters["en"](transformed, rev=True)
        # F.linear, because calling the decoder module would run the hook under test.
        decoder = model.cls.predictions.decoder
        expected = torch.nn.functional.linear(inverted, decoder.weight, decoder.bias)
        without_inverse = torch.nn.functional.linear(transformed, decoder.weight, decoder.bias)

    torch.testing.assert_close(logits, expected)
    assert not torch.allclose(logits, without_inverse)


def test_invertible_inverse_handles_masked_positions():
    model = masked_lm_model()
    init_adapters(model)
    perturb(model, add_adapter(model, "en", build_adapter_config("language", 2.0, 2.0)))
    activate(model, "en", None)
    input_ids = torch.randint(5, 100, (2, 6))
    labels = torch.full_like(input_ids, -100)
    labels[0, 2] = input_ids[0, 2]
    labels[1, 4] = input_ids[1, 4]

    with torch.no_grad():
        selected = model(input_ids=input_ids, labels=labels).logits
        everywhere = model(input_ids=input_ids).logits

    assert selected.shape == (2, model.config.vocab_size)
    torch.testing.assert_close(selected, everywhere[labels != -100])


def test_nice_block_inverts_exactly():
    model = masked_lm_model()
    init_adapters(model)
    perturb(model, add_adapter(model, "en", build_adapter_config("language", 2.0, 2.0)))
    block = model.bert.invertible_adapters["en"]
    hidden = torch.randn(2, 5, HIDDEN)
    with torch.no_grad():
        torch.testing.assert_close(block(block(hidden), rev=True), hidden)


# ------------------------------------------------------------------ saving and loading


def save_task_adapter(folder):
    model = tagger()
    init_adapters(model)
    names = add_adapter(model, "pos", build_adapter_config("task", 2.0, 2.0))
    head = ["classifier.weight", "classifier.bias"]
    perturb(model, names + head)
    config = madx_config(
        adapter_config=build_adapter_config("task", 2.0, 2.0).to_dict(),
        num_adapter_parameters=count_entries(model, names),
        head_parameter_names=head,
        num_head_parameters=count_entries(model, head),
        training_arguments={"task": {"task": "pos"}},
    )
    AdapterModule(model=model, config=config).save_pretrained(folder)
    return model, names


def test_save_and_load_round_trip(tmp_path):
    model, names = save_task_adapter(tmp_path / "pos")
    assert {MADX_CONFIG_NAME, HEAD_WEIGHTS_NAME, ADAPTER_WEIGHTS_NAME} <= {p.name for p in (tmp_path / "pos").iterdir()}
    assert not [p for p in (tmp_path / "pos").iterdir() if p.name.startswith(".")], "staging folder left behind"

    fresh = tagger()
    torch.manual_seed(5)
    fresh.classifier.reset_parameters()
    init_adapters(fresh)
    config = load_adapter_module(fresh, tmp_path / "pos", load_as="pos", expected_kind="task", with_head=True)
    activate(fresh, None, "pos")
    activate(model, None, "pos")

    assert config.num_adapter_parameters == count_entries(model, names)
    saved = dict(model.named_parameters())
    for name, parameter in fresh.named_parameters():
        torch.testing.assert_close(parameter, saved[name], msg=name)
    input_ids = torch.randint(5, 100, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(fresh(input_ids=input_ids).logits, model(input_ids=input_ids).logits)


def test_load_without_head_keeps_model_head(tmp_path):
    save_task_adapter(tmp_path / "pos")
    fresh = tagger()
    before = fresh.classifier.weight.detach().clone()
    init_adapters(fresh)
    load_adapter_module(fresh, tmp_path / "pos", load_as="pos", expected_kind="task", with_head=False)
    torch.testing.assert_close(fresh.classifier.weight, before)


def test_load_rejects_wrong_kind(tmp_path):
    save_task_adapter(tmp_path / "pos")
    model = tagger()
    init_adapters(model)
    with pytest.raises(MadxFormatError, match="contains a task adapter"):
        load_adapter_module(model, tmp_path / "pos", load_as="xx", expected_kind="language", with_head=False)


def test_load_rejects_head_of_other_label_set(tmp_path):
    save_task_adapter(tmp_path / "pos")
    torch.manual_seed(0)
    model = BertForTokenClassification(tiny_bert_config(num_labels=3))
    init_adapters(model)
    with pytest.raises(ValueError, match="another label set"):
        load_adapter_module(model, tmp_path / "pos", load_as="pos", expected_kind="task", with_head=True)


def test_read_config_names_missing_files(tmp_path):
    save_task_adapter(tmp_path / "pos")
    (tmp_path / "pos" / HEAD_WEIGHTS_NAME).unlink()
    with pytest.raises(MadxFormatError, match=f"{HEAD_WEIGHTS_NAME} is missing"):
        read_adapter_config(tmp_path / "pos")


def test_read_config_of_sft_folder_fails_clearly(tmp_path):
    (tmp_path / "sft").mkdir()
    with pytest.raises(MadxFormatError, match="contains no adapter written by"):
        read_adapter_config(tmp_path / "sft")


# ------------------------------------------------------------------ the config file


def test_config_round_trip(tmp_path):
    config = madx_config(head_parameter_names=["classifier.weight"], num_head_parameters=4, stacked_on="en")
    config.save(tmp_path / MADX_CONFIG_NAME)
    assert MadxConfig.from_json_file(tmp_path / MADX_CONFIG_NAME) == config
    text = (tmp_path / MADX_CONFIG_NAME).read_text()
    assert list(json.loads(text)) == sorted(json.loads(text))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "domain"}, "kind must be one of language, task"),
        ({"task": "mlm"}, "does not match task='mlm'"),
        ({"language": ""}, "language must be a non-empty string"),
        ({"reduction_factor": 0}, "reduction_factor must be a positive number"),
        ({"num_adapter_parameters": -1}, "num_adapter_parameters must be a non-negative integer"),
        ({"head_parameter_names": "classifier.weight"}, "head_parameter_names must be a list"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises((ValueError, TypeError), match=message):
        madx_config(**overrides)


def test_newer_format_version_is_rejected(tmp_path):
    path = tmp_path / MADX_CONFIG_NAME
    values = json.loads(madx_config().to_json_string())
    values["format_version"] = 99
    path.write_text(json.dumps(values))
    with pytest.raises(MadxFormatError, match="format_version 99 is newer"):
        MadxConfig.from_json_file(path)


def test_invalid_config_names_the_file(tmp_path):
    path = tmp_path / MADX_CONFIG_NAME
    path.write_text('{"kind": "language"')
    with pytest.raises(MadxFormatError, match=f"{MADX_CONFIG_NAME}: invalid JSON"):
        MadxConfig.from_json_file(path)
