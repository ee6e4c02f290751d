"""The tasks of the experiments: masked-LM, POS tagging, dependency parsing, NER and NLI."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from .arguments import TaskArguments
from .base import LoadedModel, Task
from .masked_lm import MaskedLmTask
from .nli import NliTask
from .parsing import DependencyParsingTask
from .tagging import NerTask, PosTask

# Task classes by the name used on the command line and in SFT configs.
TASKS: dict[str, type[Task]] = {
    task.name: task for task in (MaskedLmTask, PosTask, DependencyParsingTask, NerTask, NliTask)
}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)


def get_task_class(name: str) -> type[Task]:
    """Return the task class registered under `name`."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"task {name!r} is not supported; use one of {', '.join(TASK_NAMES)}") from None


def build_task(
    name: str,
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    options: TaskArguments | None = None,
) -> Task:
    """Create the task `name` with a tokenizer, a maximum sequence length and task options."""
    return get_task_class(name)(tokenizer, max_seq_length, options)


__all__ = [
    "TASKS", "TASK_NAMES", "LoadedModel", "Task", "TaskArguments", "build_task", "get_task_class",
]
