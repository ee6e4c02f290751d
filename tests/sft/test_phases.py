import pytest

from sft.phases import phase_num_steps, update_steps_per_epoch


@pytest.mark.parametrize(
    ("min_steps", "max_steps", "max_epochs", "steps_per_epoch", "expected"),
    [
        (None, 100, None, None, 100),  # steps only
        (None, None, 2, 30, 60),  # epochs only
        (None, 50, 2, 30, 50),  # the step limit comes first
        (None, 100, 2, 30, 60),  # the epoch limit comes first
        (80, 100, 2, 30, 80),  # the epoch limit is below the minimum
        (40, 100, 2, 30, 60),  # the minimum is already met
        (None, None, 0.5, 7, 4),  # fractional epochs round up
        (500, None, 1, 3, 500),  # minimum without a step limit
    ],
)
def test_phase_num_steps(min_steps, max_steps, max_epochs, steps_per_epoch, expected):
    assert phase_num_steps(min_steps, max_steps, max_epochs, steps_per_epoch) == expected


def test_phase_without_limits_is_rejected():
    with pytest.raises(ValueError, match="maximum number of steps or epochs"):
        phase_num_steps(None, None, None, 10)


def test_epochs_without_known_length_are_rejected():
    with pytest.raises(ValueError, match="known length"):
        phase_num_steps(None, None, 1.0, None)


@pytest.mark.parametrize(
    ("num_batches", "accumulation", "expected"),
    [(10, 1, 10), (10, 2, 5), (10, 3, 4), (1, 4, 1)],
)
def test_update_steps_per_epoch(num_batches, accumulation, expected):
    assert update_steps_per_epoch(num_batches, accumulation) == expected
