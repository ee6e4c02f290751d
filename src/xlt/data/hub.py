"""Exports of Hugging Face hub datasets into files the workflow reads: full MultiNLI and Wikipedia.

The offline data mirror has neither, so a machine with access to the hub exports them once:

- NLI: one split of a registered NLI dataset (`HUB_NLI_DATASETS`: nyu-mll/multi_nli) to a TSV in
  the AmericasNLI layout (`id language premise hypothesis label`, labels by name), which
  `xlt.data.nli` reads. Pairs without a gold label (label -1) are dropped, and tabs or line breaks
  inside a sentence become spaces, because the readers split on tabs.
- Wikipedia: one language of a `wikimedia/wikipedia` snapshot (config `<snapshot>.<wiki code>`), one
  paragraph a line. Articles are visited in an order shuffled with a fixed seed until the line
  cap is reached. Headings, list items and other lines that are not prose are dropped (see
  `is_prose`). The corpus builder (`xlt.data.corpus --extra-source plain:FILE`) then cleans the
  lines and removes test-set leaks, as for every other text source.

Every export is written atomically, with a JSON report beside it (same name, suffix `.json`) that
records the dataset, config, split, revision and counts. Command line::

    python -m xlt.data.hub nli --dataset nyu-mll/multi_nli --split train \\
        --output resources/hub/nyu-mll/multi_nli/train.tsv
    python -m xlt.data.hub wikipedia --language hau --snapshot 20231101 --max-lines 100000 \\
        --seed 1 --output resources/hub/wikimedia/wikipedia/20231101/hau.txt

`datasets` is imported only inside the export functions, so that the workflow's plan can use the
paths and the language table here without loading it. Unit tests replace `datasets.load_dataset`,
so none of them reaches the hub.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from xlt.data.atomic import atomic_open, atomic_write_text
from xlt.data.nli import AMERICASNLI_HEADER
from xlt.data.records import NLI_LABELS

logger = logging.getLogger(__name__)

# Prefix of a task dataset given as a hub export in an experiment config: `hub:<dataset>:<split>`.
HUB_SPEC_PREFIX = "hub:"

# Folder of the exports under the resources folder.
HUB_FOLDER = "hub"

WIKIPEDIA_DATASET = "wikimedia/wikipedia"
DEFAULT_WIKIPEDIA_SNAPSHOT = "20231101"

REPORT_SUFFIX = ".json"
REPORT_FORMAT_VERSION = 1

# Articles fetched from the dataset per read.
_ARTICLE_BATCH = 256

# Closing quotes and brackets that may follow the final punctuation of a paragraph.
_CLOSING = "\"'»”’)]}」』"


@dataclass(frozen=True)
class HubNliDataset:
    """An NLI dataset of the hub that `export_nli` can write: its splits and identifier column."""

    name: str
    splits: tuple[str, ...]
    id_column: str
    language: str
    config: str | None = None


HUB_NLI_DATASETS: dict[str, HubNliDataset] = {
    "nyu-mll/multi_nli": HubNliDataset(
        name="nyu-mll/multi_nli",
        splits=("train", "validation_matched", "validation_mismatched"),
        id_column="pairID",
        language="en",
    ),
}

# Wikipedia of each catalogue language: the wiki code of `wikimedia/wikipedia` configs, or None
# where the language has no Wikipedia in the 20231101 snapshot (its corpus keeps the catalogue's
# text sources). Checked against the list of 20231101 configs of the dataset.
# NOTE: nah (Nahuatl) and qu (Quechua) are mixed-variety wikis; the AmericasNLI test sets are in
# other varieties of these languages (see docs/data.md).
WIKIPEDIA_CODES: dict[str, str | None] = {
    "en": "en",
    # UD targets
    "ar": "ar",
    "bm": "bm",
    "bxr": "bxr",
    "yue": "zh-yue",
    "zh": "zh",
    "myv": "myv",
    "fo": "fo",
    "kpv": "kv",
    "olo": "olo",
    "mt": "mt",
    "gv": "gv",
    "sa": "sa",
    "hsb": "hsb",
    "ug": "ug",
    "cop": None,
    "sme": "se",
    "ta": "ta",
    "wo": "wo",
    "yo": "yo",
    "hy": "hy",
    "de": "de",
    "pcm": "pcm",
    # Multi-source UD languages
    "cs": "cs",
    "el": "el",
    "et": "et",
    "eu": "eu",
    "fa": "fa",
    "fr": "fr",
    "hi": "hi",
    "ja": "ja",
    "ko": "ko",
    "ru": "ru",
    "tr": "tr",
    "vi": "vi",
    # MasakhaNER targets
    "amh": "am",
    "hau": "ha",
    "ibo": "ig",
    "kin": "rw",
    "lug": "lg",
    "luo": None,
    "swa": "sw",
    "wol": "wo",
    "yor": "yo",
    # AmericasNLI targets
    "aym": "ay",
    "bzd": None,
    "cni": None,
    "gn": "gn",
    "hch": None,
    "nah": "nah",
    "oto": None,
    "quy": "qu",
    "shp": None,
    "tar": None,
}


def wikipedia_code(language: str) -> str | None:
    """Return the wiki code of a catalogue language, or None when it has no Wikipedia.

    Raises KeyError for a language missing from `WIKIPEDIA_CODES`.
    """
    try:
        return WIKIPEDIA_CODES[language]
    except KeyError:
        raise KeyError(
            f"language {language!r} has no entry in xlt.data.hub.WIKIPEDIA_CODES; add its wiki "
            "code there (None when it has no Wikipedia)"
        ) from None


def hub_export_path(dataset: str, split: str) -> str:
    """Return the path of an exported NLI split under the resources folder."""
    return f"{HUB_FOLDER}/{dataset}/{split}.tsv"


def wikipedia_export_path(snapshot: str, language: str) -> str:
    """Return the path of a language's Wikipedia export under the resources folder."""
    return f"{HUB_FOLDER}/{WIKIPEDIA_DATASET}/{snapshot}/{language}.txt"


def report_path(output: str | Path) -> Path:
    """Return the path of the JSON report written beside an export."""
    return Path(output).with_suffix(REPORT_SUFFIX)


def parse_hub_spec(spec: str) -> tuple[str, str]:
    """Split `hub:<dataset>:<split>` into the dataset and split; raise ValueError when unknown."""
    body = spec[len(HUB_SPEC_PREFIX) :] if spec.startswith(HUB_SPEC_PREFIX) else None
    dataset, _, split = body.rpartition(":") if body else ("", "", "")
    known = ", ".join(
        f"{HUB_SPEC_PREFIX}{name}:{split_name}"
        for name, entry in HUB_NLI_DATASETS.items()
        for split_name in entry.splits
    )
    if dataset not in HUB_NLI_DATASETS or split not in HUB_NLI_DATASETS[dataset].splits:
        raise ValueError(f"{spec!r} is not a known hub dataset split; known: {known}")
    return dataset, split


def is_prose(paragraph: str, min_chars: int) -> bool:
    """Return whether a Wikipedia line is prose: at least `min_chars` long, ending in punctuation.

    A heuristic that drops headings, list items and table remains, which rarely end in sentence
    punctuation. Closing quotes and brackets after the final mark are skipped, and any Unicode
    "other punctuation" (category Po: . ! ? 。 । ؟ ። and others) counts as final.
    """
    if len(paragraph) < min_chars:
        return False
    stripped = paragraph.rstrip(_CLOSING)
    return bool(stripped) and unicodedata.category(stripped[-1]) == "Po"


def _one_line(text: str) -> tuple[str, bool]:
    """Return `text` with tabs and line breaks turned into spaces, and whether any was."""
    cleaned = text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return cleaned, cleaned != text


def _load(dataset: str, config: str | None, split: str, revision: str | None) -> Any:
    import datasets

    logger.info(
        "loading %s (config %s, split %s, revision %s)", dataset, config, split, revision or "main"
    )
    return datasets.load_dataset(dataset, config, split=split, revision=revision)


def _provenance(
    dataset: str, config: str | None, split: str, revision: str | None
) -> dict[str, Any]:
    import datasets

    return {
        "format_version": REPORT_FORMAT_VERSION,
        "created_by": "xlt.data.hub",
        "dataset": dataset,
        "config": config,
        "split": split,
        "revision": revision,
        "datasets_version": datasets.__version__,
    }


def _label_names(data: Any, dataset: str) -> list[str]:
    import datasets

    feature = data.features.get("label")
    if not isinstance(feature, datasets.ClassLabel):
        raise TypeError(
            f"{dataset}: the label column is {feature!r}, expected a ClassLabel with the names "
            f"{', '.join(NLI_LABELS)}"
        )
    unknown = [name for name in feature.names if name not in NLI_LABELS]
    if unknown:
        raise ValueError(
            f"{dataset}: labels {unknown} are not NLI labels; expected {', '.join(NLI_LABELS)}"
        )
    return list(feature.names)


def export_nli(
    dataset: str, split: str, output: str | Path, revision: str | None = None
) -> dict[str, Any]:
    """Write one split of a hub NLI dataset as an AmericasNLI-layout TSV; return the report."""
    entry = HUB_NLI_DATASETS.get(dataset)
    if entry is None:
        raise ValueError(
            f"dataset={dataset!r} is not supported; use one of {', '.join(HUB_NLI_DATASETS)}"
        )
    if split not in entry.splits:
        raise ValueError(
            f"split={split!r} is not a split of {dataset}; use one of {', '.join(entry.splits)}"
        )

    data = _load(dataset, entry.config, split, revision)
    names = _label_names(data, dataset)
    written = no_gold_label = flattened = 0
    with atomic_open(output) as handle:
        handle.write("\t".join(AMERICASNLI_HEADER) + "\n")
        for example in tqdm(data, desc=f"{dataset} {split}", unit="pair", disable=None):
            if example["label"] < 0:
                no_gold_label += 1
                continue
            premise, changed_premise = _one_line(example["premise"])
            hypothesis, changed_hypothesis = _one_line(example["hypothesis"])
            flattened += changed_premise or changed_hypothesis
            example_id, _ = _one_line(str(example[entry.id_column]))
            row = (example_id, entry.language, premise, hypothesis, names[example["label"]])
            handle.write("\t".join(row) + "\n")
            written += 1

    report = {
        **_provenance(dataset, entry.config, split, revision),
        "rows_read": len(data),
        "pairs": written,
        "dropped_without_gold_label": no_gold_label,
        "pairs_with_tabs_or_line_breaks_replaced": flattened,
    }
    _write_report(output, report)
    logger.info(
        "wrote %d pairs of %s %s to %s (%d without a gold label dropped)",
        written,
        dataset,
        split,
        output,
        no_gold_label,
    )
    return report


def export_wikipedia(
    language: str,
    output: str | Path,
    *,
    snapshot: str = DEFAULT_WIKIPEDIA_SNAPSHOT,
    max_lines: int | None = None,
    seed: int = 0,
    min_chars: int = 20,
    wiki: str | None = None,
    revision: str | None = None,
) -> dict[str, Any]:
    """Write prose paragraphs of one language's Wikipedia, one a line, and return the report.

    Articles are read in an order shuffled with `seed` until `max_lines` paragraphs are written
    (all of them when None). `wiki` overrides the wiki code from `WIKIPEDIA_CODES`.
    """
    if max_lines is not None and (
        isinstance(max_lines, bool) or not isinstance(max_lines, int) or max_lines < 1
    ):
        raise ValueError(f"max_lines={max_lines!r} is invalid; expected a positive integer or None")
    if min_chars < 1:
        raise ValueError(f"min_chars={min_chars!r} is invalid; expected a positive integer")
    code = wiki or wikipedia_code(language)
    if code is None:
        raise ValueError(
            f"language {language!r} has no Wikipedia in {WIKIPEDIA_DATASET}; its corpus keeps the "
            "catalogue's text sources (pass --wiki CODE to export another wiki)"
        )
    config = f"{snapshot}.{code}"
    data = _load(WIKIPEDIA_DATASET, config, "train", revision)

    order = list(range(len(data)))
    random.Random(seed).shuffle(order)
    articles_read = written = not_prose = 0
    with (
        atomic_open(output) as handle,
        tqdm(total=max_lines, desc=config, unit="line", disable=None) as bar,
    ):
        for start in range(0, len(order), _ARTICLE_BATCH):
            if max_lines is not None and written >= max_lines:
                break
            for text in data[order[start : start + _ARTICLE_BATCH]]["text"]:
                if max_lines is not None and written >= max_lines:
                    break
                articles_read += 1
                for line in text.split("\n"):
                    paragraph = " ".join(line.split())
                    if not paragraph:
                        continue
                    if not is_prose(paragraph, min_chars):
                        not_prose += 1
                        continue
                    handle.write(paragraph + "\n")
                    written += 1
                    bar.update()
                    if max_lines is not None and written >= max_lines:
                        break

    report = {
        **_provenance(WIKIPEDIA_DATASET, config, "train", revision),
        "language": language,
        "wiki": code,
        "seed": seed,
        "max_lines": max_lines,
        "min_chars": min_chars,
        "articles": len(data),
        "articles_read": articles_read,
        "lines": written,
        "dropped_not_prose": not_prose,
    }
    _write_report(output, report)
    logger.info(
        "wrote %d paragraphs of %s from %d of %d articles to %s (%d lines not prose, dropped)",
        written,
        config,
        articles_read,
        len(data),
        output,
        not_prose,
    )
    return report


def _write_report(output: str | Path, report: dict[str, Any]) -> None:
    atomic_write_text(report_path(output), json.dumps(report, indent=2, sort_keys=True) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.data.hub",
        description="Export hub datasets (full MultiNLI, Wikipedia) into files the workflow reads.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    nli = commands.add_parser("nli", help="export one split of an NLI dataset to a TSV")
    nli.add_argument(
        "--dataset", required=True, choices=sorted(HUB_NLI_DATASETS), help="hub dataset id"
    )
    nli.add_argument(
        "--split", required=True, help="split to export, e.g. train or validation_matched"
    )
    nli.add_argument("--output", type=Path, required=True, help="TSV file to write")
    nli.add_argument(
        "--revision",
        default=None,
        help="dataset revision (git tag, branch or commit; default: main)",
    )

    wikipedia = commands.add_parser(
        "wikipedia", help="export prose paragraphs of one language's Wikipedia"
    )
    wikipedia.add_argument(
        "--language", required=True, help="catalogue language code, e.g. hau or yue"
    )
    wikipedia.add_argument(
        "--output", type=Path, required=True, help="text file to write, one paragraph a line"
    )
    wikipedia.add_argument(
        "--snapshot",
        default=DEFAULT_WIKIPEDIA_SNAPSHOT,
        help=f"dump date of {WIKIPEDIA_DATASET}, the first part of its config names "
        f"(default: {DEFAULT_WIKIPEDIA_SNAPSHOT})",
    )
    wikipedia.add_argument(
        "--max-lines",
        type=int,
        default=None,
        help="write at most this many paragraphs (default: all)",
    )
    wikipedia.add_argument(
        "--seed", type=int, default=0, help="seed of the article order (default: 0)"
    )
    wikipedia.add_argument(
        "--min-chars",
        type=int,
        default=20,
        help="drop paragraphs shorter than this many characters (default: 20)",
    )
    wikipedia.add_argument(
        "--wiki", default=None, help="wiki code to read instead of the language's own (e.g. zh-yue)"
    )
    wikipedia.add_argument(
        "--revision",
        default=None,
        help="dataset revision (git tag, branch or commit; default: main)",
    )

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "nli":
            export_nli(args.dataset, args.split, args.output, revision=args.revision)
        else:
            export_wikipedia(
                args.language,
                args.output,
                snapshot=args.snapshot,
                max_lines=args.max_lines,
                seed=args.seed,
                min_chars=args.min_chars,
                wiki=args.wiki,
                revision=args.revision,
            )
    except (ValueError, TypeError, KeyError, OSError) as error:
        logger.error("%s", error.args[0] if isinstance(error, KeyError) else error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
