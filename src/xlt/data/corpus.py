"""Build the masked-LM corpus of one language: one plain-text file plus a JSON report.

The text sources of the language (from the language catalogue) are read in catalogue order. Each
sentence is normalised (Unicode NFC, whitespace runs turned into one space), optionally
lowercased, and dropped when it is empty, has no letter, repeats an earlier sentence or occurs in
an evaluation test set of the language (see `xlt.data.leakage`). An optional cap keeps the first
N sentences, or N sentences drawn with a fixed seed, in their corpus order. Both files are
written atomically.

Extra text files, such as a Wikipedia export of `xlt.data.hub`, join the catalogue's sources with
`--extra-source READER:PATH`, and replace them when `--no-catalogue-sources` is given as well. They
go through the same cleaning and leak filter.

Command line, one language per call::

    python -m xlt.data.corpus --language fo --root resources --output resources/corpora/fo.txt

writes `resources/corpora/fo.txt` and the report `resources/corpora/fo.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path

from tqdm.auto import tqdm

from xlt.data.atomic import atomic_open, atomic_write_text
from xlt.data.catalogue import DEFAULT_CATALOGUE, Catalogue, TextSource, load_catalogue
from xlt.data.fetch import git_blob_id
from xlt.data.leakage import LEAK_KINDS, LeakFilter
from xlt.data.registry import DEFAULT_REGISTRY, Registry, read_registry
from xlt.data.text import TEXT_READER_OPTIONS, TEXT_READERS, normalize_sentence, read_text_source

logger = logging.getLogger(__name__)

REPORT_SUFFIX = ".json"
REPORT_FORMAT_VERSION = 1

# Readers an extra source may name: those that take no options.
EXTRA_SOURCE_READERS: tuple[str, ...] = tuple(
    reader for reader in TEXT_READERS if not TEXT_READER_OPTIONS.get(reader)
)

# Reasons for dropping a sentence, in the order they are checked. Leaks are counted by kind.
DROP_REASONS: tuple[str, ...] = (
    "empty",
    "no_letters",
    "duplicate",
    *(f"leaked_{kind}" for kind in LEAK_KINDS),
)


@dataclass
class CorpusOptions:
    """Options of one corpus build."""

    language: str = field(metadata={"help": "language code of the catalogue, e.g. fo or wol"})
    root: Path = field(
        default=Path("resources"),
        metadata={
            "help": "folder holding github/<org>/<repo>/<path> (resources folder or data mirror)"
        },
    )
    catalogue: Path = field(default=DEFAULT_CATALOGUE, metadata={"help": "language catalogue YAML"})
    registry: Path | None = field(
        default=DEFAULT_REGISTRY,
        metadata={"help": "registry TSV, used to record each source's git blob id in the report"},
    )
    max_sentences: int | None = field(
        default=None,
        metadata={"help": "keep at most this many sentences (after cleaning and leak filtering)"},
    )
    shuffle_seed: int | None = field(
        default=None,
        metadata={
            "help": "with max_sentences: draw the kept sentences with this seed instead of taking "
            "the first ones; they stay in corpus order"
        },
    )
    extra_sources: list[str] = field(
        default_factory=list,
        metadata={
            "help": "extra text files as READER:PATH, read after the catalogue's sources; PATH is "
            "relative to the working directory, not to root. READER is one of "
            + ", ".join(EXTRA_SOURCE_READERS)
        },
    )
    catalogue_sources: bool = field(
        default=True,
        metadata={
            "help": "read the language's text sources from the catalogue; false reads only "
            "extra_sources (the test sets of the leak filter still come from the catalogue)"
        },
    )

    def __post_init__(self) -> None:
        if not isinstance(self.language, str) or not self.language:
            raise ValueError(
                f"language={self.language!r} is invalid; expected a catalogue language code"
            )
        self.root = Path(self.root)
        self.catalogue = Path(self.catalogue)
        self.registry = Path(self.registry) if self.registry is not None else None
        if self.max_sentences is not None and (
            isinstance(self.max_sentences, bool) or not isinstance(self.max_sentences, int)
        ):
            raise TypeError(f"max_sentences={self.max_sentences!r} must be an integer or None")
        if self.max_sentences is not None and self.max_sentences < 1:
            raise ValueError(
                f"max_sentences={self.max_sentences} is invalid; "
                "expected a positive integer or None"
            )
        if self.shuffle_seed is not None and self.max_sentences is None:
            raise ValueError(
                f"shuffle_seed={self.shuffle_seed} needs max_sentences; "
                "the seed only chooses which "
                "sentences a cap keeps"
            )

        if isinstance(self.extra_sources, str):
            self.extra_sources = [self.extra_sources]
        self.extra_sources = list(self.extra_sources)
        for spec in self.extra_sources:
            parse_extra_source(spec)
        if not isinstance(self.catalogue_sources, bool):
            raise TypeError(f"catalogue_sources={self.catalogue_sources!r} must be True or False")
        if not self.catalogue_sources and not self.extra_sources:
            raise ValueError(
                "catalogue_sources=False needs at least one extra source (extra_sources), "
                "because the corpus would have no text"
            )

    def extra_text_sources(self) -> list[TextSource]:
        """Return the extra sources as text sources, paths relative to the working directory."""
        return [parse_extra_source(spec) for spec in self.extra_sources]


def parse_extra_source(spec: str) -> TextSource:
    """Parse an extra source `READER:PATH` (e.g. `plain:wiki.txt`); raise ValueError naming it."""
    reader, separator, path = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not separator or not path or reader not in EXTRA_SOURCE_READERS:
        raise ValueError(
            f"extra_sources: {spec!r} is invalid; expected READER:PATH with READER one of "
            f"{', '.join(EXTRA_SOURCE_READERS)}"
        )
    return TextSource(path=path, reader=reader)


@dataclass
class SourceCounts:
    """Per-source counts of read, kept and dropped sentences."""

    path: str
    reader: str
    git_blob: str | None = None
    read: int = 0
    kept: int = 0
    in_corpus: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))


def _git_commit() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None


def _package_version() -> str | None:
    # Read from the installed metadata, because importing `sft` would load torch.
    try:
        return metadata.version("composable-sft")
    except metadata.PackageNotFoundError:
        return None


def _provenance(options: CorpusOptions) -> dict[str, object]:
    return {
        "created_by": "xlt.data.corpus",
        "package_version": _package_version(),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "catalogue": str(options.catalogue),
        "catalogue_sources": options.catalogue_sources,
        "extra_sources": list(options.extra_sources),
        "max_sentences": options.max_sentences,
        "shuffle_seed": options.shuffle_seed,
    }


def _clean_source(
    source: TextSource, path: Path, counts: SourceCounts, seen: set[str]
) -> list[str]:
    """Return the new, non-empty sentences of one source file, updating `counts` and `seen`."""
    kept = []
    for raw in read_text_source(path, source.reader, **source.options):
        counts.read += 1
        sentence = normalize_sentence(raw)
        if source.lowercase:
            sentence = sentence.lower()

        if not sentence:
            reason = "empty"
        elif not any(character.isalpha() for character in sentence):
            reason = "no_letters"
        elif sentence in seen:
            reason = "duplicate"
        else:
            seen.add(sentence)
            kept.append(sentence)
            continue
        counts.dropped[reason] += 1
    counts.kept = len(kept)
    return kept


def _cap(sentences: list[tuple[int, str]], options: CorpusOptions) -> list[tuple[int, str]]:
    if options.max_sentences is None or len(sentences) <= options.max_sentences:
        return sentences
    if options.shuffle_seed is None:
        return sentences[: options.max_sentences]
    chosen = random.Random(options.shuffle_seed).sample(
        range(len(sentences)), options.max_sentences
    )
    return [sentences[index] for index in sorted(chosen)]


def build_corpus(
    options: CorpusOptions,
    catalogue: Catalogue | None = None,
    registry: Registry | None = None,
) -> tuple[list[str], dict[str, object]]:
    """Return the corpus sentences of `options.language` and the report describing them."""
    catalogue = catalogue or load_catalogue(options.catalogue)
    if registry is None and options.registry is not None and options.registry.is_file():
        registry = read_registry(options.registry)

    owner = catalogue.corpus_language(options.language)
    # (source, file, whether it is an extra source). Catalogue paths are relative to the root
    # folder, extra ones to the working directory.
    sources: list[tuple[TextSource, Path, bool]] = []
    if options.catalogue_sources:
        sources += [
            (source, options.root / source.path, False) for source in catalogue.text_sources(owner)
        ]
    sources += [(source, Path(source.path), True) for source in options.extra_text_sources()]
    if not sources:
        note = catalogue[owner].text_note or "the catalogue lists no text sources"
        raise ValueError(
            f"language {options.language!r} has no masked-LM text: {note}. Give a text file with "
            "--extra-source READER:PATH"
        )

    leak_filter = LeakFilter.from_test_files(catalogue.test_files(owner), options.root)
    logger.info(
        "%s: leak filter has %d keys from %d test files",
        owner,
        len(leak_filter),
        len(leak_filter.files),
    )

    seen: set[str] = set()
    all_counts: list[SourceCounts] = []
    sentences: list[tuple[int, str]] = []
    for index, (source, path, extra) in enumerate(
        tqdm(sources, desc=f"corpus {owner}", unit="file", leave=False, disable=None)
    ):
        counts = SourceCounts(path=source.path, reader=source.reader)
        if registry is not None and source.path in registry:
            counts.git_blob = registry.get(source.path).git_blob
        elif extra and path.is_file():
            counts.git_blob = git_blob_id(path)
        kept = _clean_source(source, path, counts, seen)
        sentences.extend((index, sentence) for sentence in kept)
        all_counts.append(counts)

    leaks = leak_filter.find_leaks([sentence for _, sentence in sentences])
    for position, kind in leaks.items():
        counts = all_counts[sentences[position][0]]
        counts.dropped[f"leaked_{kind}"] += 1
        counts.kept -= 1
    sentences = [item for position, item in enumerate(sentences) if position not in leaks]

    capped = _cap(sentences, options)
    per_source = Counter(index for index, _ in capped)
    for index, counts in enumerate(all_counts):
        counts.in_corpus = per_source[index]
    texts = [sentence for _, sentence in capped]

    removed = {
        reason: sum(counts.dropped[reason] for counts in all_counts) for reason in DROP_REASONS
    }
    removed["cap"] = len(sentences) - len(capped)
    report = {
        "format_version": REPORT_FORMAT_VERSION,
        "language": options.language,
        "corpus_language": owner,
        "shared_by": catalogue.corpus_members(owner),
        "sentences": len(texts),
        "words": sum(len(sentence.split()) for sentence in texts),
        "characters": sum(len(sentence) for sentence in texts),
        "removed": removed,
        "sources": [asdict(counts) for counts in all_counts],
        "leak_filter": {"keys": len(leak_filter), "test_files": leak_filter.files},
        "provenance": _provenance(options),
    }
    return texts, report


def write_corpus(
    texts: list[str], report: dict[str, object], output: Path, report_path: Path
) -> None:
    """Write the corpus (one sentence per line) and its report, each atomically."""
    with atomic_open(output) as handle:
        for sentence in texts:
            handle.write(sentence + "\n")
    atomic_write_text(
        report_path, json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )


def _help(name: str) -> str:
    return next(item.metadata["help"] for item in fields(CorpusOptions) if item.name == name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.data.corpus",
        description="Build the masked-LM corpus of one language and its JSON report.",
    )
    parser.add_argument("--language", required=True, help=_help("language"))
    parser.add_argument(
        "--root", type=Path, default=Path("resources"), help=_help("root") + " (default: resources)"
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=DEFAULT_CATALOGUE,
        help=f"{_help('catalogue')} (default: {DEFAULT_CATALOGUE})",
    )
    parser.add_argument(
        "--registry",
        type=Path,
        default=DEFAULT_REGISTRY,
        help=f"{_help('registry')} (default: {DEFAULT_REGISTRY})",
    )
    parser.add_argument(
        "--output", type=Path, required=True, help="corpus file to write, one sentence a line"
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help=f"JSON report to write (default: the output path with suffix {REPORT_SUFFIX})",
    )
    parser.add_argument("--max-sentences", type=int, default=None, help=_help("max_sentences"))
    parser.add_argument("--shuffle-seed", type=int, default=None, help=_help("shuffle_seed"))
    parser.add_argument(
        "--extra-source",
        dest="extra_sources",
        action="append",
        default=[],
        metavar="READER:PATH",
        help=_help("extra_sources") + "; repeat for several files",
    )
    parser.add_argument(
        "--no-catalogue-sources",
        dest="catalogue_sources",
        action="store_false",
        help="read only the --extra-source files, not the catalogue's text sources of the language",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        options = CorpusOptions(
            language=args.language,
            root=args.root,
            catalogue=args.catalogue,
            registry=args.registry,
            max_sentences=args.max_sentences,
            shuffle_seed=args.shuffle_seed,
            extra_sources=args.extra_sources,
            catalogue_sources=args.catalogue_sources,
        )
        texts, report = build_corpus(options)
    except (ValueError, TypeError, KeyError, OSError) as error:
        # DataFormatError is a ValueError. A KeyError carries its message as the first argument.
        logger.error("%s", error.args[0] if isinstance(error, KeyError) else error)
        return 1

    report_path = args.report or args.output.with_suffix(REPORT_SUFFIX)
    write_corpus(texts, report, args.output, report_path)
    logger.info(
        "%s: wrote %d sentences (%d words) to %s; %s",
        args.language,
        report["sentences"],
        report["words"],
        args.output,
        ", ".join(f"{key} {value}" for key, value in report["removed"].items()),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
