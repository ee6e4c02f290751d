"""Multi-source task modules in the experiment plan: sources, held-out targets, paths, arguments."""

from __future__ import annotations

import copy
import json
import shlex

import pytest
from workflow_helpers import load_config, make_plan

from xlt.workflow.multisource_plan import NO_HELD_OUT
from xlt.workflow.plan import PlanError, cli_arguments

METHOD = "lt_sft_multisource"
UD = "resources/github/UniversalDependencies"


@pytest.fixture
def tiny_config() -> dict:
    return copy.deepcopy(load_config("tiny"))


def test_sources_resolve_to_treebank_files(tiny_config):
    sources = make_plan(tiny_config).multisource_setup("pos").sources

    assert [source.language for source in sources] == ["en", "mt", "fo"]
    english, maltese, faroese = sources
    assert english.train_files == (f"{UD}/UD_English-EWT/en_ewt-ud-train.conllu",)
    assert english.validation_files == (f"{UD}/UD_English-EWT/en_ewt-ud-dev.conllu",)
    assert maltese.train_files == (f"{UD}/UD_Maltese-MUDT/mt_mudt-ud-train.conllu",)
    # Faroese has two treebanks; only FarPaHC has a train split.
    assert faroese.dataset == "UD_Faroese-FarPaHC"
    assert faroese.validation_files == (f"{UD}/UD_Faroese-FarPaHC/fo_farpahc-ud-dev.conllu",)


def test_target_that_is_a_source_is_held_out(tiny_config):
    plan = make_plan(tiny_config)

    maltese = plan.evaluation_modules("pos", METHOD, "mt", 1)
    buryat = plan.evaluation_modules("pos", METHOD, "bxr", 1)
    faroese = plan.evaluation_modules("dp", METHOD, "fo", 1)

    assert (
        maltese["task_module"]
        == "results/tiny/sfts/task-multisource/pos/lt_sft/lt_sft/held-out-mt/seed1"
    )
    assert maltese["language_module"] == "results/tiny/sfts/language/tiny/lt_sft/mt/seed1"
    # Buryat is no source (no text), so it shares the module trained on every source.
    assert buryat["task_module"].endswith(f"/pos/lt_sft/lt_sft/held-out-{NO_HELD_OUT}/seed1")
    assert faroese["task_module"].endswith("/dp/lt_sft/lt_sft/held-out-fo/seed1")


def test_task_arguments_leave_out_the_target(tiny_config):
    plan = make_plan(tiny_config)

    args = plan.multisource_task_args("pos", "lt_sft", "lt_sft", "mt", 1)

    assert sorted(args["sources"]) == ["en", "fo"]
    assert "language" not in args
    assert "train_files" not in args
    english = args["sources"]["en"]
    assert english["language_sft"] == "results/tiny/sfts/language/tiny/lt_sft/en/seed1"
    assert english["max_train_samples"] == 24
    assert english["max_eval_samples"] == 8
    assert (
        args["sources"]["fo"]["language_sft"] == "results/tiny/sfts/language/tiny/lt_sft/fo/seed1"
    )
    assert args["seed"] == 1
    assert args["task"] == "pos"


def test_sources_option_round_trips_as_json(tiny_config):
    plan = make_plan(tiny_config)
    args = plan.multisource_task_args("dp", "lt_sft", "lt_sft", NO_HELD_OUT, 1)

    words = shlex.split(cli_arguments(args))
    sources = json.loads(words[words.index("--sources") + 1])

    assert sources == args["sources"]
    assert sorted(sources) == ["en", "fo", "mt"]


def test_language_jobs_cover_every_source(tiny_config):
    tiny_config["methods"] = {
        METHOD: {"language": "lt_sft", "task": "lt_sft", "multi_source": True, "tasks": ["pos"]}
    }
    tiny_config.pop("sweep")
    tiny_config["analysis"]["mask_overlap"] = False
    tiny_config["tasks"]["pos"]["targets"] = ["bxr"]
    plan = make_plan(tiny_config)

    jobs = plan.language_module_jobs()

    assert {(language, seed) for _base, _variant, language, seed in jobs} == {
        ("en", 1),
        ("en", 2),
        ("mt", 1),
        ("mt", 2),
        ("fo", 1),
        ("fo", 2),
    }


def test_base_model_sees_source_files(tiny_config):
    plan = make_plan(tiny_config)

    assert "fo" in plan.base_model_languages("tiny")
    files = plan.base_model_task_files("tiny", "pos")
    assert f"{UD}/UD_Faroese-FarPaHC/fo_farpahc-ud-train.conllu" in files
    assert f"{UD}/UD_Maltese-MUDT/mt_mudt-ud-dev.conllu" in files
    registry_files = plan.registry_files()
    assert (
        "github/UniversalDependencies/UD_Faroese-FarPaHC/fo_farpahc-ud-dev.conllu" in registry_files
    )


def test_sources_unused_without_multi_source_method(tiny_config):
    del tiny_config["methods"][METHOD]
    tiny_config["tasks"]["pos"]["targets"] = ["bxr"]
    tiny_config["tasks"]["dp"]["targets"] = ["fo"]
    plan = make_plan(tiny_config)

    assert not plan.is_multi_source("pos")
    assert "FarPaHC" not in " ".join(plan.base_model_task_files("tiny", "pos"))


def test_default_note_names_sources(tiny_config):
    note = make_plan(tiny_config).methods[METHOD].note

    assert "pos: en, mt, fo" in note
    assert "left out" in note


def test_plan_dict_records_sources(tiny_config):
    summary = make_plan(tiny_config).to_dict()

    method = next(m for m in summary["methods"] if m["name"] == METHOD)
    assert method["multi_source"] is True
    assert summary["tasks"]["pos"]["sources"]["datasets"]["fo"] == "UD_Faroese-FarPaHC"


def test_mask_overlap_skips_multi_source_rows(tiny_config):
    tiny_config["methods"] = {
        METHOD: {"language": "lt_sft", "task": "lt_sft", "multi_source": True, "tasks": ["pos"]},
        "lt_sft": {"language": "lt_sft", "task": "lt_sft"},
    }
    plan = make_plan(tiny_config)

    _language_sfts, task_sfts = plan.mask_overlap_modules()

    assert all("task-multisource" not in path for path in task_sfts)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["methods"][METHOD].update(tasks=["ner"]), "needs tasks.ner.sources"),
        (
            lambda c: c["tasks"]["pos"]["sources"].update(languages=["en", "bxr"]),
            "bxr have no text",
        ),
        (
            lambda c: c["tasks"]["pos"]["sources"].update(languages=["en", "hsb"]),
            "hsb has no ud dataset with a train split",
        ),
        (
            lambda c: c["tasks"]["pos"]["sources"].update(languages=["en", "xx"]),
            "'xx' is not in the catalogue",
        ),
        (lambda c: c["tasks"]["pos"]["sources"].update(upsampling={"de": 2}), "not sources: de"),
        (
            lambda c: c["tasks"]["pos"]["sources"].update(datasets={"fo": "UD_Faroese-OFT"}),
            "fo has no ud dataset UD_Faroese-OFT with a train split",
        ),
        (lambda c: c["methods"][METHOD].update(task="madx", language="madx"), "SFT method"),
    ],
)
def test_invalid_multi_source_settings(tiny_config, change, message):
    change(tiny_config)
    with pytest.raises(PlanError, match=message):
        make_plan(tiny_config)
