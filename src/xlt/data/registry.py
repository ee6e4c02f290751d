"""The registry of external data files: one row per file, pinned to a commit and a git blob id.

The registry is a TSV file with the header `org repo commit path bytes git_blob`. Each row names a
file of a public GitHub repository at one commit, its size in bytes and its git blob id (what
`git hash-object FILE` prints), so that a download or a copy from a data mirror can be verified.
Every file lives locally at `github/<org>/<repo>/<path>` under the resources folder, the same
layout as the offline data mirror. Lines starting with `#` are comments.

An extra registry (`configs/data/registry-extra.tsv`) lists files outside the data mirror in the
same columns. Its `commit` may be a release tag such as `r2.7`, and its `bytes` and `git_blob` may
be `-` (unknown), because they cannot be computed without the file. The fetch command records both
at the first download and verifies later fetches against that record (see `xlt.data.fetch`).

Generate the registry from a mirror's manifest with::

    python -m xlt.data.registry --from-manifest ../shared/data/MANIFEST.tsv \
        --output configs/data/registry.tsv
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from xlt.data.atomic import atomic_open
from xlt.data.errors import DataFormatError

logger = logging.getLogger(__name__)

REGISTRY_COLUMNS: tuple[str, ...] = ("org", "repo", "commit", "path", "bytes", "git_blob")

# Registries of this checkout, relative to the repository root: the data mirror's files, and
# the files outside the mirror.
DEFAULT_REGISTRY = Path("configs/data/registry.tsv")
DEFAULT_EXTRA_REGISTRY = Path("configs/data/registry-extra.tsv")

# File name of the extra registry that commands look for beside the main registry.
EXTRA_REGISTRY_NAME = DEFAULT_EXTRA_REGISTRY.name

# Value of the bytes and git_blob columns of an extra registry when they are unknown.
UNKNOWN = "-"

# First character of a comment line.
COMMENT_PREFIX = "#"

# Top folder of every registered file under the resources folder or a data mirror.
LOCAL_PREFIX = "github"

RAW_GITHUB_URL = "https://raw.githubusercontent.com"

_SHA1_HEX = re.compile(r"[0-9a-f]{40}")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# A tag or branch name without slashes, e.g. r2.7.
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class RegistryEntry:
    """One external file: repository, revision, path inside the repository, size and git blob id.

    `commit` is the git revision of the download address: a commit id, or a release tag in an
    extra registry. `bytes` and `git_blob` are None where an extra registry leaves them unknown.
    `in_mirror` is False for the entries of an extra registry, whose files the data mirror lacks.
    """

    org: str
    repo: str
    commit: str
    path: str
    bytes: int | None
    git_blob: str | None
    in_mirror: bool = True

    @property
    def local_path(self) -> str:
        """Path under the resources folder or a data mirror: `github/<org>/<repo>/<path>`."""
        return f"{LOCAL_PREFIX}/{self.org}/{self.repo}/{self.path}"

    def url(self, base_url: str = RAW_GITHUB_URL) -> str:
        """Download address of the file at the pinned commit."""
        return f"{base_url.rstrip('/')}/{self.org}/{self.repo}/{self.commit}/{quote(self.path)}"


class Registry:
    """The registered files, looked up by their local path `github/<org>/<repo>/<path>`."""

    def __init__(self, entries: Iterable[RegistryEntry], source: str | Path = "<registry>"):
        self.source = Path(source)
        self._entries: dict[str, RegistryEntry] = {}
        for entry in entries:
            if entry.local_path in self._entries:
                raise ValueError(f"{self.source}: {entry.local_path} is registered twice")
            self._entries[entry.local_path] = entry

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self):
        return iter(self._entries.values())

    def __contains__(self, local_path: object) -> bool:
        return local_path in self._entries

    def get(self, local_path: str) -> RegistryEntry:
        """Return the entry stored at `local_path` (`github/<org>/<repo>/<path>`)."""
        try:
            return self._entries[local_path]
        except KeyError:
            raise KeyError(
                f"{local_path} is not in the registry {self.source}; registered paths have the "
                f"form {LOCAL_PREFIX}/<org>/<repo>/<path> (regenerate the registry from the "
                "mirror's MANIFEST.tsv if the file is new)"
            ) from None

    def select(self, local_paths: Iterable[str]) -> list[RegistryEntry]:
        """Return the entries of `local_paths`, in order; raise KeyError for an unknown path."""
        return [self.get(path) for path in local_paths]


def _parse_row(fields: Sequence[str], source: Path, line: int, extra: bool) -> RegistryEntry:
    if len(fields) != len(REGISTRY_COLUMNS):
        raise DataFormatError(
            source,
            line,
            f"expected {len(REGISTRY_COLUMNS)} tab-separated columns "
            f"({' '.join(REGISTRY_COLUMNS)}), found {len(fields)}",
        )
    org, repo, commit, path, size, blob = fields

    for column, value in (("org", org), ("repo", repo)):
        if not _NAME.fullmatch(value):
            raise DataFormatError(
                source,
                line,
                f"invalid {column} {value!r}: expected letters, digits, '_', '.' or '-'",
            )
    if not (_SHA1_HEX.fullmatch(commit) or (extra and _REF.fullmatch(commit))):
        expected = "40 lowercase hex digits" + (" or a tag name such as r2.7" if extra else "")
        raise DataFormatError(source, line, f"invalid commit {commit!r}: expected {expected}")
    if not (_SHA1_HEX.fullmatch(blob) or (extra and blob == UNKNOWN)):
        expected = "40 lowercase hex digits" + (f" or {UNKNOWN!r}" if extra else "")
        raise DataFormatError(source, line, f"invalid git_blob {blob!r}: expected {expected}")

    parts = PurePosixPath(path).parts
    if (
        not path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
        or "\\" in path
    ):
        raise DataFormatError(
            source,
            line,
            f"invalid path {path!r}: expected a relative POSIX path inside the repository, "
            "without '.' or '..'",
        )

    if not (size.isdigit() or (extra and size == UNKNOWN)):
        expected = "a non-negative integer" + (f" or {UNKNOWN!r}" if extra else "")
        raise DataFormatError(source, line, f"invalid bytes {size!r}: expected {expected}")

    return RegistryEntry(
        org=org,
        repo=repo,
        commit=commit,
        path=path,
        bytes=None if size == UNKNOWN else int(size),
        git_blob=None if blob == UNKNOWN else blob,
        in_mirror=not extra,
    )


def read_registry(path: str | Path, *, extra: bool = False) -> Registry:
    """Read and validate a registry TSV; errors name the file and line.

    With `extra`, the file is an extra registry of files outside the data mirror: its `commit`
    column may hold a tag, its `bytes` and `git_blob` columns may be unknown (`-`), and its
    entries have `in_mirror` False.
    """
    path = Path(path)
    entries: list[RegistryEntry] = []
    seen: dict[str, int] = {}
    header_found = False
    with open(path, encoding="utf-8", newline="") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if line.startswith(COMMENT_PREFIX) or (header_found and not line):
                continue
            if not header_found:
                _check_header(line, path, line_number)
                header_found = True
                continue
            entry = _parse_row(line.split("\t"), path, line_number, extra)
            if entry.local_path in seen:
                raise DataFormatError(
                    path,
                    line_number,
                    f"{entry.local_path} is already registered on line {seen[entry.local_path]}",
                )
            seen[entry.local_path] = line_number
            entries.append(entry)
    if not header_found:
        _check_header("", path, 1)
    return Registry(entries, source=path)


def _check_header(header: str, path: Path, line: int) -> None:
    if tuple(header.split("\t")) != REGISTRY_COLUMNS:
        raise DataFormatError(
            path,
            line,
            f"invalid header {header!r}: expected the tab-separated columns "
            f"{' '.join(REGISTRY_COLUMNS)}",
        )


def read_registries(registry: str | Path, extra_registry: str | Path | None = None) -> Registry:
    """Read the main registry and, when given, the extra registry of files outside the mirror.

    Raises DataFormatError when a path is in both files, because each file must have one pinned
    source.
    """
    main = read_registry(registry)
    if extra_registry is None:
        return main
    extra = read_registry(extra_registry, extra=True)
    both = sorted(entry.local_path for entry in extra if entry.local_path in main)
    if both:
        raise DataFormatError(
            Path(extra_registry),
            None,
            f"{len(both)} paths are also in the registry {registry}, but a file belongs to one "
            f"registry only: {', '.join(both[:5])}" + (", ..." if len(both) > 5 else ""),
        )
    return Registry([*main, *extra], source=f"{registry} + {extra_registry}")


def write_registry(entries: Iterable[RegistryEntry], path: str | Path) -> int:
    """Write `entries` sorted by local path as a registry TSV (atomically); return the row count."""
    rows = sorted(entries, key=lambda entry: entry.local_path)
    with atomic_open(path) as handle:
        handle.write("\t".join(REGISTRY_COLUMNS) + "\n")
        for entry in rows:
            values = (
                entry.org,
                entry.repo,
                entry.commit,
                entry.path,
                UNKNOWN if entry.bytes is None else str(entry.bytes),
                entry.git_blob or UNKNOWN,
            )
            handle.write("\t".join(values) + "\n")
    return len(rows)


def registry_from_manifest(manifest: str | Path) -> Registry:
    """Read a data mirror's MANIFEST.tsv, which has the registry's columns, with full validation."""
    return read_registry(manifest)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.data.registry",
        description="Generate the data registry from a data mirror's MANIFEST.tsv or check one.",
    )
    parser.add_argument(
        "--from-manifest",
        type=Path,
        metavar="MANIFEST",
        help="MANIFEST.tsv of a data mirror (columns: org repo commit path bytes git_blob)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_REGISTRY,
        help=f"registry TSV to write (default: {DEFAULT_REGISTRY})",
    )
    parser.add_argument(
        "--check",
        type=Path,
        metavar="REGISTRY",
        help="only validate this registry TSV and print its row count",
    )
    parser.add_argument(
        "--extra",
        action="store_true",
        help="with --check: validate REGISTRY as an extra registry (tags and '-' values allowed)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.extra and args.check is None:
        parser.error("--extra needs --check REGISTRY")
    if args.check is not None:
        registry = read_registry(args.check, extra=args.extra)
        logger.info("%s: %d valid entries", args.check, len(registry))
        return 0
    if args.from_manifest is None:
        parser.error("give --from-manifest MANIFEST to generate a registry, or --check REGISTRY")

    registry = registry_from_manifest(args.from_manifest)
    count = write_registry(registry, args.output)
    logger.info("wrote %d entries from %s to %s", count, args.from_manifest, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
