"""Length of the training phases of sparse fine-tuning."""

from __future__ import annotations

import math


def update_steps_per_epoch(num_batches: int, gradient_accumulation_steps: int) -> int:
    """Return the optimizer steps in one epoch of `num_batches` batches per process.

    This matches transformers.Trainer: the last, partial accumulation also makes a step.
    `num_batches` is the length of one process's data loader, which already accounts for
    the number of processes.
    """
    return max(math.ceil(num_batches / gradient_accumulation_steps), 1)


def phase_num_steps(
    min_steps: int | None,
    max_steps: int | None,
    max_epochs: float | None,
    steps_per_epoch: int | None,
) -> int:
    """Return the number of optimizer steps of one phase.

    With only `max_steps`, the phase runs that many steps. With `max_epochs`, it runs
    ceil(max_epochs · steps_per_epoch) steps, but at most `max_steps` when that is also
    set (whichever limit comes first), and at least `min_steps` when the epoch limit
    amounts to fewer steps.
    """
    if max_epochs is None:
        if max_steps is None:
            raise ValueError("a phase needs a maximum number of steps or epochs")
        return max_steps
    if steps_per_epoch is None:
        raise ValueError(
            "an epoch limit needs a training set with a known length; set a maximum number of "
            "steps per iteration instead"
        )
    epoch_steps = math.ceil(max_epochs * steps_per_epoch)
    if max_steps is not None and max_steps <= epoch_steps:
        return max_steps
    if min_steps is not None and epoch_steps < min_steps:
        return min_steps
    return max(epoch_steps, 1)
