"""CoNLL-U reader for the word-level tasks (POS tagging and dependency parsing).

Lines are parsed with the `conllu` package. Multiword-token ranges (`1-2`) and empty nodes (`1.1`)
are left out of the word sequence, so word `i` of a `UdSentence` has CoNLL-U ID `i + 1`. The
reader keeps every comment, the UPOS tag, the HEAD and the universal part of DEPREL (the subtype
after ':' is dropped). It raises `DataFormatError` naming the file and line for:

- a line without 10 tab-separated columns, an invalid ID or word IDs out of sequence;
- a non-integer HEAD, a HEAD outside the sentence or equal to the word's own ID;
- a sentence without exactly one root;
- an unknown UPOS tag or universal relation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from conllu.exceptions import ParseException
from conllu.parser import DEFAULT_FIELDS, parse_comment_line, parse_id_value

from xlt.data.errors import DataFormatError
from xlt.data.records import UNIVERSAL_DEPRELS, UPOS_TAGS, UdSentence

CONLLU_COLUMNS = len(DEFAULT_FIELDS)

_UPOS = frozenset(UPOS_TAGS)
_DEPRELS = frozenset(UNIVERSAL_DEPRELS)
_FORM, _UPOS_COLUMN, _HEAD, _DEPREL = (
    DEFAULT_FIELDS.index(name) for name in ("form", "upos", "head", "deprel")
)


@dataclass
class _Block:
    """Lines of one sentence with their 1-based line numbers."""

    comments: list[tuple[int, str]] = field(default_factory=list)
    tokens: list[tuple[int, str]] = field(default_factory=list)

    @property
    def first_line(self) -> int:
        lines = [number for number, _ in self.comments[:1] + self.tokens[:1]]
        return min(lines)


def _blocks(path: Path) -> Iterator[_Block]:
    block = _Block()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if number == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                if block.comments or block.tokens:
                    yield block
                    block = _Block()
            elif line.startswith("#"):
                if block.tokens:
                    raise DataFormatError(
                        path,
                        number,
                        "comment line inside a sentence; comments must come before the first "
                        "token line of a sentence",
                    )
                block.comments.append((number, line))
            else:
                block.tokens.append((number, line))
    if block.comments or block.tokens:
        yield block


def _sentence(block: _Block, path: Path) -> UdSentence:
    comments: dict[str, str] = {}
    for number, line in block.comments:
        try:
            pairs = parse_comment_line(line)
        except ParseException as error:
            raise DataFormatError(path, number, f"invalid comment line: {error}") from None
        for key, value in pairs:
            comments[key] = "" if value is None else value

    if not block.tokens:
        raise DataFormatError(path, block.first_line, "sentence has comments but no token lines")

    words: list[str] = []
    upos: list[str] = []
    raw_heads: list[tuple[int, str]] = []
    deprels: list[str] = []
    tokens: list[str] = []
    covered_until = 0  # last word ID covered by a multiword token already added to `tokens`

    for number, line in block.tokens:
        columns = line.split("\t")
        if len(columns) != CONLLU_COLUMNS:
            raise DataFormatError(
                path,
                number,
                f"expected {CONLLU_COLUMNS} tab-separated columns "
                f"({' '.join(name.upper() for name in DEFAULT_FIELDS)}), found {len(columns)}",
            )
        # FEATS, DEPS and MISC are not needed, and HEAD gets its own checks with clearer
        # messages, so `conllu` parses only the ID column.
        try:
            token_id = parse_id_value(columns[0])
        except ParseException as error:
            raise DataFormatError(path, number, f"invalid ID: {error}") from None
        if token_id is None:
            raise DataFormatError(path, number, "missing ID ('_' in the ID column)")
        form, tag = columns[_FORM], columns[_UPOS_COLUMN]
        raw_head, deprel = columns[_HEAD], columns[_DEPREL]
        if isinstance(token_id, tuple):
            if token_id[1] == "-":
                tokens.append(form)
                covered_until = token_id[2]
            continue  # multiword-token range or empty node: not a syntactic word

        if token_id != len(words) + 1:
            raise DataFormatError(
                path,
                number,
                f"word ID {token_id} out of sequence: expected {len(words) + 1} (word IDs of a "
                "sentence run 1, 2, 3, ...)",
            )
        if tag not in _UPOS:
            raise DataFormatError(
                path,
                number,
                f"unknown UPOS tag {tag!r} for word {token_id} {form!r}; "
                f"expected one of {', '.join(UPOS_TAGS)}",
            )
        relation = deprel.split(":", 1)[0]
        if relation not in _DEPRELS:
            raise DataFormatError(
                path,
                number,
                f"unknown dependency relation {deprel!r} for word {token_id} {form!r}; its part "
                f"before ':' must be one of the universal relations {', '.join(UNIVERSAL_DEPRELS)}",
            )

        words.append(form)
        upos.append(tag)
        raw_heads.append((number, raw_head))
        deprels.append(relation)
        if token_id > covered_until:
            tokens.append(form)

    heads = [
        _head(raw, index + 1, len(words), words[index], path, number)
        for index, (number, raw) in enumerate(raw_heads)
    ]
    roots = heads.count(0)
    if roots != 1:
        raise DataFormatError(
            path,
            block.tokens[0][0],
            f"sentence has {roots} words with HEAD 0; a dependency tree has exactly one root",
        )
    return UdSentence(
        words=words,
        upos=upos,
        heads=heads,
        deprels=deprels,
        sent_id=comments.get("sent_id"),
        text=comments.get("text"),
        comments=comments,
        tokens=tokens,
    )


def _head(raw: str, word_id: int, length: int, form: str, path: Path, number: int) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise DataFormatError(
            path,
            number,
            f"invalid HEAD {raw!r} for word {word_id} {form!r}: expected an integer word ID, "
            "0 for the root",
        )
    head = int(raw)
    if head > length:
        raise DataFormatError(
            path,
            number,
            f"HEAD {head} of word {word_id} {form!r} is outside the sentence, which has "
            f"{length} words",
        )
    if head == word_id:
        raise DataFormatError(path, number, f"HEAD of word {word_id} {form!r} is the word itself")
    return head


def iter_conllu(path: str | Path) -> Iterator[UdSentence]:
    """Yield the sentences of a CoNLL-U file as `UdSentence` records, checking each line."""
    path = Path(path)
    for block in _blocks(path):
        yield _sentence(block, path)


def read_conllu(path: str | Path) -> list[UdSentence]:
    """Read every sentence of a CoNLL-U file; see the module docstring for the checks."""
    return list(iter_conllu(path))
