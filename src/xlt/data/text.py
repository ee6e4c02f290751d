"""Readers for the raw-text sources of the masked-LM corpora, and sentence normalisation.

Each reader yields the raw sentences (or lines) of one file; `normalize_sentence` then turns a
sentence into its corpus form. The readers, by the name used in the language catalogue:

- "plain": one sentence per line.
- "leipzig": Leipzig Corpora Collection `*-sentences.txt`, `id<TAB>sentence` per line.
- "bible_xml": CES XML of the bible-corpus, one `<seg>` element per verse.
- "lafand_jsonl": lafand-mt JSON lines, `{"translation": {"<lang>": "...", ...}}`; the option
  `field` names the language key to read (the target side, or `en` for English).
- "paragraphs": one paragraph per line, split into sentences by `split_sentences`.
- "conllu_text": the `# text =` comments of a CoNLL-U file (the surface tokens joined by spaces
  where a sentence has no `# text`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

from xlt.data.errors import DataFormatError
from xlt.data.ud import iter_conllu

_INITIALS = re.compile(r"(?:\w\.)+")
_CLOSING = "\"'»”’)]"
_OPENING = "\"'«„“‘([-–—"


def normalize_sentence(text: str) -> str:
    """Return `text` in Unicode NFC with every run of whitespace turned into one space, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _ends_sentence(word: str) -> bool:
    core = word.rstrip(_CLOSING)
    if not core or core[-1] not in ".!?…":
        return False
    # A period after one letter or after initials such as "А.П." is not taken as a sentence end.
    return not (core.endswith(".") and _INITIALS.fullmatch(core))


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph after `. ! ? …` when the next word starts with a capital letter.

    A heuristic for sources without sentence boundaries. Initials (`А.П.`) do not end a sentence,
    but other abbreviations followed by a capitalised word do.
    """
    words = paragraph.split()
    sentences: list[list[str]] = [[]]
    for index, word in enumerate(words):
        sentences[-1].append(word)
        if index + 1 == len(words):
            break
        following = words[index + 1].lstrip(_OPENING)
        if _ends_sentence(word) and following[:1].isupper():
            sentences.append([])
    return [" ".join(sentence) for sentence in sentences if sentence]


def read_plain(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8-sig") as handle:
        yield from handle


def read_leipzig(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            identifier, separator, sentence = line.rstrip("\r\n").partition("\t")
            if not separator or not identifier.strip().isdigit():
                raise DataFormatError(
                    path,
                    number,
                    "expected a Leipzig sentence line: a numeric sentence ID, a tab, the sentence",
                )
            yield sentence


def read_bible_xml(path: Path) -> Iterator[str]:
    try:
        for _, element in ElementTree.iterparse(path, events=("end",)):
            if element.tag == "seg":
                yield "".join(element.itertext())
                element.clear()
    except ElementTree.ParseError as error:
        line, column = error.position
        raise DataFormatError(path, line, f"invalid XML at column {column}: {error}") from None


def read_lafand_jsonl(path: Path, field: str) -> Iterator[str]:
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataFormatError(path, number, f"invalid JSON: {error}") from None
            translation = record.get("translation") if isinstance(record, dict) else None
            if not isinstance(translation, dict) or not isinstance(translation.get(field), str):
                keys = sorted(translation) if isinstance(translation, dict) else []
                raise DataFormatError(
                    path,
                    number,
                    f"expected an object with a string at translation.{field}; found the "
                    f"translation keys {keys}",
                )
            yield translation[field]


def read_paragraphs(path: Path) -> Iterator[str]:
    for paragraph in read_plain(path):
        yield from split_sentences(paragraph)


def read_conllu_text(path: Path) -> Iterator[str]:
    for sentence in iter_conllu(path):
        yield sentence.text if sentence.text is not None else " ".join(sentence.tokens)


TEXT_READERS: dict[str, Callable[..., Iterator[str]]] = {
    "plain": read_plain,
    "leipzig": read_leipzig,
    "bible_xml": read_bible_xml,
    "lafand_jsonl": read_lafand_jsonl,
    "paragraphs": read_paragraphs,
    "conllu_text": read_conllu_text,
}

# Options each reader requires; readers take no other options.
TEXT_READER_OPTIONS: dict[str, tuple[str, ...]] = {"lafand_jsonl": ("field",)}


def read_text_source(path: str | Path, reader: str, **options: str) -> Iterator[str]:
    """Yield the raw sentences of `path` read by the reader named `reader` (see `TEXT_READERS`)."""
    if reader not in TEXT_READERS:
        raise ValueError(
            f"reader={reader!r} is not supported; use one of {', '.join(TEXT_READERS)}"
        )
    expected = set(TEXT_READER_OPTIONS.get(reader, ()))
    if set(options) != expected:
        raise ValueError(
            f"reader {reader!r} takes the options {sorted(expected)}, got {sorted(options)}"
        )
    return TEXT_READERS[reader](Path(path), **options)
