"""`xlt-train --sources`: multi-source task SFTs on the tiny model and the snippet files."""

import json
from pathlib import Path

import pytest
import torch
from transformers import BertForMaskedLM

from sft import SFT, SparseDiff, maskable_parameter_names
from xlt.cli import train as train_cli
from xlt.cli.multisource import SourceSpec, parse_sources

SNIPPETS = Path(__file__).parent / "snippets"
ENGLISH = str(SNIPPETS / "tasks_en.conllu")  # 6 sentences
TARGET = str(SNIPPETS / "tasks_target.conllu")  # 3 sentences
BUDGET = 300


@pytest.fixture(autouse=True)
def offline_tracking(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


def save_language_sft(model_dir, folder, seed):
    """Save a random SFT over the maskable parameters of the tiny model, as a language SFT."""
    model = BertForMaskedLM.from_pretrained(model_dir)
    generator = torch.Generator().manual_seed(seed)
    diffs = {}
    for name in maskable_parameter_names(model):
        shape = model.get_parameter(name).shape
        keep = torch.rand(shape, generator=generator) < 0.05
        diffs[name] = SparseDiff.from_dense(torch.randn(shape, generator=generator) * 1e-2 * keep)
    SFT(diffs=diffs).save_pretrained(folder)
    return str(folder)


def train(model_dir, output_dir, sources, *extra):
    argv = [
        "--task", "pos",
        "--model_name_or_path", str(model_dir),
        "--sources", sources if isinstance(sources, str) else json.dumps(sources),
        "--output_dir", str(output_dir),
        "--max_seq_length", "24",
        "--per_device_train_batch_size", "2",
        "--per_device_eval_batch_size", "2",
        "--learning_rate", "1e-3",
        "--full_ft_max_steps_per_iteration", "3",
        "--sparse_ft_max_steps_per_iteration", "3",
        "--ft_params_num", str(BUDGET),
        "--report_to", "none",
        "--dataloader_pin_memory", "false",
        *extra,
    ]
    assert train_cli.main(argv) == 0
    return output_dir


@pytest.fixture
def sources(tiny_model_dir, tmp_path):
    return {
        "en": {
            "train_files": [ENGLISH],
            "validation_files": [ENGLISH],
            "language_sft": save_language_sft(tiny_model_dir, tmp_path / "lang-en", seed=1),
            "max_train_samples": 4,
        },
        "xx": {
            "train_files": [TARGET],
            "validation_files": [TARGET],
            "language_sft": save_language_sft(tiny_model_dir, tmp_path / "lang-xx", seed=2),
            "upsampling": 2,
            "max_eval_samples": 2,
        },
    }


def test_multisource_task_sft_is_trained(tiny_model_dir, tmp_path, sources):
    output = train(tiny_model_dir, tmp_path / "pos", sources, "--max_eval_samples", "5")

    sft = SFT.from_pretrained(output)
    assert sft.config.kind == "task"
    assert 0 < sft.num_diff_entries <= BUDGET
    assert [source["language"] for source in sft.config.training_arguments["sources"]] == ["en", "xx"]

    metrics = json.loads((output / "train_metrics.json").read_text())
    assert metrics["num_train_records"] == 4 + 3
    assert metrics["sources"]["en"]["num_train_records"] == 4
    assert metrics["sources"]["en"]["num_validation_records"] == 5
    assert metrics["sources"]["xx"]["num_validation_records"] == 2
    assert metrics["sources"]["xx"]["upsampling"] == 2
    assert sorted(metrics["validation_per_source"]) == ["en", "xx"]
    assert "eval_en_accuracy" in metrics["validation_per_source"]["en"]
    assert "eval_accuracy" in metrics["validation"]
    assert metrics["source_sfts"]["xx"]["name_or_path"] == sources["xx"]["language_sft"]
    assert [entry["path"] for entry in metrics["data"]["train_files"]] == [ENGLISH, TARGET]


def test_sources_from_a_yaml_file(tiny_model_dir, tmp_path, sources):
    sources["xx"]["language_sft"] = None
    lines = []
    for language, settings in sources.items():
        lines.append(f"{language}:")
        lines.extend(f"  {key}: {json.dumps(value)}" for key, value in settings.items())
    path = tmp_path / "sources.yaml"
    path.write_text("\n".join(lines) + "\n")

    output = train(tiny_model_dir, tmp_path / "pos", str(path), "--method", "random")
    metrics = json.loads((output / "train_metrics.json").read_text())
    assert metrics["method"] == "random"
    assert metrics["source_sfts"]["xx"] is None
    assert SFT.from_pretrained(output).num_diff_entries <= BUDGET


def test_parse_sources_applies_default_caps():
    specs = parse_sources(
        {"en": {"train_files": ["a.conllu"], "max_eval_samples": 7}, "mt": {"train_files": "b.conllu"}},
        default_max_train=100,
        default_max_eval=10,
    )
    assert specs == [
        SourceSpec("en", ("a.conllu",), max_train_samples=100, max_eval_samples=7),
        SourceSpec("mt", ("b.conllu",), max_train_samples=100, max_eval_samples=10),
    ]


@pytest.mark.parametrize(
    "sources, error, message",
    [
        ({}, ValueError, "names no source"),
        ({"en": {"train_file": ["a"]}}, ValueError, r"source en has unknown settings \['train_file'\]"),
        ({"en": {"validation_files": ["a"]}}, ValueError, "en.train_files must name at least one file"),
        ({"en": {"train_files": ["a"], "upsampling": 0}}, ValueError, "en.upsampling must be a positive"),
        ({"en": {"train_files": ["a"], "language_sft": 3}}, TypeError, "en.language_sft must be"),
        ({"e n": {"train_files": ["a"]}}, ValueError, "source language must be a language code"),
        ({"en": ["a"]}, TypeError, "must map setting names to values"),
        ("{not json", ValueError, "sources is not valid JSON"),
        ("missing.yaml", FileNotFoundError, "missing.yaml not found"),
    ],
)
def test_parse_sources_rejects_invalid_settings(sources, error, message):
    with pytest.raises(error, match=message):
        parse_sources(sources)


def test_sources_replace_single_source_options(tiny_model_dir, tmp_path, sources):
    with pytest.raises(ValueError, match="sources replaces language, train_files"):
        train(tiny_model_dir, tmp_path / "pos", sources, "--language", "en", "--train_files", ENGLISH)


def test_sources_reject_madx(tiny_model_dir, tmp_path, sources):
    with pytest.raises(ValueError, match="not with method 'madx'"):
        train(tiny_model_dir, tmp_path / "pos", sources, "--method", "madx")


def test_evaluation_needs_a_source_with_validation_files(tiny_model_dir, tmp_path, sources):
    for settings in sources.values():
        del settings["validation_files"]
    with pytest.raises(ValueError, match="with sources, the validation_files of a source"):
        train(tiny_model_dir, tmp_path / "pos", sources, "--eval_strategy", "steps")


def test_sources_reject_masked_lm(tiny_model_dir, tmp_path, sources):
    with pytest.raises(ValueError, match="task mlm trains one language SFT per language"):
        train(tiny_model_dir, tmp_path / "mlm", sources, "--task", "mlm")
