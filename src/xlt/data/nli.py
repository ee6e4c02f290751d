"""Readers for the NLI formats of AmericasNLI, TextFooler and counterfactually-augmented-data.

Every reader returns `NliExample` records whose label indexes `NLI_LABELS` (entailment, neutral,
contradiction) and raises `DataFormatError` naming the file and line for a wrong header, a wrong
column count or a label outside `NLI_LABELS`. Fields are split on tabs only, so quotes inside
sentences are kept as they are. An empty premise or hypothesis is kept, with a warning, because
published test sets have them (three premises of the AmericasNLI Nahuatl test set are empty) and
scores are comparable only on the full set.

- "americasnli": TSV with the header `id language premise hypothesis label`.
- "textfooler": `label<TAB>premise<TAB>hypothesis` without a header, Penn Treebank tokenised
  (`do n't`, `-LRB-`, `` `` ``). By default the sentences are detokenised by `detokenize_ptb`,
  because the target-language test sets are raw text.
- "cad": the SNLI TSVs of counterfactually-augmented-data, header `sentence1 sentence2 gold_label`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from xlt.data.errors import DataFormatError
from xlt.data.records import NLI_LABELS, NliExample

logger = logging.getLogger(__name__)

AMERICASNLI_HEADER: tuple[str, ...] = ("id", "language", "premise", "hypothesis", "label")
CAD_HEADER: tuple[str, ...] = ("sentence1", "sentence2", "gold_label")
NLI_FORMATS: tuple[str, ...] = ("americasnli", "textfooler", "cad")

_LABEL_INDEX = {label: index for index, label in enumerate(NLI_LABELS)}

_PTB_BRACKETS = {
    "-LRB-": "(",
    "-RRB-": ")",
    "-LSB-": "[",
    "-RSB-": "]",
    "-LCB-": "{",
    "-RCB-": "}",
}
_BRACKET_TOKEN = re.compile(r"-(?:LRB|RRB|LSB|RSB|LCB|RCB)-")
_DOUBLE_QUOTED = re.compile(r"`` (.*?) ''")
_SINGLE_QUOTED = re.compile(r"(?<!\S)` (.*?) '(?!\S)")
_CLITIC = re.compile(r" (n't|'s|'re|'ve|'ll|'d|'m|N'T|'S|'RE|'VE|'LL|'D|'M|')(?!\S)")
_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]}]|\.\.\.)(?!\S)")
_SPACE_AFTER = re.compile(r"(?<!\S)([(\[{$]) ")


def detokenize_ptb(text: str) -> str:
    """Undo the common Penn Treebank tokenisation of brackets, quotes, clitics and punctuation.

    Light by design: `do n't` becomes `don't`, `` `` a '' `` becomes `"a"`, `-LRB- x -RRB-`
    becomes `(x)` and no space is left before `, . ; : ! ? %` or after `( $`. Hyphens, slashes and
    `--` keep their spaces, because the tokenised form does not show whether there were any.
    """
    text = _BRACKET_TOKEN.sub(lambda match: _PTB_BRACKETS[match.group(0)], text)
    text = _DOUBLE_QUOTED.sub(r'"\1"', text)
    text = _SINGLE_QUOTED.sub(r"'\1'", text)
    text = text.replace("``", '"').replace("''", '"')
    text = _CLITIC.sub(r"\1", text)
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _SPACE_AFTER.sub(r"\1", text)
    return " ".join(text.split())


def _label(value: str, path: Path, line: int) -> int:
    try:
        return _LABEL_INDEX[value]
    except KeyError:
        raise DataFormatError(
            path, line, f"unknown label {value!r}; expected one of {', '.join(NLI_LABELS)}"
        ) from None


def _rows(
    path: Path, columns: int, header: Sequence[str] | None
) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) of a TSV file, checking the header and the column count."""
    with open(path, encoding="utf-8", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if number == 1:
                line = line.lstrip("\ufeff")
                if header is not None:
                    if tuple(line.split("\t")) != tuple(header):
                        raise DataFormatError(
                            path,
                            1,
                            f"invalid header {line!r}: expected the tab-separated columns "
                            f"{' '.join(header)}",
                        )
                    continue
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != columns:
                raise DataFormatError(
                    path, number, f"expected {columns} tab-separated columns, found {len(fields)}"
                )
            yield number, fields


def _example(
    premise: str, hypothesis: str, label: str, path: Path, number: int, **extra
) -> NliExample:
    return NliExample(
        premise=premise.strip(),
        hypothesis=hypothesis.strip(),
        label=_label(label, path, number),
        **extra,
    )


def _warn_empty(examples: list[NliExample], path: Path) -> list[NliExample]:
    empty = sum(1 for example in examples if not example.premise or not example.hypothesis)
    if empty:
        logger.warning(
            "%s: %d of %d examples have an empty premise or hypothesis; they are kept",
            path,
            empty,
            len(examples),
        )
    return examples


def read_americasnli(path: str | Path) -> list[NliExample]:
    """Read an AmericasNLI TSV (`id language premise hypothesis label`)."""
    path = Path(path)
    examples = [
        _example(premise, hypothesis, label, path, number, language=language, example_id=example_id)
        for number, (example_id, language, premise, hypothesis, label) in _rows(
            path, len(AMERICASNLI_HEADER), AMERICASNLI_HEADER
        )
    ]
    return _warn_empty(examples, path)


def read_textfooler(path: str | Path, detokenize: bool = True) -> list[NliExample]:
    """Read a TextFooler sample (`label<TAB>premise<TAB>hypothesis`), detokenised by default."""
    path = Path(path)
    examples = []
    for number, (label, premise, hypothesis) in _rows(path, 3, header=None):
        if detokenize:
            premise, hypothesis = detokenize_ptb(premise), detokenize_ptb(hypothesis)
        examples.append(_example(premise, hypothesis, label, path, number, language="en"))
    return _warn_empty(examples, path)


def read_cad_snli(path: str | Path) -> list[NliExample]:
    """Read a counterfactually-augmented-data SNLI TSV (`sentence1 sentence2 gold_label`)."""
    path = Path(path)
    examples = [
        _example(premise, hypothesis, label, path, number, language="en")
        for number, (premise, hypothesis, label) in _rows(path, len(CAD_HEADER), CAD_HEADER)
    ]
    return _warn_empty(examples, path)


def read_nli(path: str | Path, format: str, **options) -> list[NliExample]:
    """Read an NLI file in one of `NLI_FORMATS`; `options` go to that format's reader."""
    readers = {"americasnli": read_americasnli, "textfooler": read_textfooler, "cad": read_cad_snli}
    if format not in readers:
        raise ValueError(f"format={format!r} is not supported; use one of {', '.join(NLI_FORMATS)}")
    return readers[format](path, **options)
