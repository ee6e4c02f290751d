"""The registry of external data files: one row per file, pinned to a commit and a git blob id.

The registry is a TSV file with the header `org repo commit path bytes git_blob`. Each row names a
file of a public GitHub repository at one commit, its size in bytes and its git blob id (what
`git hash-object FILE` prints), so that a download or a copy from a data mirror can be verified.
Every file lives locally at `github/<org>/<repo>/<path>` under the resources folder, the same
layout as the offline data mirror.

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

# Registry of this checkout, relative to the repository root.
DEFAULT_REGISTRY = Path("configs/data/registry.tsv")

# Top folder of every registered file under the resources folder or a data mirror.
LOCAL_PREFIX = "github"

RAW_GITHUB_URL = "https://raw.githubusercontent.com"

_SHA1_HEX = re.compile(r"[0-9a-f]{40}")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class RegistryEntry:
    """One external file: repository, commit, path inside the repository, size and git blob id."""

    org: str
    repo: str
    commit: str
    path: str
    bytes: int
    git_blob: str

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


def _parse_row(fields: Sequence[str], source: Path, line: int) -> RegistryEntry:
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
    for column, value in (("commit", commit), ("git_blob", blob)):
        if not _SHA1_HEX.fullmatch(value):
            raise DataFormatError(
                source, line, f"invalid {column} {value!r}: expected 40 lowercase hex digits"
            )

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

    if not size.isdigit():
        raise DataFormatError(
            source, line, f"invalid bytes {size!r}: expected a non-negative integer"
        )

    return RegistryEntry(
        org=org, repo=repo, commit=commit, path=path, bytes=int(size), git_blob=blob
    )


def read_registry(path: str | Path) -> Registry:
    """Read and validate a registry TSV; errors name the file and line."""
    path = Path(path)
    entries: list[RegistryEntry] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n")
        if tuple(header.split("\t")) != REGISTRY_COLUMNS:
            raise DataFormatError(
                path,
                1,
                f"invalid header {header!r}: expected the tab-separated columns "
                f"{' '.join(REGISTRY_COLUMNS)}",
            )
        for line_number, line in enumerate(handle, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            entry = _parse_row(line.split("\t"), path, line_number)
            if entry.local_path in seen:
                raise DataFormatError(
                    path,
                    line_number,
                    f"{entry.local_path} is already registered on line {seen[entry.local_path]}",
                )
            seen[entry.local_path] = line_number
            entries.append(entry)
    return Registry(entries, source=path)


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
                str(entry.bytes),
                entry.git_blob,
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.check is not None:
        registry = read_registry(args.check)
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
