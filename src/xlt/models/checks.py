"""Sanity checks of a converted encoder: unknown tokens per language and translation similarity.

Usage::

    python -m xlt.models.checks --model resources/models/multilingual-e5-small \\
        --text mt=mt.txt fo=fo.txt ... --parallel en.txt de.txt --parallel en.txt mt.txt \\
        --report results/base-model/checks.json

* Unknown tokens: each ``--text`` file is tokenised as running text; the report counts ``<unk>``
  tokens per language and lists the strings they cover.
* Translation similarity: ``--parallel A B`` names two line-aligned files. Line ``i`` of A is
  compared with line ``i`` of B (its translation) and with line ``i + n // 2`` of B (an unrelated
  sentence), using the cosine of mean-pooled last hidden states.

The command exits with status 1 when fewer than ``--min-clean-languages`` languages have no
unknown token, or when a translated pair is on average no more similar than an unrelated one.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from xlt.models.outputs import provenance
from xlt.models.pooling import load_encoder, mean_pooled_embeddings
from xlt.models.text_files import parse_language_files, read_text_lines
from xlt.provenance import write_json_atomic

logger = logging.getLogger(__name__)

# The wheel's engine puts "query: " or "passage: " before every text (see its e5.h). Both
# sentences of a pair get the same prefix here.
DEFAULT_PREFIX = "query: "


def count_unknown_tokens(tokenizer, lines: Sequence[str], examples: int = 10) -> dict:
    """Count sentences, tokens and unknown tokens of `lines`; list the most common unknowns."""
    encoded = tokenizer(list(lines), add_special_tokens=False, return_offsets_mapping=True,
                        verbose=False)
    unknown = collections.Counter()
    tokens = sentences_with_unknown = 0
    for line, ids, offsets in zip(lines, encoded["input_ids"], encoded["offset_mapping"]):
        tokens += len(ids)
        spans = [line[start:end] for token, (start, end) in zip(ids, offsets)
                 if token == tokenizer.unk_token_id]
        unknown.update(spans)
        sentences_with_unknown += bool(spans)
    return {
        "sentences": len(lines),
        "tokens": tokens,
        "unknown_tokens": sum(unknown.values()),
        "sentences_with_unknown": sentences_with_unknown,
        "most_common_unknown": unknown.most_common(examples),
    }


def translation_similarity(model, tokenizer, source: Sequence[str], target: Sequence[str],
                           prefix: str = DEFAULT_PREFIX) -> dict:
    """Compare the cosine of translated pairs with that of unrelated pairs of two aligned lists."""
    if len(source) != len(target):
        raise ValueError(f"parallel files have {len(source)} and {len(target)} lines")
    if len(source) < 2:
        raise ValueError("parallel files need at least 2 aligned lines")
    count = len(source)
    first = mean_pooled_embeddings(model, tokenizer, [prefix + line for line in source])
    second = mean_pooled_embeddings(model, tokenizer, [prefix + line for line in target])
    translated = np.sum(first * second, axis=1)
    unrelated = np.sum(first * np.roll(second, -(count // 2), axis=0), axis=1)
    return {
        "pairs": count,
        "mean_cosine_translated": float(translated.mean()),
        "mean_cosine_unrelated": float(unrelated.mean()),
        "fraction_translated_higher": float(np.mean(translated > unrelated)),
        "first_line": {"translated": float(translated[0]), "unrelated": float(unrelated[0])},
    }


def run_checks(
    model_dir: str | Path,
    corpora: dict[str, Path],
    parallel: Sequence[tuple[Path, Path]],
    max_lines: int,
    prefix: str = DEFAULT_PREFIX,
) -> dict:
    """Run both checks and return the report (without pass/fail judgement)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    report: dict = {"model": str(model_dir), "max_lines": max_lines, "prefix": prefix,
                    "unknown_tokens": {}, "translation_similarity": [],
                    "provenance": provenance()}
    for language, path in corpora.items():
        lines = _head(path, max_lines)
        report["unknown_tokens"][language] = {"file": str(path),
                                              **count_unknown_tokens(tokenizer, lines)}

    if parallel:
        model = load_encoder(model_dir)
        for source_path, target_path in parallel:
            source, target = _head(source_path, max_lines), _head(target_path, max_lines)
            count = min(len(source), len(target))
            result = translation_similarity(model, tokenizer, source[:count], target[:count],
                                            prefix)
            report["translation_similarity"].append(
                {"source": str(source_path), "target": str(target_path), **result}
            )
    return report


def failed_checks(report: dict, min_clean_languages: int) -> list[str]:
    """Return a message for every check that the report fails."""
    failures = []
    clean = [language for language, counts in report["unknown_tokens"].items()
             if counts["unknown_tokens"] == 0]
    if len(clean) < min_clean_languages:
        failures.append(f"only {len(clean)} languages ({', '.join(clean) or 'none'}) have no "
                        f"unknown token; at least {min_clean_languages} are required")
    for pair in report["translation_similarity"]:
        if pair["mean_cosine_translated"] <= pair["mean_cosine_unrelated"]:
            failures.append(f"{pair['source']} vs {pair['target']}: translated pairs "
                            f"({pair['mean_cosine_translated']:.3f}) are not more similar than "
                            f"unrelated ones ({pair['mean_cosine_unrelated']:.3f})")
    return failures


def _head(path: Path, count: int) -> list[str]:
    lines = []
    for line in read_text_lines(path):
        lines.append(line.strip())
        if len(lines) == count:
            break
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.models.checks",
        description="Count unknown tokens per language and compare translated with unrelated "
        "sentence pairs.",
    )
    parser.add_argument("--model", required=True, help="model folder with its tokenizer")
    parser.add_argument("--text", nargs="+", default=[],
                        help="LANG=FILE items, one sentence per line")
    parser.add_argument("--parallel", nargs=2, action="append", default=[],
                        metavar=("SOURCE", "TARGET"),
                        help="two line-aligned files (translations); may be repeated")
    parser.add_argument("--max-lines", "--max_lines", type=int, default=200,
                        help="lines read from the start of each file (default: 200)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX,
                        help=f"text put before each sentence when embedding "
                        f"(default: {DEFAULT_PREFIX!r})")
    parser.add_argument("--min-clean-languages", "--min_clean_languages", type=int, default=8,
                        help="languages that must have no unknown token (default: 8)")
    parser.add_argument("--report", required=True, help="output JSON report")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        corpora = parse_language_files(args.text)
        parallel = [(Path(a), Path(b)) for a, b in args.parallel]
        report = run_checks(args.model, corpora, parallel, args.max_lines, args.prefix)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 1

    failures = failed_checks(report, args.min_clean_languages)
    report["failures"] = failures
    write_json_atomic(args.report, report)
    for failure in failures:
        logger.error("check failed: %s", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
