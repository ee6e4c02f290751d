"""The exception raised for malformed data files."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """Malformed content in a data file, located by file and 1-based line number.

    The message reads `FILE:LINE: problem`, the form editors and terminals turn into a link.
    """

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path = Path(path)
        self.line = line
        self.problem = message
        location = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{location}: {message}")
