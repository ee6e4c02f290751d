"""`xlt-train --method madx` and `xlt-evaluate` with adapters, end to end on the tiny model."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from tiny_models import build_tiny_tokenizer, tiny_bert_config
from safetensors.torch import load_file
from transformers import BertForMaskedLM

from xlt.cli import evaluate as evaluate_cli
from xlt.cli import train as train_cli
from xlt.cli.common import load_tokenizer
from xlt.cli.evaluate import EvaluateArguments, load_task_and_language_adapters
from xlt.cli.methods.madx import MadxMethod
from xlt.madx import MadxConfig, MadxFormatError
from xlt.madx.artifact import ADAPTER_WEIGHTS_NAME, HEAD_WEIGHTS_NAME, MADX_CONFIG_NAME
from xlt.tasks import build_task

SNIPPETS = Path(__file__).parent / "snippets"
TRAIN_FILES = {
    "mlm": ("tasks_text_en.txt", "tasks_text_target.txt"),
    "pos": ("tasks_en.conllu", "tasks_target.conllu"),
    "dp": ("tasks_en.conllu", "tasks_target.conllu"),
    "ner": ("tasks_ner_en.txt", "tasks_ner_target.txt"),
    "nli": ("tasks_nli_en.txt", "tasks_nli_target.tsv"),
}
# Tiny model: hidden size 32, 2 layers. A reduction factor of 0.7 gives a 45-unit bottleneck.
LANGUAGE_ADAPTER_ENTRIES = 2 * (2 * 32 * 45 + 45 + 32) + 2 * (16 * 8 + 8 + 8 * 16 + 16)
TASK_ADAPTER_ENTRIES = 2 * (2 * 32 * 64 + 64 + 32)  # reduction factor 0.5


@pytest.fixture(autouse=True)
def offline_tracking(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


def train(model_dir, output_dir, task, *extra, language="en", train_file=None):
    argv = [
        "--task", task,
        "--language", language,
        "--method", "madx",
        "--model_name_or_path", str(model_dir),
        "--train_files", train_file or str(SNIPPETS / TRAIN_FILES[task][0]),
        "--validation_files", str(SNIPPETS / TRAIN_FILES[task][0]),
        "--output_dir", str(output_dir),
        "--adapter_reduction_factor", "0.7" if task == "mlm" else "0.5",
        "--max_seq_length", "24",
        "--per_device_train_batch_size", "2",
        "--learning_rate", "1e-2",
        "--max_steps", "3",
        "--eval_strategy", "no",
        "--save_strategy", "no",
        "--report_to", "none",
        "--dataloader_pin_memory", "false",
        *extra,
    ]
    assert train_cli.main(argv) == 0
    return Path(output_dir)


def evaluate(model_dir, output_file, *extra, task=None, test_file=None, language="xx"):
    argv = [
        "--model_name_or_path", str(model_dir),
        "--language", language,
        "--output_file", str(output_file),
        "--test_file", test_file or str(SNIPPETS / TRAIN_FILES[task or "pos"][1]),
    ]
    if task is not None:
        argv += ["--task", task]
    assert evaluate_cli.main([*argv, *extra]) == 0
    return json.loads(Path(output_file).read_text())


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """The tiny random BERT with its tokenizer, shared by the tests of this module."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = build_tiny_tokenizer(folder)
    torch.manual_seed(0)
    BertForMaskedLM(tiny_bert_config(vocab_size=len(tokenizer))).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def language_adapters(tiny_model_dir, tmp_path_factory):
    """English and target-language ("xx") adapters trained on the snippet texts; never modified."""
    folder = tmp_path_factory.mktemp("language-adapters")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        english = train(tiny_model_dir, folder / "en", "mlm")
        target = train(
            tiny_model_dir, folder / "xx", "mlm",
            language="xx", train_file=str(SNIPPETS / "tasks_text_target.txt"),
        )
    return english, target


@pytest.fixture(scope="module")
def pos_adapter(tiny_model_dir, language_adapters, tmp_path_factory):
    """A POS task adapter trained stacked on the English adapter; never modified."""
    english, _ = language_adapters
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        return train(
            tiny_model_dir, tmp_path_factory.mktemp("task-adapters") / "pos", "pos",
            "--language_adapter", str(english),
        )


class RecordingMadxMethod(MadxMethod):
    """MadxMethod that keeps the model and its parameters as they were before training."""

    def train(self, job):
        self.before = {name: p.detach().clone() for name, p in job.model.named_parameters()}
        self.head_parameter_names = list(job.head_parameter_names)
        self.result = super().train(job)
        return self.result


def test_language_adapter_trains_and_saves(tiny_model_dir, tmp_path, monkeypatch):
    method = RecordingMadxMethod()
    monkeypatch.setattr(train_cli, "get_method", lambda name: method)
    output = train(
        tiny_model_dir, tmp_path / "lang-en", "mlm",
        "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
    )

    files = {path.name for path in output.iterdir()}
    assert {MADX_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, HEAD_WEIGHTS_NAME, "train_metrics.json"} <= files
    assert not list(output.glob("checkpoint-*"))
    config = MadxConfig.from_json_file(output / MADX_CONFIG_NAME)
    assert config.kind == "language"
    assert config.adapter_name == "en"
    assert config.adapter_config["inv_adapter"] == "nice"
    assert config.num_adapter_parameters == LANGUAGE_ADAPTER_ENTRIES
    assert config.stacked_on is None
    assert config.training_arguments["adapter_arguments"]["adapter_reduction_factor"] == 0.7
    weights = load_file(str(output / ADAPTER_WEIGHTS_NAME))
    assert sum(tensor.numel() for tensor in weights.values()) == LANGUAGE_ADAPTER_ENTRIES
    assert any("invertible_adapters.en" in name for name in weights)

    # Everything but the adapter is frozen: the masked-LM head and the encoder keep their values.
    model = method.result.artifact.model
    for name, parameter in model.named_parameters():
        if name in method.before:
            torch.testing.assert_close(parameter.detach(), method.before[name], msg=name)

    metrics = json.loads((output / "train_metrics.json").read_text())
    assert metrics["method"] == "madx"
    assert metrics["sft_kind"] == "language"
    assert metrics["summary"]["num_adapter_parameters"] == LANGUAGE_ADAPTER_ENTRIES
    assert metrics["summary"]["num_trainable_parameters"] == LANGUAGE_ADAPTER_ENTRIES
    maskable = metrics["summary"]["num_maskable_entries"]
    assert metrics["summary"]["adapter_proportion_of_maskable"] == pytest.approx(LANGUAGE_ADAPTER_ENTRIES / maskable)
    assert "eval_loss" in metrics["validation"]


def test_task_adapter_trains_adapter_and_head(tiny_model_dir, tmp_path, language_adapters, monkeypatch):
    english, _ = language_adapters
    method = RecordingMadxMethod()
    monkeypatch.setattr(train_cli, "get_method", lambda name: method)
    output = train(tiny_model_dir, tmp_path / "pos", "pos", "--language_adapter", str(english))

    model = method.result.artifact.model
    assert str(model.active_adapters) == "Stack[en, pos]"
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    task_adapter = {name for name in trainable if ".adapters.pos." in name}
    assert trainable == task_adapter | {"classifier.weight", "classifier.bias"}
    assert method.head_parameter_names == ["classifier.bias", "classifier.weight"]

    parameters = dict(model.named_parameters())
    for name, before in method.before.items():
        if name.startswith("classifier."):
            assert not torch.equal(parameters[name], before), f"head parameter {name} did not train"
        else:
            torch.testing.assert_close(parameters[name].detach(), before, msg=name)
    # The English adapter is frozen: its weights are still those in its folder.
    for name, saved in load_file(str(english / ADAPTER_WEIGHTS_NAME)).items():
        torch.testing.assert_close(parameters[name].detach(), saved, msg=name)

    config = MadxConfig.from_json_file(output / MADX_CONFIG_NAME)
    assert config.kind == "task"
    assert config.stacked_on == "en"
    assert config.num_adapter_parameters == TASK_ADAPTER_ENTRIES
    assert config.head_parameter_names == ["classifier.bias", "classifier.weight"]
    assert config.training_arguments["task"]["task"] == "pos"
    metrics = json.loads((output / "train_metrics.json").read_text())
    assert metrics["language_adapter"]["config_sha256"] == sha256(english / MADX_CONFIG_NAME)
    assert metrics["summary"]["num_trainable_parameters"] == TASK_ADAPTER_ENTRIES + 32 * 17 + 17


def test_evaluate_stacks_target_adapter(tiny_model_dir, tmp_path, language_adapters, pos_adapter):
    _, target = language_adapters
    task = pos_adapter
    result = evaluate(
        tiny_model_dir, tmp_path / "metrics.json",
        "--task_adapter", str(task), "--language_adapter", str(target), "--seed", "3",
    )
    assert result["task"] == "pos"
    assert result["language"] == "xx"
    assert set(result["metrics"]) >= {"accuracy", "num_words"}
    assert result["active_adapters"] == "Stack[xx, pos]"
    assert result["task_adapter"]["config_sha256"] == sha256(task / MADX_CONFIG_NAME)
    assert result["language_adapter"]["config_sha256"] == sha256(target / MADX_CONFIG_NAME)
    assert result["language_adapter"]["adapter_config_sha256"] == sha256(target / "adapter_config.json")
    assert result["task_sft"] is None
    assert result["packages"]["adapters"]
    assert result["seed"] == 3


def test_language_adapter_swap_changes_logits(tiny_model_dir, language_adapters, pos_adapter):
    english, target = language_adapters
    task = build_task("pos", load_tokenizer(str(tiny_model_dir)), 24)
    features = task.encode(task.read(str(SNIPPETS / "tasks_target.conllu")), training=False)
    batch = task.collate(features)
    batch.pop("labels")

    def logits_with(language_adapter):
        args = EvaluateArguments(
            model_name_or_path=str(tiny_model_dir), test_file="unused", language="xx", output_file="unused",
            task_adapter=str(pos_adapter), language_adapter=str(language_adapter) if language_adapter else None,
        )
        model = task.build_model(str(tiny_model_dir)).model.eval()
        load_task_and_language_adapters(model, args, "pos")
        with torch.no_grad():
            return model(**batch).logits

    with_english = logits_with(english)
    assert not torch.allclose(with_english, logits_with(target))
    assert not torch.allclose(with_english, logits_with(None))
    torch.testing.assert_close(logits_with(english), with_english)


@pytest.mark.parametrize(
    ("task", "metric_keys", "head_prefixes"),
    [
        ("dp", {"uas", "las"}, ("parser.",)),
        ("ner", {"f1"}, ("classifier.",)),
        ("nli", {"accuracy"}, ("classifier.", "bert.pooler.")),
    ],
)
def test_each_task_trains_a_task_adapter(tiny_model_dir, tmp_path, task, metric_keys, head_prefixes):
    output = train(tiny_model_dir, tmp_path / task, task)
    config = MadxConfig.from_json_file(output / MADX_CONFIG_NAME)
    assert config.stacked_on is None
    assert config.head_parameter_names
    assert all(name.startswith(head_prefixes) for name in config.head_parameter_names)
    for prefix in head_prefixes:
        assert any(name.startswith(prefix) for name in config.head_parameter_names), prefix

    result = evaluate(tiny_model_dir, tmp_path / "metrics.json", "--task_adapter", str(output), task=task)
    assert metric_keys <= set(result["metrics"])
    assert result["active_adapters"] == f"Stack[{task}]"


def test_language_adapter_evaluates_masked_lm(tiny_model_dir, tmp_path, language_adapters):
    _, target = language_adapters
    result = evaluate(tiny_model_dir, tmp_path / "metrics.json", "--language_adapter", str(target), task="mlm")
    assert {"loss", "accuracy"} <= set(result["metrics"])
    assert result["active_adapters"] == "Stack[xx]"


def test_adapters_and_sfts_are_exclusive(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="cannot be combined with task_sft or language_sft"):
        evaluate(tiny_model_dir, tmp_path / "m.json", "--task_adapter", "a", "--language_sft", "b", task="pos")


def test_evaluate_rejects_swapped_kinds(tiny_model_dir, tmp_path, language_adapters):
    english, _ = language_adapters
    with pytest.raises(MadxFormatError, match="contains a language adapter"):
        evaluate(tiny_model_dir, tmp_path / "m.json", "--task_adapter", str(english), task="pos")


def test_task_disagreeing_with_adapter_is_rejected(tiny_model_dir, tmp_path, pos_adapter):
    with pytest.raises(ValueError, match="was trained for 'pos'"):
        evaluate(tiny_model_dir, tmp_path / "m.json", "--task_adapter", str(pos_adapter), task="ner")


def test_language_adapter_option_needs_madx(tiny_model_dir, tmp_path, language_adapters):
    english, _ = language_adapters
    with pytest.raises(ValueError, match="language_adapter is an option of method 'madx'"):
        train(tiny_model_dir, tmp_path / "pos", "pos", "--language_adapter", str(english), "--method", "dense")


def test_mlm_rejects_language_adapter(tiny_model_dir, tmp_path, language_adapters):
    english, _ = language_adapters
    with pytest.raises(ValueError, match="task mlm trains a language adapter on the bare model"):
        train(tiny_model_dir, tmp_path / "mt", "mlm", "--language_adapter", str(english))


def test_language_adapter_folder_checked(tiny_model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=f"has no {MADX_CONFIG_NAME}"):
        train(tiny_model_dir, tmp_path / "pos", "pos", "--language_adapter", str(tmp_path / "empty"))


def test_madx_rejects_apply_sfts(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="apply_sfts cannot be combined with method 'madx'"):
        train(tiny_model_dir, tmp_path / "pos", "pos", "--apply_sfts", str(tmp_path))


def test_reduction_factor_must_be_positive(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="adapter_reduction_factor must be a positive number"):
        train(tiny_model_dir, tmp_path / "pos", "pos", "--adapter_reduction_factor", "0")
