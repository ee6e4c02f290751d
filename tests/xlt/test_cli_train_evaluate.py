"""`xlt-train` and `xlt-evaluate` end to end on the tiny model and the snippet files."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sft import SFT
from xlt.cli import evaluate as evaluate_cli
from xlt.cli import train as train_cli

SNIPPETS = Path(__file__).parent / "snippets"
REPO_ROOT = Path(__file__).resolve().parents[2]

TRAIN_FILES = {
    "mlm": ("tasks_text_en.txt", "tasks_text_target.txt"),
    "pos": ("tasks_en.conllu", "tasks_target.conllu"),
    "dp": ("tasks_en.conllu", "tasks_target.conllu"),
    "ner": ("tasks_ner_en.txt", "tasks_ner_target.txt"),
    "nli": ("tasks_nli_en.txt", "tasks_nli_target.tsv"),
}
BUDGET = 300


@pytest.fixture(autouse=True)
def offline_tracking(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


def train(model_dir, output_dir, task, *extra, train_file=None, language="en"):
    train_file = train_file or str(SNIPPETS / TRAIN_FILES[task][0])
    argv = [
        "--task", task,
        "--language", language,
        "--model_name_or_path", str(model_dir),
        "--train_files", train_file,
        "--validation_files", str(SNIPPETS / TRAIN_FILES[task][0]),
        "--output_dir", str(output_dir),
        "--max_seq_length", "24",
        "--per_device_train_batch_size", "2",
        "--per_device_eval_batch_size", "4",
        "--learning_rate", "1e-3",
        "--full_ft_max_steps_per_iteration", "3",
        "--sparse_ft_max_steps_per_iteration", "3",
        "--max_steps", "3",
        "--ft_params_num", str(BUDGET),
        "--eval_strategy", "steps",
        "--eval_steps", "2",
        "--save_strategy", "steps",
        "--save_steps", "1",
        "--report_to", "none",
        "--dataloader_pin_memory", "false",
        *extra,
    ]
    assert train_cli.main(argv) == 0
    return output_dir


def evaluate(model_dir, output_file, *extra, test_file=None, task=None, language="xx"):
    argv = ["--model_name_or_path", str(model_dir), "--language", language, "--output_file", str(output_file)]
    if task is not None:
        argv += ["--task", task, "--test_file", test_file or str(SNIPPETS / TRAIN_FILES[task][1])]
    else:
        argv += ["--test_file", test_file]
    assert evaluate_cli.main([*argv, *extra]) == 0
    return json.loads(Path(output_file).read_text())


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_train_pos_saves_sft_with_head_as_abs(tiny_model_dir, tmp_path):
    output = train(tiny_model_dir, tmp_path / "pos", "pos")
    sft = SFT.from_pretrained(output)
    assert sorted(sft.abs) == ["classifier.bias", "classifier.weight"]
    assert all(name.startswith("bert.") for name in sft.diffs)
    assert 0 < sft.num_diff_entries <= BUDGET
    assert sft.config.kind == "task"
    assert sft.config.training_arguments["task"]["task"] == "pos"
    assert sft.config.training_arguments["language"] == "en"
    assert "sft_arguments" in sft.config.training_arguments
    assert not list(output.glob("checkpoint-*"))

    metrics = json.loads((output / "train_metrics.json").read_text())
    assert metrics["task"] == "pos"
    assert metrics["method"] == "lottery_ticket"
    assert metrics["sft_kind"] == "task"
    assert metrics["summary"]["ft_params_num"] == BUDGET
    assert "eval_accuracy" in metrics["validation"]
    assert metrics["num_train_records"] == 6
    assert metrics["data"]["train_files"][0]["git_blob"]
    assert metrics["arguments"]["training"]["learning_rate"] == 1e-3


def test_task_sft_with_language_sfts_end_to_end(tiny_model_dir, tmp_path):
    english = train(tiny_model_dir, tmp_path / "lang-en", "mlm")
    target = train(
        tiny_model_dir, tmp_path / "lang-xx", "mlm",
        train_file=str(SNIPPETS / "tasks_text_target.txt"), language="xx",
    )
    task = train(tiny_model_dir, tmp_path / "pos", "pos", "--apply_sfts", str(english))
    assert SFT.from_pretrained(english).config.kind == "language"
    # The English language SFT is part of the starting weights, so the task SFT does not
    # contain it, and its masked-LM head is not in the task SFT.
    task_sft = SFT.from_pretrained(task)
    assert not any(name.startswith("cls.") for name in task_sft.abs)
    applied = json.loads((task / "train_metrics.json").read_text())["applied_sfts"]
    assert applied == [{"name_or_path": str(english), "config_sha256": sha256(english / "sft_config.json")}]

    result = evaluate(
        tiny_model_dir, tmp_path / "metrics.json",
        "--task_sft", str(task), "--language_sft", str(target), "--seed", "7",
        test_file=str(SNIPPETS / "tasks_target.conllu"),
    )
    assert result["task"] == "pos"
    assert result["language"] == "xx"
    assert set(result["metrics"]) >= {"accuracy", "num_words"}
    assert result["num_examples"] == 3
    assert result["base_model"]["config_sha256"] == sha256(tiny_model_dir / "config.json")
    assert result["task_sft"]["config_sha256"] == sha256(task / "sft_config.json")
    assert result["language_sft"]["config_sha256"] == sha256(target / "sft_config.json")
    blob = subprocess.run(
        ["git", "hash-object", str(SNIPPETS / "tasks_target.conllu")],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert result["data"]["git_blob"] == blob
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    assert result["git"]["commit"] == (head or None)
    assert set(result["packages"]) >= {"python", "torch", "transformers", "composable-sft"}
    assert result["seed"] == 7
    assert result["wall_time_seconds"] > 0


def test_evaluate_task_sft_only(tiny_model_dir, tmp_path):
    task = train(tiny_model_dir, tmp_path / "pos", "pos")
    result = evaluate(
        tiny_model_dir, tmp_path / "out" / "metrics.json", "--task_sft", str(task),
        "--predictions_file", str(tmp_path / "out" / "predictions.jsonl"),
        test_file=str(SNIPPETS / "tasks_target.conllu"),
    )
    assert result["language_sft"] is None
    assert result["task"] == "pos"
    rows = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    assert len(rows) == 3
    assert json.loads(rows[2])["words"] == ["John", "went", "to", "the", "house", "."]


@pytest.mark.parametrize(
    ("task", "metric_keys"),
    [
        ("dp", {"uas", "las", "scope", "decoding"}),
        ("ner", {"precision", "recall", "f1", "scheme"}),
        ("nli", {"accuracy"}),
        ("mlm", {"accuracy", "loss", "num_masked_tokens"}),
    ],
)
def test_each_task_trains_and_evaluates(tiny_model_dir, tmp_path, task, metric_keys):
    sft_dir = train(tiny_model_dir, tmp_path / task, task)
    sft = SFT.from_pretrained(sft_dir)
    assert sft.abs, "the task head must be stored as dense values"
    assert not set(sft.abs) & set(sft.diffs)
    result = evaluate(tiny_model_dir, tmp_path / "metrics.json", "--task_sft", str(sft_dir), task=task)
    assert metric_keys <= set(result["metrics"])
    assert result["task"] == task


def test_nli_pooler_is_trained_as_head(tiny_model_dir, tmp_path):
    sft = SFT.from_pretrained(train(tiny_model_dir, tmp_path / "nli", "nli"))
    assert {"bert.pooler.dense.weight", "bert.pooler.dense.bias"} <= set(sft.abs)
    assert not any(name.startswith("bert.pooler") for name in sft.diffs)


def test_dense_method_stores_whole_difference(tiny_model_dir, tmp_path):
    output = train(tiny_model_dir, tmp_path / "dense", "pos", "--method", "dense")
    metrics = json.loads((output / "train_metrics.json").read_text())
    summary = metrics["summary"]
    assert summary["ft_params_num"] == summary["num_maskable_entries"]
    # Every entry with a gradient moves under Adam; embedding rows of unseen tokens do not.
    assert summary["num_diff_entries"] > 0.5 * summary["num_maskable_entries"]
    assert summary["abs_parameters"] == ["classifier.bias", "classifier.weight"]
    assert not list(output.glob("checkpoint-*"))


def test_random_method_is_recorded(tiny_model_dir, tmp_path):
    output = train(tiny_model_dir, tmp_path / "random", "ner", "--method", "random")
    sft = SFT.from_pretrained(output)
    assert sft.config.training_arguments["sft_arguments"]["sparse_ft_method"] == "random"
    assert sft.num_diff_entries <= BUDGET


def test_freeze_options_reach_the_sft(tiny_model_dir, tmp_path):
    output = train(
        tiny_model_dir, tmp_path / "frozen", "pos", "--freeze_layer_norm", "--freeze_embeddings"
    )
    sft = SFT.from_pretrained(output)
    assert not any("LayerNorm" in name or "embeddings.word_embeddings" in name for name in sft.diffs)


def test_yaml_config_with_command_line_overrides(tiny_model_dir, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(
        "\n".join(
            [
                "task: pos",
                "language: en",
                f"model_name_or_path: {tiny_model_dir}",
                f"train_files: [{SNIPPETS / 'tasks_en.conllu'}]",
                "max_seq_length: 24",
                "learning_rate: 0.002",
                "seed: 1",
                "max_steps: 2",
                "dataloader_pin_memory: false",
                "full_ft_max_steps_per_iteration: 2",
                "sparse_ft_max_steps_per_iteration: 2",
                f"ft_params_num: {BUDGET}",
                f"output_dir: {tmp_path / 'ignored'}",
            ]
        )
    )
    output = tmp_path / "from-yaml"
    assert train_cli.main([str(config), "--output_dir", str(output), "--seed", "5"]) == 0
    arguments = json.loads((output / "train_metrics.json").read_text())["arguments"]
    assert arguments["training"]["learning_rate"] == 0.002
    assert arguments["training"]["seed"] == 5
    assert arguments["data"]["max_seq_length"] == 24
    assert not (tmp_path / "ignored").exists()


def test_unknown_config_key_is_rejected(tiny_model_dir, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("task: pos\nlanguage: en\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match="unknown argument names learning_rat"):
        train_cli.main([str(config), "--output_dir", str(tmp_path / "out")])


def test_method_must_agree_with_sparse_ft_method(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="contradicts sparse_ft_method"):
        train(tiny_model_dir, tmp_path / "x", "pos", "--method", "lottery_ticket", "--sparse_ft_method", "random")


def test_output_dir_is_required(tiny_model_dir):
    argv = ["--task", "pos", "--language", "en", "--model_name_or_path", str(tiny_model_dir),
            "--train_files", str(SNIPPETS / "tasks_en.conllu")]
    with pytest.raises(ValueError, match="output_dir is required"):
        train_cli.main(argv)


def test_evaluation_during_training_needs_validation_files(tiny_model_dir, tmp_path):
    argv = ["--task", "pos", "--language", "en", "--model_name_or_path", str(tiny_model_dir),
            "--train_files", str(SNIPPETS / "tasks_en.conllu"), "--output_dir", str(tmp_path),
            "--eval_strategy", "steps"]
    with pytest.raises(ValueError, match="needs validation_files"):
        train_cli.main(argv)


def test_evaluate_rejects_untrained_head(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="classifier.bias, classifier.weight"):
        evaluate(tiny_model_dir, tmp_path / "metrics.json", task="pos")
    assert not (tmp_path / "metrics.json").exists()


def test_evaluate_rejects_task_mismatch(tiny_model_dir, tmp_path):
    task = train(tiny_model_dir, tmp_path / "pos", "pos")
    with pytest.raises(ValueError, match="trained for 'pos'"):
        evaluate(tiny_model_dir, tmp_path / "metrics.json", "--task_sft", str(task), task="dp")


def test_evaluate_keeps_previous_metrics_on_failure(tiny_model_dir, tmp_path):
    output_file = tmp_path / "metrics.json"
    output_file.write_text('{"previous": true}\n')
    with pytest.raises(FileNotFoundError):
        evaluate(tiny_model_dir, output_file, task="pos", test_file=str(tmp_path / "missing.conllu"))
    assert json.loads(output_file.read_text()) == {"previous": True}


def test_train_runs_as_module():
    completed = subprocess.run(
        [sys.executable, "-m", "xlt.cli.train", "--help"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "--apply_sfts" in completed.stdout


def test_evaluate_help_lists_sft_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "--language_sft" in capsys.readouterr().out


def test_evaluate_bf16_autocast_is_recorded(tiny_model_dir, tmp_path):
    task = train(tiny_model_dir, tmp_path / "pos", "pos")
    plain = evaluate(tiny_model_dir, tmp_path / "fp32.json", "--task_sft", str(task), task="pos")

    autocast = evaluate(tiny_model_dir, tmp_path / "bf16.json", "--task_sft", str(task), "--bf16", "true", task="pos")

    assert autocast["arguments"]["bf16"] is True
    assert plain["arguments"]["bf16"] is False
    assert 0.0 <= autocast["metrics"]["accuracy"] <= 1.0
    assert autocast["metrics"]["num_words"] == plain["metrics"]["num_words"]
