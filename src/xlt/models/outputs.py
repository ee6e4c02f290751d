"""Writing model folders: atomic replacement, and the provenance record that goes with them."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xlt.provenance import package_versions, repository_state


def provenance() -> dict[str, Any]:
    """Return the git state of this code and the versions of the packages that shape outputs."""
    return {"repository": repository_state(), "packages": package_versions()}


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path` that replaces `path` when the block succeeds.

    An existing folder at `path` is kept until the new one is complete, and the temporary folder
    is deleted when the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    # mkdtemp and some writers (mkstemp, safetensors) create owner-only entries; give them the
    # permissions that the umask allows, as a plain mkdir or open would.
    mask = _current_umask()
    os.chmod(staging, 0o777 & ~mask)
    for item in staging.rglob("*"):
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)

    previous = None
    if path.exists():
        previous = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.rmdir(previous)
        os.rename(path, previous)
    os.rename(staging, path)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
