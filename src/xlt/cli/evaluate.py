"""`xlt-evaluate`: evaluate a base model with a task SFT and an optional language SFT on a test file.

Usage: `xlt-evaluate [CONFIG.yaml] [--name value ...]`, e.g.

    xlt-evaluate --model_name_or_path MODEL --task_sft results/sfts/task/pos \\
        --language_sft results/sfts/lang/mt --test_file mt_mudt-ud-test.conllu \\
        --language mt --output_file results/metrics/pos/mt.json

The task SFT is applied with its dense head values and the language SFT without them (for the
masked-LM task, whose head is part of the language SFT, with them). Leaving out `--language_sft`
evaluates the task SFT alone. The metrics file records the task, language, scores, number of
examples, the base model, each SFT with the hash of its config, the test file with its git blob
id, the git commit, package versions, the seed and the wall time.

MAD-X adapters (`xlt-train --method madx`) take the place of SFTs with `--task_adapter` and
`--language_adapter`: the task adapter is loaded with its head and stacked on the target-language
adapter, `Stack(language, task)`, or runs alone when no language adapter is given.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import torch
from transformers import HfArgumentParser, PreTrainedModel, set_seed

from sft import SFT

from ..data.atomic import atomic_open
from ..madx.artifact import describe_adapter_folder, load_adapter_module, read_adapter_config
from ..madx.config import MadxConfig
from ..madx.modules import activate, init_adapters
from ..provenance import (
    describe_file,
    describe_model_folder,
    describe_sft_folder,
    package_versions,
    repository_state,
    write_json_atomic,
)
from ..tasks import TASK_NAMES, TaskArguments, build_task
from ..tasks.sources import AUTO_FORMAT
from .arguments import (
    check_language_code,
    check_positive,
    parse_arguments,
    parse_type_map,
    setup_logging,
)
from .common import load_tokenizer, read_records, select_device

logger = logging.getLogger(__name__)

# Sequence length used when neither the arguments nor the task SFT's or adapter's config give one.
DEFAULT_MAX_SEQ_LENGTH = 256


@dataclass
class EvaluateArguments:
    """What to evaluate, on which file, and where to write the metrics."""

    model_name_or_path: str = field(metadata={"help": "Base model: a local folder or a hub id."})
    test_file: str = field(metadata={"help": "Test file in the task's format."})
    language: str = field(metadata={"help": "Language code of the test file (e.g. mt)."})
    output_file: str = field(metadata={"help": "Metrics JSON file to write."})
    task: str | None = field(
        default=None,
        metadata={
            "help": f"Task: one of {', '.join(TASK_NAMES)}. Defaults to the task recorded in the "
            "config of the task SFT or task adapter; when both are given they must agree."
        },
    )
    task_sft: str | None = field(
        default=None,
        metadata={"help": "Task SFT (folder or hub id), applied with its dense head values."},
    )
    language_sft: str | None = field(
        default=None,
        metadata={
            "help": "Target-language SFT (folder or hub id), applied without its dense values (its "
            "masked-LM head), except for task mlm. Leave out to evaluate without a language SFT."
        },
    )
    task_adapter: str | None = field(
        default=None,
        metadata={
            "help": "Task adapter folder (written by xlt-train --method madx), loaded with its head. "
            "Not combinable with task_sft or language_sft."
        },
    )
    language_adapter: str | None = field(
        default=None,
        metadata={
            "help": "Target-language adapter folder, stacked under the task adapter: Stack(language, "
            "task). For task mlm, evaluated alone. Not combinable with task_sft or language_sft."
        },
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Tokenizer folder or hub id; defaults to model_name_or_path."}
    )
    max_seq_length: int | None = field(
        default=None,
        metadata={
            "help": "Maximum length in tokens; words beyond it count as errors. Defaults to the "
            f"training length of the task SFT or task adapter, or {DEFAULT_MAX_SEQ_LENGTH} without one."
        },
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate only the first N records of the test file."}
    )
    batch_size: int = field(default=32, metadata={"help": "Number of sentences or pairs per batch."})
    seed: int = field(default=42, metadata={"help": "Random seed, set before the model is built."})
    device: str | None = field(
        default=None, metadata={"help": "Torch device, e.g. cpu or cuda:0; defaults to CUDA when available."}
    )
    predictions_file: str | None = field(
        default=None,
        metadata={"help": "Optional JSON-lines file receiving one prediction row per test record."},
    )
    bf16: bool = field(
        default=False,
        metadata={
            "help": "Run the forward passes under bfloat16 autocast (weights stay float32). Faster "
            "on CPUs with bfloat16 instructions and on recent GPUs; scores may differ slightly."
        },
    )
    ner_type_map: str | None = field(
        default=None,
        metadata={"help": "NER: entity type map as JSON; default maps DATE and MISC to O."},
    )
    nli_format: str = field(
        default=AUTO_FORMAT,
        metadata={"help": "NLI: file format (americasnli, textfooler, cad) or auto."},
    )

    def __post_init__(self):
        if self.task is not None and self.task not in TASK_NAMES:
            raise ValueError(f"task must be one of {', '.join(TASK_NAMES)}, got {self.task!r}")
        if self.uses_adapters and (self.task_sft or self.language_sft):
            raise ValueError(
                "task_adapter and language_adapter cannot be combined with task_sft or language_sft; "
                "evaluate SFTs and adapters in separate runs"
            )
        if self.task is None and self.task_sft is None and self.task_adapter is None:
            raise ValueError(
                "give task, task_sft or task_adapter: the task cannot be determined otherwise"
            )
        check_language_code("language", self.language)
        check_positive("max_seq_length", self.max_seq_length, optional=True)
        check_positive("max_eval_samples", self.max_eval_samples, optional=True)
        check_positive("batch_size", self.batch_size)
        parse_type_map(self.ner_type_map)

    def reader_options(self) -> dict[str, Any]:
        return {"ner_type_map": parse_type_map(self.ner_type_map), "nli_format": self.nli_format}

    @property
    def uses_adapters(self) -> bool:
        return bool(self.task_adapter or self.language_adapter)

    @property
    def task_module(self) -> str | None:
        """The task SFT or task adapter, whichever is given."""
        return self.task_sft or self.task_adapter


def task_record_of(sft: SFT, path: str) -> dict[str, Any]:
    """Return the task record that `xlt-train` stored in an SFT's config (empty if absent)."""
    record = sft.config.training_arguments.get("task") if sft.config is not None else None
    if record is None:
        logger.warning("%s: the SFT config records no task; using the given task options", path)
        return {}
    return record


def resolve_task(args: EvaluateArguments, task_record: dict[str, Any]) -> str:
    """Return the task name from the arguments and the task module, rejecting a disagreement."""
    recorded = task_record.get("task")
    if args.task and recorded and args.task != recorded:
        raise ValueError(
            f"task={args.task!r} but the task module {args.task_module} was trained for {recorded!r}"
        )
    task = args.task or recorded
    if task is None:
        raise ValueError(f"the task module {args.task_module} records no task; pass --task")
    return task


def adapter_task_record(config: MadxConfig, path: str) -> dict[str, Any]:
    """Return the task record that `xlt-train` stored in an adapter's config (empty if absent)."""
    record = config.training_arguments.get("task")
    if record is None:
        logger.warning("%s: the adapter config records no task; using the given task options", path)
        return {}
    return record


def check_head_is_trained(new_parameter_names: list[str], provided: set[str], task: str) -> None:
    """Raise if a newly initialised head parameter gets no value from the applied SFTs or adapters."""
    missing = sorted(set(new_parameter_names) - provided)
    if missing:
        raise ValueError(
            f"the {task} model has newly initialised parameters that no applied SFT or adapter "
            f"provides: {', '.join(missing)}; pass the task SFT or task adapter that was trained "
            "with this head"
        )


def apply_task_and_language_sfts(
    model: PreTrainedModel, task_sft: SFT | None, args: EvaluateArguments, task_name: str
) -> set[str]:
    """Apply the task SFT with its head and the language SFT; return the head parameters provided."""
    provided: set[str] = set()
    if task_sft is not None:
        task_sft.apply(model, with_abs=True)
        provided.update(task_sft.abs)
        logger.info("Applied task SFT %s with its head", args.task_sft)
    if args.language_sft:
        language_sft = SFT.from_pretrained(args.language_sft)
        with_abs = task_name == "mlm"
        language_sft.apply(model, with_abs=with_abs)
        if with_abs:
            provided.update(language_sft.abs)
        logger.info(
            "Applied language SFT %s %s its dense values", args.language_sft,
            "with" if with_abs else "without",
        )
    return provided


def load_task_and_language_adapters(
    model: PreTrainedModel, args: EvaluateArguments, task_name: str
) -> set[str]:
    """Load the adapters, activate `Stack(language, task)`, and return the head parameters provided.

    The language adapter keeps the name it was trained under (its language code) and the task
    adapter its task name. A language adapter brings its head only for task mlm, as a language
    SFT brings its dense values.
    """
    init_adapters(model)
    provided: set[str] = set()
    language_name = task_adapter_name = None
    if args.language_adapter:
        language_config = read_adapter_config(args.language_adapter, expected_kind="language")
        language_name = language_config.adapter_name
        if language_config.language != args.language:
            logger.info(
                "Language adapter %s was trained on %s text, evaluated on %s", args.language_adapter,
                language_config.language, args.language,
            )
        with_head = task_name == "mlm"
        load_adapter_module(
            model, args.language_adapter, load_as=language_name, expected_kind="language", with_head=with_head
        )
        if with_head:
            provided.update(language_config.head_parameter_names)
    if args.task_adapter:
        task_config = read_adapter_config(args.task_adapter, expected_kind="task")
        task_adapter_name = task_config.adapter_name
        if task_adapter_name == language_name:
            raise ValueError(
                f"the task adapter {args.task_adapter} and the language adapter {args.language_adapter} "
                f"are both named {task_adapter_name!r}; adapter names in one model must differ"
            )
        load_adapter_module(model, args.task_adapter, load_as=task_adapter_name, expected_kind="task", with_head=True)
        provided.update(task_config.head_parameter_names)
    activate(model, language_name, task_adapter_name)
    return provided


def write_predictions(path: str, rows: list[dict[str, Any]]) -> None:
    """Write one JSON object per line to `path` atomically."""
    with atomic_open(path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()

    # Parse.
    parser = HfArgumentParser(
        (EvaluateArguments,), description="Evaluate a base model with SFTs or adapters on a test file."
    )
    (args,), _ = parse_arguments(parser, argv)

    # Log.
    setup_logging(logging.INFO)

    # Seed.
    set_seed(args.seed)

    # Task, from the arguments and the task SFT's or task adapter's config; then the data.
    task_sft = SFT.from_pretrained(args.task_sft) if args.task_sft else None
    if task_sft is not None:
        task_record = task_record_of(task_sft, args.task_sft)
    elif args.task_adapter:
        task_adapter_config = read_adapter_config(args.task_adapter, expected_kind="task")
        task_record = adapter_task_record(task_adapter_config, args.task_adapter)
    else:
        task_record = {}
    task_name = resolve_task(args, task_record)
    task_options = TaskArguments.from_dict(task_record)
    max_seq_length = args.max_seq_length or task_record.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH
    tokenizer = load_tokenizer(args.tokenizer_name_or_path or args.model_name_or_path)
    task = build_task(task_name, tokenizer, max_seq_length, task_options)
    records = read_records(task, [args.test_file], args.max_eval_samples, args.reader_options())

    # Model: base checkpoint, then the task module with its head and the language module without
    # its head (SFTs applied to the weights, or adapters stacked).
    loaded = task.build_model(args.model_name_or_path)
    device = select_device(args.device)
    model = loaded.model.to(device)
    if args.uses_adapters:
        provided = load_task_and_language_adapters(model, args, task_name)
        model.to(device)
    else:
        provided = apply_task_and_language_sfts(model, task_sft, args, task_name)
    check_head_is_trained(loaded.new_parameter_names, provided, task_name)

    # Evaluate.
    device_type = next(model.parameters()).device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=args.bf16):
        metrics, rows = task.evaluate(model, records, args.batch_size)
    logger.info("%s on %s: %s", task_name, args.language, metrics)

    # Write.
    if args.predictions_file:
        write_predictions(args.predictions_file, rows)
    write_json_atomic(
        args.output_file,
        {
            "task": task_name,
            "language": args.language,
            "metrics": metrics,
            "num_examples": len(records),
            "base_model": describe_model_folder(args.model_name_or_path),
            "tokenizer": args.tokenizer_name_or_path or args.model_name_or_path,
            "task_sft": describe_sft_folder(args.task_sft) if args.task_sft else None,
            "language_sft": describe_sft_folder(args.language_sft) if args.language_sft else None,
            "task_adapter": describe_adapter_folder(args.task_adapter) if args.task_adapter else None,
            "language_adapter": (
                describe_adapter_folder(args.language_adapter) if args.language_adapter else None
            ),
            "active_adapters": str(model.active_adapters) if args.uses_adapters else None,
            "task_options": task.config_record(),
            "data": describe_file(args.test_file),
            "arguments": asdict(args),
            "seed": args.seed,
            "device": str(next(model.parameters()).device),
            "git": repository_state(),
            "packages": {
                **package_versions(),
                **({"adapters": metadata.version("adapters")} if args.uses_adapters else {}),
            },
            "wall_time_seconds": round(time.monotonic() - started, 3),
        },
    )
    logger.info("Wrote %s", args.output_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
