"""The experiment plan: methods, modules, paths and config errors, on the real catalogue."""

from __future__ import annotations

import copy

import pytest

from xlt.workflow.plan import PlanError, cli_arguments, merge

from workflow_helpers import load_config, make_plan


@pytest.fixture
def tiny_config() -> dict:
    return copy.deepcopy(load_config("tiny"))


def test_tiny_plan_evaluations_cover_methods_and_targets(tiny_config):
    plan = make_plan(tiny_config)
    evaluations = set(plan.evaluations())

    assert ("pos", "lt_sft", "mt", 1) in evaluations
    assert ("pos", "lt_sft", "mt", 2) in evaluations
    assert ("pos", "random", "mt", 2) not in evaluations  # random uses one seed
    assert ("dp", "lt_sft_no_l1", "mt", 1) not in evaluations  # restricted to pos
    sweep = [e for e in evaluations if plan.methods[e[1]].sweep_proportion is not None]
    assert {e[0] for e in sweep} == {"pos"}
    assert len({e[1] for e in sweep}) == 2


def test_composed_evaluation_uses_target_language_sft(tiny_config):
    plan = make_plan(tiny_config)

    modules = plan.evaluation_modules("pos", "lt_sft", "mt", 1)

    assert modules["language_module"] == "results/tiny/sfts/language/tiny/lt_sft/mt/seed1"
    assert modules["task_module"] == "results/tiny/sfts/task/pos/lt_sft/lt_sft/seed1"


def test_task_only_and_full_ft_skip_target_sft(tiny_config):
    plan = make_plan(tiny_config)

    task_only = plan.evaluation_modules("pos", "task_sft_only", "mt", 1)
    full = plan.evaluation_modules("pos", "full_ft", "mt", 1)

    assert task_only["language_module"] is None
    assert task_only["task_module"] == "results/tiny/sfts/task/pos/lt_sft/lt_sft/seed1"
    assert full["language_module"] is None
    assert full["task_module"] == "results/tiny/sfts/task/pos/dense/none/seed1"


def test_language_without_text_is_reported(tiny_config):
    plan = make_plan(tiny_config)

    assert plan.evaluation_modules("pos", "lt_sft", "bxr", 1)["language_module"] is None
    assert ("pos", "lt_sft", "bxr") in plan.missing_language_modules()
    assert ("pos", "full_ft", "bxr") not in plan.missing_language_modules()


def test_language_jobs_include_source_language(tiny_config):
    plan = make_plan(tiny_config)
    jobs = plan.language_module_jobs()

    assert ("tiny", "lt_sft", "en", 1) in jobs
    assert ("tiny", "lt_sft", "en", 2) in jobs
    assert ("tiny", "lt_sft_no_l1", "en", 1) in jobs
    assert ("tiny", "lt_sft", "bxr", 1) not in jobs
    assert all(variant != "dense" or seed == 1 for _base, variant, _lang, seed in jobs)


def test_shared_corpus_language_maps_to_owner(tiny_config):
    tiny_config["tasks"]["pos"]["targets"] = ["wo"]
    plan = make_plan(tiny_config)

    module = plan.evaluation_modules("pos", "lt_sft", "wo", 1)["language_module"]

    assert module.endswith("/lt_sft/wol/seed1")


def test_variant_inheritance_merges_args(tiny_config):
    plan = make_plan(tiny_config)

    args = plan.language_args("lt_sft_no_l1", "mt", 1)

    assert args["full_l1_reg"] == 0.0
    assert args["freeze_layer_norm"] is True  # from language_modules.args
    assert args["task"] == "mlm"
    assert args["seed"] == 1


def test_sweep_variant_overrides_proportion(tiny_config):
    plan = make_plan(tiny_config)
    name = plan.sweep_variant_name(0.02)

    args = plan.task_args("pos", name, 1)

    assert args["ft_params_proportion"] == 0.02
    assert args["ft_params_num"] is None


def test_unknown_variant_raises(tiny_config):
    tiny_config["methods"]["lt_sft"]["task"] = "missing"

    with pytest.raises(PlanError, match="unknown task variant 'missing'"):
        make_plan(tiny_config)


def test_target_without_test_split_raises(tiny_config):
    tiny_config["tasks"]["ner"]["targets"] = ["mt"]

    with pytest.raises(PlanError, match="language mt has no ner test split"):
        make_plan(tiny_config)


def test_inheritance_loop_raises(tiny_config):
    tiny_config["variants"]["language"]["a"] = {"inherits": "b"}
    tiny_config["variants"]["language"]["b"] = {"inherits": "a"}

    with pytest.raises(PlanError, match="inheritance loop"):
        make_plan(tiny_config)


def test_compose_without_language_raises(tiny_config):
    tiny_config["methods"]["full_ft"]["compose"] = True

    with pytest.raises(PlanError, match="compose needs a language variant"):
        make_plan(tiny_config)


def test_merge_is_deep_and_copies():
    base = {"a": {"x": 1, "y": [1]}, "b": 2}

    merged = merge(base, {"a": {"y": [2]}, "c": 3})

    assert merged == {"a": {"x": 1, "y": [2]}, "b": 2, "c": 3}
    merged["a"]["x"] = 5
    assert base["a"]["x"] == 1


def test_cli_arguments_rendering():
    rendered = cli_arguments(
        {"a": 1, "flag": True, "files": ["x y", "z"], "skip": None, "empty": [], "map": {"K": "O"}}
    )

    assert rendered == "--a 1 --flag True --files 'x y' z --map '{\"K\": \"O\"}'"


@pytest.mark.parametrize("name", ["tiny"])
def test_shipped_configs_build_plans(name):
    plan = make_plan(load_config(name))

    assert plan.evaluations()


def test_sweep_point_at_base_k_reuses_variant(tiny_config):
    tiny_config["sweep"]["proportions"] = [0.02, 0.1]  # 0.1 is task_modules' proportion
    plan = make_plan(tiny_config)

    reused = plan.methods[plan.sweep_variant_name(0.1)]
    swept = plan.methods[plan.sweep_variant_name(0.02)]

    assert reused.task_variant == "lt_sft"
    assert swept.task_variant == plan.sweep_variant_name(0.02)


def test_shared_language_seed_reuses_modules(tiny_config):
    tiny_config["language_modules"]["seed"] = 7
    plan = make_plan(tiny_config)

    first = plan.evaluation_modules("pos", "lt_sft", "mt", 1)["language_module"]
    second = plan.evaluation_modules("pos", "lt_sft", "mt", 2)["language_module"]
    jobs = plan.language_module_jobs()

    assert first == second == "results/tiny/sfts/language/tiny/lt_sft/mt/seed7"
    assert {seed for *_rest, seed in jobs} == {7}
    assert plan.task_module("pos", "lt_sft", "lt_sft", 2).endswith("/seed2")
