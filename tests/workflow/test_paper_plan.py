"""The paper-scale config: its plan, hub datasets, Wikipedia corpora and the data-source check."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections import Counter

import pytest
from workflow_helpers import REPO_ROOT, load_config, make_plan

from xlt.data.registry import DEFAULT_EXTRA_REGISTRY, DEFAULT_REGISTRY, read_registries
from xlt.workflow.plan import SFT_METHODS, PlanError

UD_TARGETS = ["ar", "bm", "bxr", "yue", "zh", "myv", "fo", "kpv", "olo", "mt", "gv", "sa", "hsb", "ug"]
NER_TARGETS = ["hau", "ibo", "lug", "luo", "pcm", "swa", "wol", "yor"]
NLI_TARGETS = ["aym", "bzd", "cni", "gn", "hch", "nah", "oto", "quy", "shp", "tar"]
MULTI_NLI = "resources/hub/nyu-mll/multi_nli"


@pytest.fixture(scope="module")
def paper_config() -> dict:
    return load_config("paper")


@pytest.fixture(scope="module")
def plan(paper_config):
    return make_plan(paper_config)


@pytest.fixture(scope="module")
def registry():
    return read_registries(REPO_ROOT / DEFAULT_REGISTRY, REPO_ROOT / DEFAULT_EXTRA_REGISTRY)


def test_targets_and_base_models(plan):
    assert list(plan.tasks["pos"].targets) == UD_TARGETS
    assert list(plan.tasks["dp"].targets) == UD_TARGETS
    assert list(plan.tasks["ner"].targets) == NER_TARGETS
    assert list(plan.tasks["nli"].targets) == NLI_TARGETS
    assert {task: setup.base_model for task, setup in plan.tasks.items()} == {
        "pos": "mbert", "dp": "mbert", "ner": "mbert", "nli": "xlmr",
    }
    assert plan.base_models["mbert"].path == "bert-base-multilingual-cased"
    assert plan.base_models["xlmr"].path == "xlm-roberta-base"
    assert plan.tasks["pos"].test_files["ar"].endswith("UD_Arabic-PADT/ar_padt-ud-test.conllu")
    assert plan.tasks["dp"].test_files["zh"].endswith("UD_Chinese-GSD/zh_gsd-ud-test.conllu")


def test_nli_trains_on_multinli_export(plan):
    assert plan.tasks["nli"].train_files == (f"{MULTI_NLI}/train.tsv",)
    assert plan.tasks["nli"].validation_files == (f"{MULTI_NLI}/validation_matched.tsv",)


def test_corpora_come_from_wikipedia_where_one_exists(plan):
    assert plan.corpus_source("hau") == "wikipedia"
    assert plan.corpus("yue") == "resources/corpora/wikipedia-20231101/yue.txt"
    assert plan.wikipedia_export("yue") == "resources/hub/wikimedia/wikipedia/20231101/yue.txt"
    # Buryat has no text in the catalogue but a Wikipedia, so it gets a language SFT here.
    assert plan.corpus_source("bxr") == "wikipedia"
    assert plan.corpus_source("luo") == "catalogue"
    assert plan.corpus("luo") == "resources/corpora/luo.txt"
    assert plan.corpus_source("oto") is None
    # Wolof shares one corpus under two codes.
    assert plan.corpus("wo") == plan.corpus("wol")


def test_only_otomi_lacks_a_language_sft(plan):
    missing = plan.missing_language_modules()

    assert {target for _task, _method, target in missing} == {"oto"}
    assert ("nli", "lt_sft", "oto") in missing
    assert plan.evaluation_modules("nli", "lt_sft", "oto", 1)["language_module"] is None
    summary = plan.to_dict()
    assert summary["corpora"]["source"] == "wikipedia"
    assert summary["corpora"]["languages"]["luo"] == "catalogue"
    assert summary["corpora"]["languages"]["en"] == "wikipedia"
    assert "oto" not in summary["corpora"]["languages"]


def test_language_sft_hyperparameters(plan):
    args = plan.language_args("lt_sft", "hau", 2)

    assert args["ft_params_num"] == 7667712
    assert (args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) == (4, 2)
    assert args["max_seq_length"] == 256
    assert args["learning_rate"] == 5.0e-5
    assert (args["full_l1_reg"], args["sparse_l1_reg"]) == (0.1, 0.1)
    for phase in ("full", "sparse"):
        assert args[f"{phase}_ft_max_epochs_per_iteration"] == 100
        assert args[f"{phase}_ft_min_steps_per_iteration"] == 10000
        assert args[f"{phase}_ft_max_steps_per_iteration"] == 100000
    assert args["freeze_layer_norm"] is True
    assert args["untie_embeddings"] is True
    assert args["freeze_decoder"] is True
    assert (args["eval_strategy"], args["eval_steps"]) == ("steps", 1000)
    assert (args["seed"], args["language"], args["task"]) == (2, "hau", "mlm")


@pytest.mark.parametrize("task", ["pos", "dp", "ner"])
def test_mbert_task_sft_hyperparameters(plan, task):
    args = plan.task_args(task, "lt_sft", 1)

    assert args["ft_params_num"] == 14155776
    assert args["per_device_train_batch_size"] == 8
    assert (args["full_ft_max_epochs_per_iteration"], args["sparse_ft_max_epochs_per_iteration"]) == (3, 10)
    assert args["learning_rate"] == 5.0e-5
    assert args["freeze_layer_norm"] is True
    assert args["eval_steps"] == 250


def test_nli_task_sft_hyperparameters(plan):
    args = plan.task_args("nli", "lt_sft", 1)

    assert args["ft_params_num"] == 14155776
    assert args["per_device_train_batch_size"] == 32
    assert (args["full_ft_max_epochs_per_iteration"], args["sparse_ft_max_epochs_per_iteration"]) == (5, 5)
    assert args["learning_rate"] == 2.0e-5
    assert args["freeze_layer_norm"] is True


def test_seeds_of_methods(plan):
    seeds = {name: method.seeds for name, method in plan.methods.items()}

    for name in ("lt_sft", "task_sft_only", "full_ft", "madx"):
        assert seeds[name] == (1, 2, 3), name
    for name in ("random", "dense_composition", "lt_sft_no_l1"):
        assert seeds[name] == (1,), name


def test_madx_note_matches_adapter_budget(plan):
    from transformers import BertConfig

    from xlt.madx.budget import adapter_budget

    # bert-base-multilingual-cased's config.json values; the hub is not reachable in tests.
    mbert = BertConfig(vocab_size=119547, max_position_embeddings=512, type_vocab_size=2)
    language = plan.variant("language", "madx").args
    task = plan.variant("task", "madx").args

    language_budget = adapter_budget(
        mbert, language["adapter_reduction_factor"], language["inv_adapter_reduction_factor"]
    )
    task_budget = adapter_budget(mbert, task["adapter_reduction_factor"])

    note = plan.methods["madx"].note
    assert f"{language_budget.language_adapter_entries:,}" in note
    assert f"{task_budget.task_adapter_entries:,}" in note
    assert language_budget.maskable_entries == 177262848


def test_hub_spec_only_for_nli(paper_config):
    config = copy.deepcopy(paper_config)
    config["tasks"]["pos"]["train"] = ["hub:nyu-mll/multi_nli:train"]
    with pytest.raises(PlanError, match="tasks.pos.train: 'hub:nyu-mll/multi_nli:train' is an NLI dataset"):
        make_plan(config)

    config = copy.deepcopy(paper_config)
    config["tasks"]["nli"]["validation"] = ["hub:nyu-mll/multi_nli:test"]
    with pytest.raises(PlanError, match="tasks.nli.validation: .* not a known hub dataset split"):
        make_plan(config)


def test_mirror_with_extra_files_is_rejected(paper_config, registry):
    config = copy.deepcopy(paper_config)
    config["data"]["mirror"] = "../shared/data"
    plan = make_plan(config)

    with pytest.raises(PlanError, match="not in the data mirror: github/UniversalDependencies/UD_Arabic-PADT"):
        plan.check_data_source(registry)


def test_download_and_mirror_configs_pass_check(plan, registry):
    plan.check_data_source(registry)
    make_plan(load_config("tiny")).check_data_source(registry)


def test_registry_files_of_paper(plan):
    files = plan.registry_files()

    assert "github/UniversalDependencies/UD_Arabic-PADT/ar_padt-ud-test.conllu" in files
    assert "github/UniversalDependencies/UD_English-EWT/en_ewt-ud-train.conllu" in files
    # Luo keeps its catalogue text; Hausa's catalogue text is replaced by its Wikipedia.
    assert "github/masakhane-io/lafand-mt/data/json_files/en-luo/train.json" in files
    assert "github/masakhane-io/masakhane-ner/text_by_language/hausa/hausa.txt" not in files
    assert "github/masakhane-io/masakhane-ner/data/hau/test.txt" in files


def test_tiny_corpora_keep_catalogue_paths():
    plan = make_plan(load_config("tiny"))

    assert plan.corpora["source"] == "catalogue"
    assert plan.corpus("mt") == "resources/corpora/mt.txt"
    assert plan.corpus_source("bxr") is None


def dry_run_job_counts(config: str, workdir) -> Counter:
    """Return the jobs per rule of `snakemake -n` for a config, in an empty working directory."""
    completed = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "-n", "--quiet", "rules",
            "--snakefile", str(REPO_ROOT / "workflow" / "Snakefile"),
            "--directory", str(workdir),
            "--configfile", str(REPO_ROOT / "configs" / f"{config}.yaml"),
        ],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    counts = Counter()
    for line in (completed.stdout + completed.stderr).splitlines():
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def test_paper_dry_run_lists_every_job(plan, tmp_path):
    counts = dry_run_job_counts("paper", tmp_path)

    language_jobs = plan.language_module_jobs()
    sft_language_jobs = [job for job in language_jobs if plan.variant("language", job[1]).method in SFT_METHODS]
    corpus_sources = Counter(plan.corpus_source(code) for code in plan.corpus_languages())
    assert counts["evaluate"] == len(plan.evaluations()) == 619
    assert counts["train_language_sft"] == len(sft_language_jobs)
    assert counts["train_language_adapter"] == len(language_jobs) - len(sft_language_jobs)
    assert counts["export_wikipedia"] == counts["build_wikipedia_corpus"] == corpus_sources["wikipedia"]
    assert counts["build_corpus"] == corpus_sources["catalogue"]
    assert counts["split_corpus"] == len(plan.corpus_languages())
    assert counts["export_hub_dataset"] == 2
    assert counts["task_table"] == 4
    assert counts["fetch_data_file"] == len(plan.registry_files())
    task_modules = {plan.evaluation_modules(*job)["task_module"] for job in plan.evaluations()}
    multisource = {module for module in task_modules if "/sfts/task-multisource/" in module}
    assert counts["train_multisource_task_sft"] == len(multisource) > 0
    assert counts["train_task_sft"] == sum("/sfts/" in module for module in task_modules - multisource)
    assert counts["train_task_adapter"] == sum("/adapters/" in module for module in task_modules)


def test_paper_lint_is_clean(tmp_path):
    completed = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "--lint",
            "--snakefile", str(REPO_ROOT / "workflow" / "Snakefile"),
            "--directory", str(tmp_path),
            "--configfile", str(REPO_ROOT / "configs" / "paper.yaml"),
        ],
        capture_output=True, text=True, check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Congratulations, your workflow is in a good condition!" in output, output
