"""Provenance of result files: git commit, file hashes, package versions and atomic JSON writing.

Every metrics file that the entry points write records where it came from, so that a number in a
table can be traced back to the code, the data file and the models that produced it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import sft
from sft.constants import SFT_CONFIG_NAME

from .data.atomic import atomic_open

logger = logging.getLogger(__name__)

# Distributions whose versions every result file records.
RECORDED_PACKAGES: tuple[str, ...] = (
    "torch", "transformers", "composable-sft", "datasets", "tokenizers", "seqeval", "numpy",
)

_READ_CHUNK_BYTES = 1 << 20


def git_blob_id(path: str | os.PathLike) -> str:
    """Compute the git blob id of a file, as `git hash-object FILE` prints it.

    The id is the SHA-1 of `b"blob <size>\\0"` followed by the file's bytes, so it matches the
    `git_blob` column of the data registry without needing git.
    """
    path = Path(path)
    digest = hashlib.sha1()
    digest.update(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_READ_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Compute the SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_READ_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """Return the commit checked out in the git repository containing `path`, or None.

    `path` defaults to this package's source folder, so an editable install reports the commit of
    the checkout. None means the code is not inside a git work tree or git is not installed.
    """
    folder = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        completed = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=False, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.warning("Could not run git to read the commit of %s: %s", folder, error)
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip() or None


def git_is_dirty(path: str | os.PathLike | None = None) -> bool | None:
    """Return whether tracked files of the repository containing `path` have uncommitted changes.

    None means unknown: the code is not in a git work tree, or git is not installed.
    """
    folder = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        completed = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=False, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    return bool(completed.stdout.strip())


def package_versions(packages: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str | None]:
    """Return the versions of Python, the imported `sft` library and each distribution (None if absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "sft": sft.__version__}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe_file(path: str | os.PathLike) -> dict[str, Any]:
    """Describe a data file by its path, size and git blob id."""
    path = Path(path)
    return {"path": str(path), "bytes": path.stat().st_size, "git_blob": git_blob_id(path)}


def describe_model_folder(name_or_path: str) -> dict[str, Any]:
    """Describe a base model by its name or path and, for a local folder, the hash of config.json."""
    folder = Path(name_or_path)
    config_file = folder / "config.json"
    return {
        "name_or_path": str(name_or_path),
        "config_sha256": sha256_file(config_file) if config_file.is_file() else None,
    }


def describe_sft_folder(name_or_path: str) -> dict[str, Any]:
    """Describe an SFT by its name or path and, for a local folder, the hash of its config file."""
    config_file = Path(name_or_path) / SFT_CONFIG_NAME
    return {
        "name_or_path": str(name_or_path),
        "config_sha256": sha256_file(config_file) if config_file.is_file() else None,
    }


def repository_state() -> dict[str, Any]:
    """Return the git commit of this code (None outside git) and whether tracked files changed."""
    return {"commit": git_commit(), "dirty": git_is_dirty()}


def write_json_atomic(path: str | os.PathLike, payload: Any) -> None:
    """Write `payload` as indented, key-sorted JSON to `path` without leaving a partial file.

    A reader sees either the previous file or the complete new one (see `atomic_open`).
    """
    with atomic_open(path, "w") as handle:
        handle.write(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
