"""Reader for NER files in CoNLL format, with tags mapped onto the shared `NER_TAGS`.

A file has one `token TAG` line per token, separated by whitespace, and a blank line between
sentences. When a line has more columns, as in the four-column CoNLL-2003 files, the first is the
token and the last the tag. `-DOCSTART-` lines are skipped and end a sentence.

Entity types are mapped by a type map such as `{"DATE": "O"}` (MasakhaNER) or `{"MISC": "O"}`:
a type mapped to "O" turns its B- and I- tags into O, and a type mapped to another name is
renamed. Every tag must end up in `NER_TAGS`. Anything else raises `DataFormatError` with the file
and line, so that an unexpected type is never dropped silently.

An I- tag that does not continue an entity of its type (the previous tag is neither B- nor I- of
the same type) is repaired to B- by default. That is how seqeval's default (non-strict) mode scores
such a tag, so repaired training data and scores agree; a warning reports how many were repaired.
Pass `orphan_inside="reject"` to raise instead. After DATE is mapped to O, the MasakhaNER 1.0 train
files of Hausa, Luganda, Naija and Yoruba have 1 to 5 such tags each.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from xlt.data.errors import DataFormatError
from xlt.data.records import NER_TAGS, NerSentence

logger = logging.getLogger(__name__)

DOCSTART = "-DOCSTART-"
OUTSIDE = "O"
ORPHAN_INSIDE_POLICIES: tuple[str, ...] = ("repair", "reject")

# Entity types of NER_TAGS, in order: PER, ORG, LOC.
ENTITY_TYPES: tuple[str, ...] = tuple(dict.fromkeys(tag[2:] for tag in NER_TAGS if tag != OUTSIDE))

_NER_TAGS = frozenset(NER_TAGS)


def check_type_map(type_map: Mapping[str, str]) -> dict[str, str]:
    """Return `type_map` as a dict after checking that every target is "O" or a shared type."""
    allowed = (OUTSIDE, *ENTITY_TYPES)
    for source, target in type_map.items():
        if not isinstance(source, str) or not isinstance(target, str):
            raise TypeError(f"type_map entry {source!r}: {target!r} must map a string to a string")
        if target not in allowed:
            raise ValueError(
                f"type_map maps {source!r} to {target!r}; a type must map to one of "
                f"{', '.join(allowed)}"
            )
    return dict(type_map)


def _map_tag(tag: str, type_map: Mapping[str, str], path: Path, line: int) -> str:
    if tag == OUTSIDE:
        return tag
    prefix, separator, entity_type = tag.partition("-")
    if not separator or prefix not in ("B", "I") or not entity_type:
        raise DataFormatError(
            path,
            line,
            f"invalid tag {tag!r}: expected O, B-<TYPE> or I-<TYPE> (IOB2; BIOES tags are not "
            "supported)",
        )
    target = type_map.get(entity_type, entity_type)
    mapped = OUTSIDE if target == OUTSIDE else f"{prefix}-{target}"
    if mapped not in _NER_TAGS:
        raise DataFormatError(
            path,
            line,
            f"unknown tag {tag!r}: the entity type {entity_type!r} is not one of "
            f"{', '.join(ENTITY_TYPES)}; map it in the type map (for example {entity_type}: O)",
        )
    return mapped


def iter_ner_conll(
    path: str | Path,
    type_map: Mapping[str, str] | None = None,
    orphan_inside: str = "repair",
) -> Iterator[NerSentence]:
    """Yield the sentences of a CoNLL-format NER file with tags mapped by `type_map`."""
    path = Path(path)
    type_map = check_type_map(type_map or {})
    if orphan_inside not in ORPHAN_INSIDE_POLICIES:
        raise ValueError(
            f"orphan_inside={orphan_inside!r} is not supported; use one of "
            f"{', '.join(ORPHAN_INSIDE_POLICIES)}"
        )

    tokens: list[str] = []
    tags: list[str] = []
    repaired_lines: list[int] = []

    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                line = line.lstrip("\ufeff")
            columns = line.split()
            if not columns or columns[0] == DOCSTART:
                if tokens:
                    yield NerSentence(tokens=tokens, tags=tags)
                    tokens, tags = [], []
                continue
            if len(columns) < 2:
                raise DataFormatError(
                    path,
                    number,
                    f"expected a token and a tag separated by whitespace, found {line.strip()!r}",
                )

            tag = _map_tag(columns[-1], type_map, path, number)
            if tag.startswith("I-"):
                previous = tags[-1] if tags else OUTSIDE
                if previous[2:] != tag[2:]:
                    if orphan_inside == "reject":
                        raise DataFormatError(
                            path,
                            number,
                            f"tag {columns[-1]!r} continues no entity (previous tag: {previous}); "
                            f"expected B-{tag[2:]} or I-{tag[2:]} before it",
                        )
                    tag = "B-" + tag[2:]
                    repaired_lines.append(number)
            tokens.append(columns[0])
            tags.append(tag)

    if tokens:
        yield NerSentence(tokens=tokens, tags=tags)
    if repaired_lines:
        first_lines = ", ".join(str(line) for line in repaired_lines[:5])
        logger.warning(
            "%s: changed %d I- tags that continue no entity to B- (lines %s%s)",
            path,
            len(repaired_lines),
            first_lines,
            ", ..." if len(repaired_lines) > 5 else "",
        )


def read_ner_conll(
    path: str | Path,
    type_map: Mapping[str, str] | None = None,
    orphan_inside: str = "repair",
) -> list[NerSentence]:
    """Read every sentence of a CoNLL-format NER file; see the module docstring for the rules."""
    return list(iter_ner_conll(path, type_map, orphan_inside))
