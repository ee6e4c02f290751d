"""Atomic file writes: a temporary file in the target folder, then `os.replace`."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(
    path: str | Path,
    mode: str = "w",
    encoding: str | None = "utf-8",
    verify: Callable[[Path], None] | None = None,
) -> Iterator[IO]:
    """Open a temporary file beside `path` and move it onto `path` when the block succeeds.

    Readers never see a half-written file, and an exception inside the block leaves any earlier
    file at `path` untouched. `verify`, when given, is called with the closed temporary file
    before the move. If it raises, the temporary file is deleted and `path` is left as it was.
    Missing parent folders are created. `mode` is "w" or "wb".
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r} is not supported; use 'w' or 'wb'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        # mkstemp creates the file readable by its owner only; give it the usual umask mode.
        os.chmod(temporary, 0o666 & ~_current_umask())
        if mode == "wb":
            handle = os.fdopen(descriptor, "wb")
        else:
            handle = os.fdopen(descriptor, "w", encoding=encoding, newline="\n")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if verify is not None:
            verify(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` as UTF-8 through `atomic_open`."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
