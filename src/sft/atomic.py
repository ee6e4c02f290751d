"""Atomic file writes: write a temporary file in the target folder, then rename it."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success, move it onto `path`.

    The caller writes the whole file to the yielded path. When the block exits normally, the
    file is flushed to disk and renamed onto `path` with os.replace, so readers see either
    the old file or the complete new one. When the block raises, the temporary file is
    removed and `path` is left untouched.
    """
    target = Path(path)
    temporary_path = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        # Create the file first to learn the mode the umask gives new files: some writers
        # (safetensors) replace it with a file readable by its owner only.
        temporary_path.touch()
        mode = temporary_path.stat().st_mode & 0o777
        yield temporary_path
        os.chmod(temporary_path, mode)
        with open(temporary_path, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary_path, target)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
