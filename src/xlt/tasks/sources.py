"""Reading a task's data file: the readers of `xlt.data` plus format detection and text lines."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ..data.errors import DataFormatError
from ..data.ner import read_ner_conll
from ..data.nli import AMERICASNLI_HEADER, CAD_HEADER, NLI_FORMATS, read_nli
from ..data.records import NerSentence, NliExample, UdSentence
from ..data.ud import read_conllu

logger = logging.getLogger(__name__)

# NLI format value that picks the format from the file's first line.
AUTO_FORMAT = "auto"

# Entity types that both sources and targets map to O: CoNLL-2003's MISC and MasakhaNER's DATE
# are not in the shared tag set `NER_TAGS`.
DEFAULT_NER_TYPE_MAP: dict[str, str] = {"DATE": "O", "MISC": "O"}


def read_ud_sentences(path: str | Path) -> list[UdSentence]:
    """Read the sentences of a CoNLL-U treebank file."""
    return read_conllu(path)


def read_ner_sentences(
    path: str | Path, type_map: Mapping[str, str] | None = None
) -> list[NerSentence]:
    """Read a CoNLL-format NER file, mapping entity types by `type_map` (default: DATE, MISC to O)."""
    return read_ner_conll(path, DEFAULT_NER_TYPE_MAP if type_map is None else type_map)


def detect_nli_format(path: str | Path) -> str:
    """Detect the NLI format of a file from its header line (AmericasNLI, CAD, else TextFooler)."""
    with open(path, encoding="utf-8-sig") as handle:
        first_line = handle.readline().rstrip("\r\n")
    columns = tuple(first_line.split("\t"))
    if columns == AMERICASNLI_HEADER:
        return "americasnli"
    if columns == CAD_HEADER:
        return "cad"
    return "textfooler"


def read_nli_examples(path: str | Path, format: str = AUTO_FORMAT) -> list[NliExample]:
    """Read an NLI file in one of `NLI_FORMATS`, or detect the format with `format="auto"`."""
    if format == AUTO_FORMAT:
        format = detect_nli_format(path)
        logger.info("%s: read as NLI format %r", path, format)
    elif format not in NLI_FORMATS:
        raise ValueError(
            f"NLI format {format!r} is not supported; use {AUTO_FORMAT} or one of "
            f"{', '.join(NLI_FORMATS)}"
        )
    return read_nli(path, format)


def read_text_lines(path: str | Path) -> list[str]:
    """Read a plain-text file (one sentence or paragraph per line), dropping blank lines."""
    path = Path(path)
    lines = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(path, number, f"the line is not valid UTF-8 ({error})") from None
            if number == 1:
                line = line.lstrip("\ufeff")
            line = line.strip()
            if line:
                lines.append(line)
    return lines
