"""Base-model fingerprints: which model an SFT was made for, and how to compare them."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence

from .constants import MISMATCH_POLICIES
from .errors import BaseModelMismatchError

logger = logging.getLogger(__name__)

# Snapshot folders of the Hugging Face hub cache: .../models--<org>--<name>/snapshots/<revision>
_HUB_CACHE_SNAPSHOT = re.compile(r"(?:^|/)models--(?P<repo>[^/]+)/snapshots/[^/]+$")


def parameter_shapes_digest(shapes: Mapping[str, Sequence[int]]) -> str:
    """Return the hex SHA-256 digest of the sorted `name<TAB>d0,d1,...` lines of `shapes`."""
    lines = [
        f"{name}\t{','.join(str(int(d)) for d in shape)}\n"
        for name, shape in sorted(shapes.items())
    ]
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def canonical_model_name(name_or_path: str | None) -> str | None:
    """Reduce a hub id or local path to the model's own name, for comparison.

    The result is the last path component, case-folded: "bert-base-multilingual-cased",
    "google-bert/bert-base-multilingual-cased" and "/data/models/bert-base-multilingual-cased/"
    all give "bert-base-multilingual-cased". A hub cache snapshot folder
    (".../models--org--name/snapshots/<revision>") gives the repository name. Returns None
    for None or an empty string.
    """
    if not name_or_path:
        return None
    normalized = name_or_path.replace("\\", "/").rstrip("/")
    match = _HUB_CACHE_SNAPSHOT.search(normalized)
    if match:
        normalized = match.group("repo").split("--")[-1]
    name = normalized.rsplit("/", 1)[-1]
    return name.casefold() or None


def same_base_model(first: str | None, second: str | None) -> bool | None:
    """Return whether two model names denote the same model, or None when either is unknown.

    Names match when their `canonical_model_name`s are equal. This tolerates the same model
    stored under different local folders, but two different models saved in folders with
    the same final name also match.
    """
    first_name, second_name = canonical_model_name(first), canonical_model_name(second)
    if first_name is None or second_name is None:
        return None
    return first_name == second_name


def check_mismatch_policy(on_mismatch: str) -> None:
    if on_mismatch not in MISMATCH_POLICIES:
        raise ValueError(f"on_mismatch must be one of {MISMATCH_POLICIES}, got {on_mismatch!r}")


def report_mismatch(message: str, on_mismatch: str) -> None:
    """Raise BaseModelMismatchError, log a warning or log at debug level, per `on_mismatch`."""
    check_mismatch_policy(on_mismatch)
    if on_mismatch == "raise":
        raise BaseModelMismatchError(message)
    if on_mismatch == "warn":
        logger.warning(message)
    else:
        logger.debug(message)
