"""The language catalogue: per language, its task datasets and its masked-LM text sources.

The catalogue is a YAML file (`configs/data/languages.yaml`) with one entry per language code
under `languages:`. Paths are relative to the resources folder (or to a data mirror), in the
registry's form `github/<org>/<repo>/<path>`. An entry has these keys, all optional but `name`:

- `ud`, `ner`, `nli`: lists of datasets. Each has `dataset` (a name) and `splits` (split name to
  path, with the splits train, dev, test and sample). NER datasets add a `type_map` (entity type
  to "O" or a shared type), and NLI datasets a `format` (one of `NLI_FORMATS`).
- `text`: list of text sources, each with `path`, `reader` (one of `TEXT_READERS`), `options`
  (reader options), `lowercase` (lowercase the sentences) and `note`.
- `text_from`: the code of another language whose corpus this one shares (Wolof has `wo` in UD and
  `wol` in MasakhaNER). Such an entry has no `text` of its own.
- `text_note`: why text is missing, or what to know about it.

Paths are registered in `configs/data/registry.tsv` (the data mirror's files) or in the extra
registry `configs/data/registry-extra.tsv` (files outside the mirror, such as the Arabic and Chinese
UD test sets). Validate a catalogue and list what it covers with::

    python -m xlt.data.catalogue --root ../shared/data
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xlt.data.errors import DataFormatError
from xlt.data.ner import check_type_map
from xlt.data.nli import NLI_FORMATS
from xlt.data.registry import (
    DEFAULT_EXTRA_REGISTRY,
    DEFAULT_REGISTRY,
    Registry,
    read_registries,
)
from xlt.data.text import TEXT_READER_OPTIONS, TEXT_READERS

logger = logging.getLogger(__name__)

DEFAULT_CATALOGUE = Path("configs/data/languages.yaml")

TASKS: tuple[str, ...] = ("ud", "ner", "nli")
SPLITS: tuple[str, ...] = ("train", "dev", "test", "sample")
TEST_SPLIT = "test"

# Format of each task's files; NLI datasets name theirs, one of NLI_FORMATS.
TASK_FORMATS: dict[str, tuple[str, ...]] = {
    "ud": ("conllu",),
    "ner": ("conll",),
    "nli": NLI_FORMATS,
}

_LANGUAGE_KEYS = frozenset({"name", *TASKS, "text", "text_from", "text_note"})
_DATASET_KEYS = frozenset({"dataset", "splits", "format", "type_map", "note"})
_SOURCE_KEYS = frozenset({"path", "reader", "options", "lowercase", "note"})


@dataclass(frozen=True)
class Dataset:
    """One labelled dataset of a language: its task, name, file format and split files."""

    task: str
    name: str
    format: str
    splits: Mapping[str, str]
    type_map: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True)
class TextSource:
    """One raw-text file of a language's masked-LM corpus and the reader for it."""

    path: str
    reader: str
    options: Mapping[str, str] = field(default_factory=dict)
    lowercase: bool = False
    note: str | None = None


@dataclass(frozen=True)
class Language:
    """A catalogue entry: the datasets and text sources of one language code."""

    code: str
    name: str
    datasets: tuple[Dataset, ...] = ()
    text: tuple[TextSource, ...] = ()
    text_from: str | None = None
    text_note: str | None = None

    def datasets_of(self, task: str) -> tuple[Dataset, ...]:
        """Return the datasets of `task` (one of `TASKS`)."""
        return tuple(dataset for dataset in self.datasets if dataset.task == task)


class Catalogue:
    """All languages of a catalogue file, with the alias links between shared corpora resolved."""

    def __init__(self, languages: Mapping[str, Language], source: str | Path = "<catalogue>"):
        self.source = Path(source)
        self.languages = dict(languages)
        for language in self.languages.values():
            if language.text_from is None:
                continue
            owner = self.languages.get(language.text_from)
            if owner is None:
                raise DataFormatError(
                    self.source,
                    None,
                    f"languages.{language.code}.text_from names {language.text_from!r}, which is "
                    "not a language of the catalogue",
                )
            if owner.text_from is not None or language.text:
                raise DataFormatError(
                    self.source,
                    None,
                    f"languages.{language.code}.text_from must name a language with its own text "
                    f"sources, and {language.code} must then list no text of its own",
                )

    def __getitem__(self, code: str) -> Language:
        try:
            return self.languages[code]
        except KeyError:
            raise KeyError(
                f"language {code!r} is not in the catalogue {self.source}; known codes: "
                f"{', '.join(sorted(self.languages))}"
            ) from None

    def __iter__(self):
        return iter(self.languages.values())

    def corpus_language(self, code: str) -> str:
        """Return the code whose corpus `code` uses: its `text_from`, or `code` itself."""
        return self[code].text_from or code

    def corpus_members(self, code: str) -> list[str]:
        """Return every code that shares the corpus of `code`, the corpus owner first."""
        owner = self.corpus_language(code)
        aliases = [language.code for language in self if language.text_from == owner]
        return [owner, *sorted(aliases)]

    def corpus_languages(self) -> list[str]:
        """Return the codes that own a masked-LM corpus (they have text sources), sorted."""
        return sorted(language.code for language in self if language.text)

    def text_sources(self, code: str) -> tuple[TextSource, ...]:
        """Return the text sources of the corpus that `code` uses."""
        return self[self.corpus_language(code)].text

    def test_files(self, code: str) -> list[tuple[Dataset, str]]:
        """Return (dataset, path) of every test split of the languages sharing `code`'s corpus."""
        files = []
        for member in self.corpus_members(code):
            for dataset in self[member].datasets:
                if TEST_SPLIT in dataset.splits:
                    files.append((dataset, dataset.splits[TEST_SPLIT]))
        return files

    def paths(self, codes: Iterable[str] | None = None) -> list[str]:
        """Return every file path that the given languages (default: all) refer to, sorted."""
        selected = [self[code] for code in codes] if codes is not None else list(self)
        paths: set[str] = set()
        for language in selected:
            for dataset in language.datasets:
                paths.update(dataset.splits.values())
            paths.update(source.path for source in self.text_sources(language.code))
        return sorted(paths)

    def check_registry(self, registry: Registry) -> None:
        """Raise DataFormatError listing every catalogue path that the registry lacks.

        Pass the union of the main and the extra registry (`read_registries`) when the catalogue
        refers to files outside the data mirror.
        """
        missing = [path for path in self.paths() if path not in registry]
        if missing:
            raise DataFormatError(
                self.source,
                None,
                f"{len(missing)} paths are not in the registry {registry.source}: "
                + ", ".join(missing[:10])
                + (", ..." if len(missing) > 10 else ""),
            )


def _require(condition: bool, source: Path, where: str, message: str) -> None:
    if not condition:
        raise DataFormatError(source, None, f"{where}: {message}")


def _check_keys(value: Any, allowed: frozenset[str], source: Path, where: str) -> None:
    _require(
        isinstance(value, dict), source, where, f"expected a mapping, found {type(value).__name__}"
    )
    unknown = sorted(set(value) - allowed)
    _require(not unknown, source, where, f"unknown keys {unknown}; allowed keys: {sorted(allowed)}")


def _check_path(value: Any, source: Path, where: str) -> str:
    _require(
        isinstance(value, str) and value.startswith("github/") and ".." not in value.split("/"),
        source,
        where,
        f"expected a path of the form github/<org>/<repo>/<path>, found {value!r}",
    )
    return value


def _dataset(task: str, raw: Any, source: Path, where: str) -> Dataset:
    _check_keys(raw, _DATASET_KEYS, source, where)
    name = raw.get("dataset")
    _require(
        isinstance(name, str) and bool(name), source, where, "missing dataset name ('dataset')"
    )

    default_format = TASK_FORMATS[task][0] if task != "nli" else None
    data_format = raw.get("format", default_format)
    _require(
        data_format in TASK_FORMATS[task],
        source,
        f"{where}.format",
        f"{data_format!r} is not a {task} format; use one of {', '.join(TASK_FORMATS[task])}",
    )

    splits = raw.get("splits")
    _require(
        isinstance(splits, dict) and bool(splits),
        source,
        f"{where}.splits",
        "expected a mapping of split names to paths",
    )
    for split, path in splits.items():
        _require(
            split in SPLITS,
            source,
            f"{where}.splits",
            f"unknown split {split!r}; use one of {', '.join(SPLITS)}",
        )
        _check_path(path, source, f"{where}.splits.{split}")

    type_map = raw.get("type_map", {})
    _require(
        task == "ner" or not type_map,
        source,
        f"{where}.type_map",
        "only NER datasets take a type map",
    )
    try:
        type_map = check_type_map(type_map)
    except (TypeError, ValueError, AttributeError) as error:
        raise DataFormatError(source, None, f"{where}.type_map: {error}") from None

    return Dataset(
        task=task,
        name=name,
        format=data_format,
        splits=dict(splits),
        type_map=type_map,
        note=raw.get("note"),
    )


def _text_source(raw: Any, source: Path, where: str) -> TextSource:
    _check_keys(raw, _SOURCE_KEYS, source, where)
    path = _check_path(raw.get("path"), source, f"{where}.path")
    reader = raw.get("reader")
    _require(
        reader in TEXT_READERS,
        source,
        f"{where}.reader",
        f"{reader!r} is not a text reader; use one of {', '.join(TEXT_READERS)}",
    )
    options = raw.get("options", {}) or {}
    expected = sorted(TEXT_READER_OPTIONS.get(reader, ()))
    _require(
        isinstance(options, dict) and sorted(options) == expected,
        source,
        f"{where}.options",
        f"reader {reader!r} takes the options {expected}, found {options!r}",
    )
    lowercase = raw.get("lowercase", False)
    _require(
        isinstance(lowercase, bool),
        source,
        f"{where}.lowercase",
        f"expected true or false, found {lowercase!r}",
    )
    return TextSource(
        path=path, reader=reader, options=dict(options), lowercase=lowercase, note=raw.get("note")
    )


def _language(code: str, raw: Any, source: Path) -> Language:
    where = f"languages.{code}"
    _check_keys(raw, _LANGUAGE_KEYS, source, where)
    name = raw.get("name")
    _require(isinstance(name, str) and bool(name), source, where, "missing language name ('name')")

    datasets = []
    for task in TASKS:
        entries = raw.get(task, []) or []
        _require(
            isinstance(entries, list), source, f"{where}.{task}", "expected a list of datasets"
        )
        datasets.extend(
            _dataset(task, entry, source, f"{where}.{task}[{index}]")
            for index, entry in enumerate(entries)
        )

    entries = raw.get("text", []) or []
    _require(isinstance(entries, list), source, f"{where}.text", "expected a list of text sources")
    text = tuple(
        _text_source(entry, source, f"{where}.text[{index}]") for index, entry in enumerate(entries)
    )

    text_from = raw.get("text_from")
    _require(
        text_from is None or isinstance(text_from, str),
        source,
        f"{where}.text_from",
        f"expected a language code, found {text_from!r}",
    )
    return Language(
        code=code,
        name=name,
        datasets=tuple(datasets),
        text=text,
        text_from=text_from,
        text_note=raw.get("text_note"),
    )


def load_catalogue(path: str | Path = DEFAULT_CATALOGUE) -> Catalogue:
    """Read and validate a language catalogue; errors name the file and the offending key."""
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        try:
            raw = yaml.safe_load(handle)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            raise DataFormatError(
                path, mark.line + 1 if mark else None, f"invalid YAML: {error}"
            ) from None
    _require(
        isinstance(raw, dict) and isinstance(raw.get("languages"), dict),
        path,
        "top level",
        "expected a mapping with the key 'languages'",
    )
    languages = {
        str(code): _language(str(code), entry, path) for code, entry in raw["languages"].items()
    }
    return Catalogue(languages, source=path)


def _summary_rows(catalogue: Catalogue) -> list[str]:
    rows = []
    for language in sorted(catalogue, key=lambda item: item.code):
        tasks = ",".join(task for task in TASKS if language.datasets_of(task)) or "-"
        if language.text_from:
            text = f"shares {language.text_from}"
        elif language.text:
            text = f"{len(language.text)} sources"
        else:
            text = "none"
        rows.append(f"{language.code}\t{language.name}\t{tasks}\t{text}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.data.catalogue",
        description="Validate the language catalogue against the registry and list its languages.",
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=DEFAULT_CATALOGUE,
        help=f"language catalogue YAML (default: {DEFAULT_CATALOGUE})",
    )
    parser.add_argument(
        "--registry",
        type=Path,
        default=DEFAULT_REGISTRY,
        help=f"registry TSV of the data mirror's files (default: {DEFAULT_REGISTRY})",
    )
    parser.add_argument(
        "--extra-registry",
        type=Path,
        default=DEFAULT_EXTRA_REGISTRY,
        help="extra registry TSV of the catalogue paths outside the data mirror "
        f"(default: {DEFAULT_EXTRA_REGISTRY})",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="also check that every catalogue path exists under this folder "
        "(the resources folder or a data mirror); absent files of the extra registry are only "
        "reported, because a data mirror has none of them",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        catalogue = load_catalogue(args.catalogue)
        registry = read_registries(args.registry, args.extra_registry)
        catalogue.check_registry(registry)
    except (OSError, DataFormatError) as error:
        logger.error("%s", error)
        return 1
    if args.root is not None:
        absent = [path for path in catalogue.paths() if not (args.root / path).is_file()]
        outside = [path for path in absent if not registry.get(path).in_mirror]
        missing = [path for path in absent if registry.get(path).in_mirror]
        if outside:
            logger.warning(
                "%d catalogue paths of the extra registry are absent under %s (files outside the "
                "data mirror; download them with python -m xlt.data.fetch --extra-registry %s): %s",
                len(outside),
                args.root,
                args.extra_registry,
                ", ".join(outside[:10]),
            )
        if missing:
            logger.error(
                "%d catalogue paths are missing under %s: %s",
                len(missing),
                args.root,
                ", ".join(missing[:10]),
            )
            return 1

    sys.stdout.write("code\tname\ttasks\ttext\n")
    sys.stdout.write("\n".join(_summary_rows(catalogue)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
