"""Multi-source task modules in the experiment plan: the sources of a task and the held-out target.

A task's `sources` setting lists the source languages of its multi-source task modules. The
source language of the experiment (English) trains on the task's own train and validation
files; every other source on the train and dev splits of one of its catalogue datasets. A
method with `multi_source: true` evaluates each target with a task module trained on every
source except the target itself: one module per target that is also a source (leave one out),
and one shared module, trained on all sources, for the targets that are not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data.catalogue import Catalogue

# Path component of the multi-source task module that leaves no source out.
NO_HELD_OUT = "none"


class MultiSourcePlanError(ValueError):
    """Invalid multi-source settings of a task (raised as PlanError by the plan)."""


@dataclass(frozen=True)
class SourceSetup:
    """One source language of a task: the dataset it trains on and its files."""

    language: str
    dataset: str
    train_files: tuple[str, ...]
    validation_files: tuple[str, ...]


@dataclass(frozen=True)
class MultiSourceSetup:
    """The sources of one task's multi-source task modules and the settings they share."""

    sources: tuple[SourceSetup, ...]
    # Caps per source on the training and validation records; None leaves the xlt-train default.
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    # Source language -> how many times one epoch shows each of its training examples.
    upsampling: Mapping[str, int] = field(default_factory=dict)
    # Extra xlt-train arguments of the multi-source task modules, such as max_seq_length.
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return [source.language for source in self.sources]

    def held_out(self, target: str) -> str:
        """Return the source that the module evaluated on `target` leaves out, or NO_HELD_OUT."""
        return target if target in self.languages else NO_HELD_OUT

    def sources_without(self, held_out: str) -> list[SourceSetup]:
        """Return the sources of the module that leaves out `held_out` (a language or NO_HELD_OUT)."""
        if held_out != NO_HELD_OUT and held_out not in self.languages:
            raise MultiSourcePlanError(
                f"{held_out!r} is not a source; the sources are {', '.join(self.languages)}"
            )
        return [source for source in self.sources if source.language != held_out]

    def files(self) -> list[str]:
        """Return the training and validation files of every source."""
        return [
            path
            for source in self.sources
            for path in (*source.train_files, *source.validation_files)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "languages": self.languages,
            "datasets": {source.language: source.dataset for source in self.sources},
            "max_train_samples": self.max_train_samples,
            "max_eval_samples": self.max_eval_samples,
            "upsampling": dict(self.upsampling),
        }


def _source_dataset(
    catalogue: Catalogue, catalogue_task: str, language: str, chosen: str | None, where: str
):
    candidates = [d for d in catalogue[language].datasets_of(catalogue_task) if "train" in d.splits]
    if chosen is not None:
        candidates = [d for d in candidates if d.name == chosen]
    if not candidates:
        which = f" {chosen}" if chosen else ""
        raise MultiSourcePlanError(
            f"{where}: language {language} has no {catalogue_task} dataset{which} with a train "
            "split in the catalogue; remove it from the sources or add the data to the catalogue"
        )
    return candidates[0]


def read_multisource_setup(
    raw: Mapping[str, Any],
    where: str,
    catalogue: Catalogue,
    catalogue_task: str,
    source_language: str,
    source_files: tuple[Sequence[str], Sequence[str]],
    resource: Callable[[str], str],
) -> MultiSourceSetup:
    """Read a task's `sources` setting.

    `source_files` are the task's train and validation files, used for `source_language`.
    `resource` turns a catalogue path into a resource path. Raises MultiSourcePlanError naming
    `where` for an unknown language or dataset, or a language without train split.
    """
    languages = list(raw["languages"])
    chosen = raw.get("datasets", {})
    upsampling = raw.get("upsampling", {})
    for key, names in (("datasets", chosen), ("upsampling", upsampling)):
        unknown = sorted(set(names) - set(languages))
        if unknown:
            raise MultiSourcePlanError(
                f"{where}.{key} names languages that are not sources: {', '.join(unknown)}"
            )
    sources = []
    for language in languages:
        if language not in catalogue.languages:
            raise MultiSourcePlanError(f"{where}.languages: {language!r} is not in the catalogue")
        if language == source_language and language not in chosen:
            train_files, validation_files = source_files
            sources.append(
                SourceSetup(
                    language,
                    "task train and validation",
                    tuple(train_files),
                    tuple(validation_files),
                )
            )
            continue
        dataset = _source_dataset(catalogue, catalogue_task, language, chosen.get(language), where)
        validation = (resource(dataset.splits["dev"]),) if "dev" in dataset.splits else ()
        sources.append(
            SourceSetup(language, dataset.name, (resource(dataset.splits["train"]),), validation)
        )
    return MultiSourceSetup(
        sources=tuple(sources),
        max_train_samples=raw.get("max_train_samples"),
        max_eval_samples=raw.get("max_eval_samples"),
        upsampling=dict(upsampling),
        args=dict(raw.get("args", {})),
    )


def sources_argument(
    setup: MultiSourceSetup, held_out: str, language_sfts: Mapping[str, str | None]
) -> dict[str, dict[str, Any]]:
    """Return the `sources` mapping of xlt-train for the module that leaves out `held_out`.

    `language_sfts` maps each source language to the folder of its language SFT, or None.
    """
    argument = {}
    for source in setup.sources_without(held_out):
        settings: dict[str, Any] = {
            "train_files": list(source.train_files),
            "validation_files": list(source.validation_files),
            "language_sft": language_sfts[source.language],
        }
        if setup.max_train_samples is not None:
            settings["max_train_samples"] = setup.max_train_samples
        if setup.max_eval_samples is not None:
            settings["max_eval_samples"] = setup.max_eval_samples
        if source.language in setup.upsampling:
            settings["upsampling"] = setup.upsampling[source.language]
        argument[source.language] = settings
    return argument
