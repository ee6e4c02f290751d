"""Readers of the plain input files of the model commands: running text and TAB-separated words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid UTF-8 ({error.reason} at byte "
                                 f"{error.start} of the line)") from None
            yield number, line.rstrip("\r\n")


def read_text_lines(path: str | Path) -> Iterator[str]:
    """Yield the non-blank lines of a running-text file, without the line break."""
    for _, line in _numbered_lines(Path(path)):
        if line.strip():
            yield line


def read_word_lines(path: str | Path) -> Iterator[list[str]]:
    """Yield the TAB-separated words of each non-blank line of a words file."""
    for number, line in _numbered_lines(Path(path)):
        if not line.strip():
            continue
        words = line.split("\t")
        for column, word in enumerate(words, start=1):
            if not word.strip():
                raise ValueError(
                    f"{path}:{number}: word {column} is empty; words files hold one sentence "
                    "per line with non-empty words separated by single TABs"
                )
        yield words


def parse_language_files(specs: list[str]) -> dict[str, Path]:
    """Parse ``LANG=FILE`` items into an ordered mapping, checking that each file exists."""
    corpora: dict[str, Path] = {}
    for spec in specs:
        language, separator, path = spec.partition("=")
        if not separator or not language or not path:
            raise ValueError(f"text: {spec!r} is not of the form LANG=FILE")
        if language in corpora:
            raise ValueError(f"text: language {language!r} is given twice")
        if not Path(path).is_file():
            raise FileNotFoundError(f"text: corpus file {path} for {language!r} does not exist")
        corpora[language] = Path(path)
    return corpora
