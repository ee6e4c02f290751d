import pytest
from transformers import HfArgumentParser

from sft import SftArguments


def test_parsed_by_hf_argument_parser():
    (arguments,) = HfArgumentParser(SftArguments).parse_args_into_dataclasses(
        [
            "--ft_params_num",
            "1000",
            "--n_ft_iterations",
            "2",
            "--full_ft_max_epochs_per_iteration",
            "0.5",
            "--sparse_ft_max_steps_per_iteration",
            "10",
            "--freeze_layer_norm",
            "--sparse_ft_method",
            "random",
        ]
    )
    assert arguments.ft_params_num == 1000
    assert arguments.full_ft_max_epochs_per_iteration == 0.5
    assert arguments.freeze_layer_norm is True
    assert arguments.sparse_ft_method == "random"


def test_every_field_has_help_text():
    import dataclasses

    for field in dataclasses.fields(SftArguments):
        assert field.metadata.get("help"), field.name


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        (
            {"sparse_ft_method": "LotteryTicket"},
            ValueError,
            r"sparse_ft_method must be one of \('lottery_ticket', 'random'\), got 'LotteryTicket'",
        ),
        ({"ft_params_num": 0}, ValueError, "ft_params_num must be at least 1, got 0"),
        ({"ft_params_num": 2.5}, TypeError, "ft_params_num must be an integer or None, got 2.5"),
        (
            {"ft_params_proportion": 1.5},
            ValueError,
            r"ft_params_proportion must be in \(0, 1\], got 1.5",
        ),
        ({"n_ft_iterations": 0}, ValueError, "n_ft_iterations must be at least 1"),
        (
            {"full_ft_max_epochs_per_iteration": 0},
            ValueError,
            "full_ft_max_epochs_per_iteration must be positive",
        ),
        (
            {"sparse_ft_min_steps_per_iteration": 10, "sparse_ft_max_steps_per_iteration": 5},
            ValueError,
            r"sparse_ft_min_steps_per_iteration \(10\) must not exceed sparse_ft_max_steps_per_iteration \(5\)",
        ),
        ({"full_l1_reg": -1.0}, ValueError, "full_l1_reg must be a non-negative number"),
        ({"sparse_l1_reg": float("inf")}, TypeError, "sparse_l1_reg must be a finite number"),
        ({"freeze_decoder": "yes"}, TypeError, "freeze_decoder must be True or False"),
    ],
)
def test_invalid_values_name_field_and_value(values, error, message):
    with pytest.raises(error, match=message):
        SftArguments(**values)


def test_budget_from_proportion_or_number():
    assert SftArguments(ft_params_proportion=0.1).num_tunable_entries(1005) == 100
    assert SftArguments(ft_params_num=7, ft_params_proportion=0.5).num_tunable_entries(1000) == 7


def test_budget_larger_than_model_is_rejected():
    with pytest.raises(ValueError, match="only 10 maskable entries"):
        SftArguments(ft_params_num=11).num_tunable_entries(10)


def test_budget_smaller_than_iterations_is_rejected():
    with pytest.raises(ValueError, match="smaller than n_ft_iterations"):
        SftArguments(ft_params_num=2, n_ft_iterations=3).num_tunable_entries(100)
