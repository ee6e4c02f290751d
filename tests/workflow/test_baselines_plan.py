"""The plan's MAD-X modules and the SFTs that the mask-overlap analysis compares, on the tiny config."""

from __future__ import annotations

import copy

import pytest
from workflow_helpers import load_config, make_plan

from xlt.workflow.plan import PlanError


@pytest.fixture
def tiny_config() -> dict:
    return copy.deepcopy(load_config("tiny"))


def test_madx_modules_live_under_adapters(tiny_config):
    plan = make_plan(tiny_config)

    modules = plan.evaluation_modules("pos", "madx", "mt", 1)

    assert modules["language_module"] == "results/tiny/adapters/language/tiny/madx/mt/seed1"
    assert modules["task_module"] == "results/tiny/adapters/task/pos/madx/madx/seed1"
    assert ("tiny", "madx", "en", 1) in plan.language_module_jobs()


def test_madx_row_states_its_budget(tiny_config):
    plan = make_plan(tiny_config)

    method = plan.methods["madx"]

    assert method.label == "MAD-X"
    assert "6,474" in method.note
    assert "12,934" in method.note
    assert plan.variant("language", "madx").args["adapter_reduction_factor"] == 0.7
    assert plan.variant("task", "madx").args["adapter_reduction_factor"] == 0.32


def test_madx_evaluates_every_target(tiny_config):
    plan = make_plan(tiny_config)

    targets = {(task, target) for task, method, target, _seed in plan.evaluations() if method == "madx"}

    assert targets == {(task, target) for task, setup in plan.tasks.items() for target in setup.targets}


def test_adapter_variants_cannot_compose_with_sfts(tiny_config):
    tiny_config["methods"]["mixed"] = {"label": "mixed", "language": "lt_sft", "task": "madx"}

    with pytest.raises(PlanError, match="adapter variants compose only with adapter variants"):
        make_plan(tiny_config)


def test_mask_overlap_modules_of_tiny_config(tiny_config):
    plan = make_plan(tiny_config)

    language_sfts, task_sfts = plan.mask_overlap_modules()

    languages = [path.split("/")[-2] for path in language_sfts]
    assert languages == sorted(["en", "mt", "fo", "hau", "yor", "gn", "quy"])  # bxr has no text
    assert all(path.startswith("results/tiny/sfts/language/tiny/lt_sft/") for path in language_sfts)
    assert all(path.endswith("/seed1") for path in language_sfts)
    assert task_sfts == [f"results/tiny/sfts/task/{task}/lt_sft/lt_sft/seed1" for task in ("pos", "dp", "ner", "nli")]


def test_mask_overlap_skips_non_lt_sft_methods(tiny_config):
    tiny_config["methods"] = {
        "random": tiny_config["methods"]["random"],
        "lt_sft_no_l1": tiny_config["methods"]["lt_sft_no_l1"],
    }
    plan = make_plan(tiny_config)

    language_sfts, task_sfts = plan.mask_overlap_modules()

    assert all("/lt_sft_no_l1/" in path for path in language_sfts)
    assert task_sfts == ["results/tiny/sfts/task/pos/lt_sft/lt_sft_no_l1/seed1"]


def test_mask_overlap_needs_an_lt_sft_method(tiny_config):
    tiny_config["methods"] = {"madx": tiny_config["methods"]["madx"]}
    tiny_config.pop("sweep")
    plan = make_plan(tiny_config)

    with pytest.raises(PlanError, match="analysis.mask_overlap needs a method"):
        plan.mask_overlap_modules()
