"""`xlt-train`: train a language SFT (masked-LM) or a task SFT and save it with its metrics.

Usage: `xlt-train [CONFIG.yaml] [--name value ...]`, e.g.

    xlt-train --task pos --language en --train_files en_ewt-ud-train.conllu \\
        --validation_files en_ewt-ud-dev.conllu --model_name_or_path MODEL \\
        --apply_sfts results/sfts/lang/en --output_dir results/sfts/task/pos \\
        --method lottery_ticket --ft_params_num 14155776 --freeze_layer_norm

The output folder receives the trained SFT (default format, its config recording kind, task,
language and every argument) and `train_metrics.json`. Trainer checkpoints are removed at the end.

With `--method madx` the artifact is a MAD-X adapter instead (see `xlt.madx`): a language adapter
for task mlm, or a task adapter with its head, stacked on `--language_adapter` while training.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import transformers
from transformers import HfArgumentParser, TrainingArguments, set_seed

from sft import SftArguments

from ..madx.arguments import AdapterArguments
from ..madx.artifact import MADX_CONFIG_NAME, describe_adapter_folder
from ..provenance import (
    describe_file,
    describe_model_folder,
    describe_sft_folder,
    package_versions,
    repository_state,
    write_json_atomic,
)
from ..tasks import Task, TaskArguments, build_task
from ..tasks.base import FeatureDataset
from .arguments import DataArguments, ModelArguments, parse_arguments, setup_logging
from .common import apply_sft, load_tokenizer, read_records
from .methods import METHODS, TrainingJob, get_method

logger = logging.getLogger(__name__)

TRAIN_METRICS_NAME = "train_metrics.json"
_CHECKPOINT_FOLDER = re.compile(r"checkpoint-\d+")


@dataclass
class MethodArguments:
    """Training method that produces the artifact."""

    method: str = field(
        default="lottery_ticket",
        metadata={
            "help": "Training method: 'lottery_ticket' (LT-SFT), 'random' (a random mask of K entries, "
            "trained sparsely), 'dense' (every maskable entry free: plain fine-tuning, saved as an "
            "SFT of the whole difference) or 'madx' (a MAD-X adapter from the adapters library, "
            "sized by adapter_reduction_factor; the SFT options do not apply to it)."
        },
    )

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(sorted(METHODS))}, got {self.method!r}")


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser(
        (
            ModelArguments, DataArguments, MethodArguments, TaskArguments, SftArguments, AdapterArguments,
            TrainingArguments,
        ),
        description="Train a language SFT or adapter (task mlm), or a task SFT or adapter, and save it "
        "with its metrics.",
    )
    # Nothing is reported to W&B unless a config or the command line sets report_to.
    parser.set_defaults(report_to="none")
    return parser


def check_arguments(
    method_args: MethodArguments,
    sft_args: SftArguments,
    training_args: TrainingArguments,
    data_args: DataArguments,
    explicit: set[str],
    model_args: ModelArguments,
    adapter_args: AdapterArguments,
) -> None:
    """Reject contradictory arguments before any data or model is loaded."""
    if "output_dir" not in explicit:
        raise ValueError("output_dir is required: the folder that receives the SFT and its metrics")
    check_adapter_arguments(method_args, data_args, model_args, adapter_args)
    if method_args.method in ("lottery_ticket", "random"):
        if "sparse_ft_method" in explicit and sft_args.sparse_ft_method != method_args.method:
            raise ValueError(
                f"method={method_args.method!r} contradicts sparse_ft_method="
                f"{sft_args.sparse_ft_method!r}; set only method"
            )
        sft_args.sparse_ft_method = method_args.method
    if training_args.eval_strategy != "no" and not data_args.validation_files:
        raise ValueError(
            f"eval_strategy={training_args.eval_strategy.value!r} needs validation_files "
            "(training-language data only)"
        )


def check_adapter_arguments(
    method_args: MethodArguments,
    data_args: DataArguments,
    model_args: ModelArguments,
    adapter_args: AdapterArguments,
) -> None:
    """Reject adapter options that the chosen method or task cannot use."""
    if method_args.method == "madx" and model_args.apply_sfts:
        raise ValueError(
            "apply_sfts cannot be combined with method 'madx': adapters train on the base model; "
            "give the source-language adapter as language_adapter instead"
        )
    if adapter_args.language_adapter is None:
        return
    if method_args.method != "madx":
        raise ValueError(
            f"language_adapter is an option of method 'madx', got method={method_args.method!r}; "
            "SFT methods take the source-language SFT through apply_sfts"
        )
    if data_args.task == "mlm":
        raise ValueError(
            "language_adapter stacks a task adapter on a language adapter, but task mlm trains a "
            "language adapter on the bare model; leave language_adapter out"
        )
    if not (Path(adapter_args.language_adapter) / MADX_CONFIG_NAME).is_file():
        raise FileNotFoundError(
            f"language_adapter {adapter_args.language_adapter} has no {MADX_CONFIG_NAME}; give a "
            "folder written by xlt-train --method madx --task mlm"
        )


def configure_model_selection(training_args: TrainingArguments, task: Task, explicit: set[str]) -> None:
    """Select on the task's own metric unless the arguments name another one."""
    if training_args.load_best_model_at_end and "metric_for_best_model" not in explicit:
        training_args.metric_for_best_model = task.selection_metric
        training_args.greater_is_better = task.selection_greater_is_better
        logger.info("Model selection on validation %s", task.selection_metric)


def remove_trainer_checkpoints(output_dir: Path) -> None:
    """Delete the Trainer's `checkpoint-N` folders, because the SFT is the only artifact kept."""
    for folder in sorted(output_dir.glob("checkpoint-*")):
        if folder.is_dir() and _CHECKPOINT_FOLDER.fullmatch(folder.name):
            shutil.rmtree(folder)
            logger.info("Removed Trainer checkpoint %s", folder)


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()

    # Parse.
    parser = build_parser()
    parsed, explicit = parse_arguments(parser, argv)
    model_args, data_args, method_args, task_args, sft_args, adapter_args, training_args = parsed
    check_arguments(method_args, sft_args, training_args, data_args, explicit, model_args, adapter_args)

    # Log: INFO on the main process unless log_level sets another level, as in transformers' examples.
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()
    setup_logging(training_args.get_process_log_level())
    logger.info(
        "Training %s on %s (%s) with method %s", data_args.task, data_args.language,
        ", ".join(data_args.train_files), method_args.method,
    )

    # Seed: before the model is built, so that a new head is initialised reproducibly.
    set_seed(training_args.seed)

    # Data.
    tokenizer = load_tokenizer(model_args.tokenizer_path)
    task = build_task(data_args.task, tokenizer, data_args.max_seq_length, task_args)
    configure_model_selection(training_args, task, explicit)
    reader_options = data_args.reader_options()
    train_records = read_records(task, data_args.train_files, data_args.max_train_samples, reader_options)
    train_dataset = FeatureDataset(task.encode(train_records, training=True))
    eval_records, eval_dataset = [], None
    if data_args.validation_files:
        eval_records = read_records(
            task, data_args.validation_files, data_args.max_eval_samples, reader_options
        )
        eval_dataset = FeatureDataset(task.encode(eval_records, training=False))
    logger.info(
        "%d training records (%d features), %d validation records",
        len(train_records), len(train_dataset), len(eval_records),
    )

    # Model: the base checkpoint, then the SFTs that become part of the starting weights.
    loaded = task.build_model(model_args.model_name_or_path)
    model = loaded.model
    for sft_path in model_args.apply_sfts:
        apply_sft(model, sft_path, with_abs=False, role="starting-point")
    task.prepare_model_for_training(model)

    # Trainer and training, by the selected method.
    arguments_record = {
        "model": asdict(model_args),
        "data": asdict(data_args),
        "method": asdict(method_args),
        "task": task.config_record(),
        "language": data_args.language,
    }
    job = TrainingJob(
        model=model,
        head_parameter_names=loaded.new_parameter_names,
        training_args=training_args,
        sft_args=sft_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=task.collate,
        compute_metrics=task.compute_metrics if eval_dataset is not None else None,
        preprocess_logits_for_metrics=task.preprocess_logits_for_metrics,
        sft_kind=task.sft_kind,
        config_record=arguments_record,
        adapter_args=adapter_args if method_args.method == "madx" else None,
    )
    result = get_method(method_args.method).train(job)

    # Evaluate on the training-language validation data.
    validation_metrics = None
    if eval_dataset is not None:
        validation_metrics = result.trainer.evaluate(eval_dataset)
        logger.info("Validation metrics: %s", validation_metrics)

    # Write the artifact and the metrics.
    output_dir = Path(training_args.output_dir)
    if result.trainer.is_world_process_zero():
        result.artifact.save_pretrained(str(output_dir))
        remove_trainer_checkpoints(output_dir)
        write_json_atomic(
            output_dir / TRAIN_METRICS_NAME,
            {
                "task": data_args.task,
                "language": data_args.language,
                "method": method_args.method,
                "sft_kind": task.sft_kind,
                "train": result.train_metrics,
                "log_history": result.trainer.state.log_history,
                "validation": validation_metrics,
                "validation_note": "training-language validation data only (zero-shot transfer)",
                "summary": result.summary,
                "num_train_records": len(train_records),
                "num_train_features": len(train_dataset),
                "num_validation_records": len(eval_records),
                "base_model": describe_model_folder(model_args.model_name_or_path),
                "applied_sfts": [describe_sft_folder(path) for path in model_args.apply_sfts],
                "language_adapter": (
                    describe_adapter_folder(adapter_args.language_adapter)
                    if adapter_args.language_adapter else None
                ),
                "data": {
                    "train_files": [describe_file(path) for path in data_args.train_files],
                    "validation_files": [describe_file(path) for path in data_args.validation_files],
                },
                "arguments": {
                    **arguments_record,
                    "sft": asdict(sft_args),
                    "adapter": asdict(adapter_args),
                    "training": json.loads(training_args.to_json_string()),
                },
                "seed": training_args.seed,
                "git": repository_state(),
                "packages": package_versions(),
                "wall_time_seconds": round(time.monotonic() - started, 3),
            },
        )
        logger.info("Saved the %s and %s to %s", method_args.method, TRAIN_METRICS_NAME, output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
