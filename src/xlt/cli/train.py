"""`xlt-train`: train a language SFT (masked-LM) or a task SFT and save it with its metrics.

Usage: `xlt-train [CONFIG.yaml] [--name value ...]`, e.g.

    xlt-train --task pos --language en --train_files en_ewt-ud-train.conllu \\
        --validation_files en_ewt-ud-dev.conllu --model_name_or_path MODEL \\
        --apply_sfts results/sfts/lang/en --output_dir results/sfts/task/pos \\
        --method lottery_ticket --ft_params_num 14155776 --freeze_layer_norm

The output folder receives the trained SFT (default format, its config recording kind, task,
language and every argument) and `train_metrics.json`. Trainer checkpoints are removed at the end.

With `--sources` a task SFT is trained on several source languages at once, each with its own
files, caps and language SFT (see `xlt.cli.multisource`). Every batch comes from one source and
is trained with that source's language SFT applied, so the task SFT is relative to the bare base
model.

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
from typing import Any

import transformers
from transformers import HfArgumentParser, TrainingArguments, set_seed

from sft import MultiSourceDataset, SftArguments

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
from .arguments import DataArguments, ModelArguments, parse_arguments, setup_logging
from .common import apply_sft, load_tokenizer
from .methods import METHODS, TrainingJob, get_method
from .multisource import SourceSpec, load_source_sfts
from .training_data import TrainingData, read_training_data

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
    specs = data_args.source_specs()
    if specs is not None and method_args.method == "madx":
        raise ValueError(
            "sources (multi-source training) works with the SFT methods lottery_ticket, random "
            "and dense, not with method 'madx'"
        )
    if specs is not None and data_args.task == "mlm":
        raise ValueError(
            "sources trains a task SFT on several source languages; task mlm trains one language "
            "SFT per language, so give language and train_files instead"
        )
    has_validation = (
        any(spec.validation_files for spec in specs) if specs is not None else data_args.validation_files
    )
    if training_args.eval_strategy != "no" and not has_validation:
        raise ValueError(
            f"eval_strategy={training_args.eval_strategy.value!r} needs validation_files "
            "(training-language data only; with sources, the validation_files of a source)"
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


def describe_source_sfts(specs: list[SourceSpec] | None) -> dict[str, Any] | None:
    """Describe the language SFT of every source (None for a source without one)."""
    if specs is None:
        return None
    return {
        spec.language: describe_sft_folder(spec.language_sft) if spec.language_sft else None
        for spec in specs
    }


def evaluate_validation(trainer, data: TrainingData) -> dict[str, Any]:
    """Evaluate on the validation data: all of it, and each source of a multi-source run.

    Returns {"all": metrics or None, "per_source": {source: metrics} or None}.
    """
    if data.eval_dataset is None:
        return {"all": None, "per_source": None}
    metrics = {"all": trainer.evaluate(data.eval_dataset), "per_source": None}
    logger.info("Validation metrics: %s", metrics["all"])
    if isinstance(data.eval_dataset, MultiSourceDataset) and len(data.eval_dataset.source_names) > 1:
        metrics["per_source"] = {}
        for name in data.eval_dataset.source_names:
            single = MultiSourceDataset({name: data.eval_dataset.sources[name]})
            metrics["per_source"][name] = trainer.evaluate(single, metric_key_prefix=f"eval_{name}")
            logger.info("Validation metrics of source %s: %s", name, metrics["per_source"][name])
    return metrics


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
    specs = data_args.source_specs()
    if specs is None:
        logger.info(
            "Training %s on %s (%s) with method %s", data_args.task, data_args.language,
            ", ".join(data_args.train_files), method_args.method,
        )
    else:
        logger.info(
            "Training %s on %d sources (%s) with method %s", data_args.task, len(specs),
            ", ".join(spec.language for spec in specs), method_args.method,
        )

    # Seed: before the model is built, so that a new head is initialised reproducibly.
    set_seed(training_args.seed)

    # Data.
    tokenizer = load_tokenizer(model_args.tokenizer_path)
    task = build_task(data_args.task, tokenizer, data_args.max_seq_length, task_args)
    configure_model_selection(training_args, task, explicit)
    data = read_training_data(task, data_args)
    logger.info(
        "%d training records (%d features), %d validation records",
        data.num_train_records, data.num_train_features, data.num_eval_records,
    )

    # Model: the base checkpoint, then the SFTs that become part of the starting weights.
    loaded = task.build_model(model_args.model_name_or_path)
    model = loaded.model
    for sft_path in model_args.apply_sfts:
        apply_sft(model, sft_path, with_abs=False, role="starting-point")
    task.prepare_model_for_training(model)
    # Multi-source training applies each source's language SFT around its own batches only.
    source_sfts = load_source_sfts(specs) if specs is not None else None

    # Trainer and training, by the selected method.
    arguments_record = {
        "model": asdict(model_args),
        "data": asdict(data_args),
        "method": asdict(method_args),
        "task": task.config_record(),
        "language": data_args.language,
    }
    if specs is not None:
        arguments_record["sources"] = [spec.record() for spec in specs]
    job = TrainingJob(
        model=model,
        head_parameter_names=loaded.new_parameter_names,
        training_args=training_args,
        sft_args=sft_args,
        train_dataset=data.train_dataset,
        eval_dataset=data.eval_dataset,
        data_collator=task.collate,
        compute_metrics=task.compute_metrics if data.eval_dataset is not None else None,
        preprocess_logits_for_metrics=task.preprocess_logits_for_metrics,
        sft_kind=task.sft_kind,
        config_record=arguments_record,
        adapter_args=adapter_args if method_args.method == "madx" else None,
        source_sfts=source_sfts,
    )
    result = get_method(method_args.method).train(job)

    # Evaluate on the training-language validation data.
    validation_metrics = evaluate_validation(result.trainer, data)

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
                "validation": validation_metrics["all"],
                "validation_per_source": validation_metrics["per_source"],
                "validation_note": "training-language validation data only (zero-shot transfer)",
                "summary": result.summary,
                "num_train_records": data.num_train_records,
                "num_train_features": data.num_train_features,
                "num_validation_records": data.num_eval_records,
                "sources": data.sources,
                "base_model": describe_model_folder(model_args.model_name_or_path),
                "applied_sfts": [describe_sft_folder(path) for path in model_args.apply_sfts],
                "source_sfts": describe_source_sfts(specs),
                "language_adapter": (
                    describe_adapter_folder(adapter_args.language_adapter)
                    if adapter_args.language_adapter else None
                ),
                "data": {
                    "train_files": [describe_file(path) for path in data.train_files],
                    "validation_files": [describe_file(path) for path in data.validation_files],
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
