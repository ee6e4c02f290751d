"""Fetch registered files by download or from a data mirror, verifying each git blob id.

Each file goes to `<root>/github/<org>/<repo>/<path>`. Without a mirror it is downloaded from
`https://raw.githubusercontent.com/<org>/<repo>/<commit>/<path>`. With a mirror (a folder laid out
as `github/<org>/<repo>/<path>`) it is copied or symlinked from there and the network is never
used. In both modes the git blob id (sha1 of `b"blob <size>\\0"` followed by the bytes) must equal
the registry's. A mismatch deletes the file and raises `BlobMismatchError` naming both ids.

Files of an extra registry (`--extra-registry`) are outside the data mirror, so they can only be
downloaded, and a request for one with a mirror raises `NotInMirrorError`. Where such a row gives
no git blob id, the first download is not verified. Its id and size are logged and written to
`<file>.blob.json` beside the file, and every later fetch verifies against that record.

Command line, one or more targets per call (the form a workflow rule uses)::

    python -m xlt.data.fetch --root resources --mirror ../shared/data \
        resources/github/UniversalDependencies/UD_Maltese-MUDT/mt_mudt-ud-test.conllu
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import logging
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from xlt.data.atomic import atomic_open, atomic_write_text
from xlt.data.registry import (
    DEFAULT_REGISTRY,
    EXTRA_REGISTRY_NAME,
    LOCAL_PREFIX,
    RAW_GITHUB_URL,
    Registry,
    RegistryEntry,
    read_registries,
)

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path("resources")
_CHUNK_SIZE = 1 << 20

# Suffix of the record beside a downloaded file whose registry row has no git blob id.
RECORD_SUFFIX = ".blob.json"

# Callable with the signature of `urllib.request.urlopen(url, timeout=...)`.
UrlOpener = Callable[..., object]


class BlobMismatchError(RuntimeError):
    """A fetched file whose git blob id differs from the expected one; the file has been deleted.

    The expected id is the registry's, or for an unpinned row of an extra registry the one
    recorded at the first download (`record` names that record file).
    """

    def __init__(
        self,
        entry: RegistryEntry,
        actual: str,
        source: str,
        expected: str | None = None,
        record: Path | None = None,
    ):
        self.entry = entry
        self.expected = expected or entry.git_blob
        self.actual = actual
        if record is None:
            origin = f"registry, commit {entry.commit}"
            remedy = "update the registry if the new content is intended"
        else:
            origin = f"recorded at the first download in {record}"
            remedy = f"delete {record} to accept the new content"
        super().__init__(
            f"git blob id mismatch for {entry.local_path} (from {source}): expected "
            f"{self.expected} ({origin}), got {actual}; the file was deleted. The source changed "
            f"or is corrupt: check it, or {remedy}."
        )


class NotInMirrorError(FileNotFoundError):
    """A file of the extra registry requested from the data mirror, which has none of them."""


def git_blob_id(path: str | Path) -> str:
    """Return the git blob id of a file: sha1 of `b"blob <size>\\0"` followed by its bytes."""
    path = Path(path)
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode("ascii"))
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_id_of_bytes(data: bytes) -> str:
    """Return the git blob id of `data`."""
    return hashlib.sha1(f"blob {len(data)}\0".encode("ascii") + data).hexdigest()


def record_path(target: str | Path) -> Path:
    """Return the path of the record beside `target` that an unpinned download writes."""
    target = Path(target)
    return target.with_name(target.name + RECORD_SUFFIX)


def read_record(target: str | Path) -> dict[str, object] | None:
    """Return the record beside `target` (git blob id, size, address), or None when it has none.

    Raises ValueError naming the record when it is not a valid record.
    """
    path = record_path(target)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path}: invalid record ({error}); delete it to download the file again"
        ) from None
    blob = record.get("git_blob") if isinstance(record, dict) else None
    size = record.get("bytes") if isinstance(record, dict) else None
    if not (isinstance(blob, str) and len(blob) == 40 and isinstance(size, int)):
        raise ValueError(
            f"{path}: invalid record, expected an object with git_blob (40 hex digits) and bytes; "
            "delete it to download the file again"
        )
    return record


def _expected_blob(entry: RegistryEntry, target: Path) -> tuple[str | None, Path | None]:
    """Return the git blob id a fetch of `entry` must match, and the record it comes from.

    The registry's id wins. Without one, the id recorded at the first download is used; without
    a record, the id is unknown (None, None).
    """
    if entry.git_blob is not None:
        return entry.git_blob, None
    record = read_record(target)
    if record is None:
        return None, None
    return str(record["git_blob"]), record_path(target)


def _blob_checker(
    entry: RegistryEntry, source: str, target: Path, expected: str, record: Path | None = None
) -> Callable[[Path], None]:
    """Return a check for a fetched temporary file that raises `BlobMismatchError` on a mismatch.

    On a mismatch the temporary file is deleted by `atomic_open`, and an older file at `target`
    (which failed the same check before this fetch started) is deleted as well, so that no
    unverified content stays at the registered path.
    """

    def check(temporary: Path) -> None:
        actual = git_blob_id(temporary)
        if actual != expected:
            if target.is_symlink() or target.exists():
                target.unlink()
            raise BlobMismatchError(entry, actual, source, expected=expected, record=record)

    return check


def _already_present(expected: str | None, target: Path, link: bool) -> bool:
    """Return whether `target` exists in the requested form with the expected content."""
    if expected is None or not target.exists():
        return False
    if target.is_symlink() != link:
        return False
    return git_blob_id(target) == expected


def _copy_from_mirror(entry: RegistryEntry, mirror: Path, target: Path, link: bool) -> None:
    source = mirror / entry.local_path
    if not source.is_file():
        raise FileNotFoundError(
            f"{entry.local_path} is registered but missing from the data mirror {mirror} "
            f"(looked for {source}); check the mirror path, or fetch without --mirror on a "
            "machine with network access"
        )
    check = _blob_checker(entry, str(source), target, entry.git_blob)
    if link:
        # The mirror file is checked before the link is made, because a link has no content of
        # its own and the mirror is read-only.
        check(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.link.tmp")
        if temporary.is_symlink() or temporary.exists():
            temporary.unlink()
        os.symlink(source.resolve(), temporary)
        os.replace(temporary, target)
    else:
        with open(source, "rb") as reader, atomic_open(target, "wb", verify=check) as writer:
            shutil.copyfileobj(reader, writer, _CHUNK_SIZE)


def _download(
    entry: RegistryEntry,
    target: Path,
    base_url: str,
    opener: UrlOpener,
    timeout: float,
    retries: int,
    expected: str | None,
    record: Path | None,
) -> None:
    """Download `entry` to `target`, verified against `expected` unless it is None."""
    url = entry.url(base_url)
    check = None if expected is None else _blob_checker(entry, url, target, expected, record)
    for attempt in range(1, retries + 2):
        try:
            with (
                opener(url, timeout=timeout) as response,
                atomic_open(target, "wb", verify=check) as writer,
            ):
                shutil.copyfileobj(response, writer, _CHUNK_SIZE)
            return
        except urllib.error.HTTPError as error:
            # A 404 or 403 does not go away on retry: the commit or path is wrong.
            if error.code < 500 or attempt > retries:
                raise OSError(
                    f"download of {url} failed: HTTP {error.code} {error.reason}"
                ) from error
            logger.warning(
                "download of %s failed (HTTP %s), attempt %d of %d; retrying",
                url,
                error.code,
                attempt,
                retries + 1,
            )
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            TimeoutError,
            ConnectionError,
        ) as error:
            if attempt > retries:
                raise OSError(
                    f"download of {url} failed after {attempt} attempts: {error}; without network "
                    "access, pass --mirror with a data mirror folder instead"
                ) from error
            logger.warning(
                "download of %s failed (%s), attempt %d of %d; retrying",
                url,
                error,
                attempt,
                retries + 1,
            )
        time.sleep(min(2.0**attempt, 30.0))


def fetch_entry(
    entry: RegistryEntry,
    root: str | Path = DEFAULT_ROOT,
    *,
    mirror: str | Path | None = None,
    link: bool = False,
    base_url: str = RAW_GITHUB_URL,
    opener: UrlOpener = urllib.request.urlopen,
    timeout: float = 60.0,
    retries: int = 2,
) -> Path:
    """Fetch one registered file to `<root>/github/<org>/<repo>/<path>` and return that path.

    With `mirror`, copy the file from the mirror (or symlink it when `link` is true) without using
    the network. Otherwise download it from `base_url` with `opener`, retrying network errors and
    HTTP 5xx `retries` times. A file already present with the expected blob id is kept as it is.
    The expected id is the registry's. For an extra-registry row without one, it is the id that
    this function recorded beside the file at its first download (`read_record`).
    Raises `BlobMismatchError` (after deleting the file) when the content differs,
    `NotInMirrorError` when a mirror is given for a file of the extra registry, FileNotFoundError
    when the mirror lacks the file and OSError when the download fails.
    """
    target = Path(root) / entry.local_path
    expected, record = _expected_blob(entry, target)
    if _already_present(expected, target, link=link and mirror is not None and entry.in_mirror):
        logger.debug("%s is already present and verified", target)
        return target

    if mirror is not None:
        if not entry.in_mirror:
            raise NotInMirrorError(
                f"{entry.local_path} is in the extra registry of files outside the data mirror, "
                f"so it is not in the data mirror {mirror}; fetch it without --mirror on a machine "
                f"with network access, then copy {target} (and {record_path(target).name}, if "
                "written) to this machine"
            )
        _copy_from_mirror(entry, Path(mirror), target, link)
        logger.info("%s %s from %s", "linked" if link else "copied", entry.local_path, mirror)
        return target

    _download(entry, target, base_url, opener, timeout, retries, expected, record)
    if expected is None:
        _write_record(entry, target, entry.url(base_url))
    else:
        logger.info("downloaded %s", entry.local_path)
    return target


def _write_record(entry: RegistryEntry, target: Path, url: str) -> None:
    """Record the git blob id and size of a first, unverified download beside the file."""
    blob, size = git_blob_id(target), target.stat().st_size
    record = {
        "git_blob": blob,
        "bytes": size,
        "url": url,
        "commit": entry.commit,
        "downloaded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(record_path(target), json.dumps(record, indent=2, sort_keys=True) + "\n")
    logger.warning(
        "downloaded %s (%d bytes, git blob %s) without verification, because its registry row has "
        "no git blob id; recorded in %s, which later fetches verify against. Put the id and size "
        "into the registry row to pin the file.",
        entry.local_path,
        size,
        blob,
        record_path(target),
    )


def fetch_entries(
    entries: Iterable[RegistryEntry], root: str | Path = DEFAULT_ROOT, **options
) -> list[Path]:
    """Fetch several entries with `fetch_entry`; stop at the first failure."""
    return [fetch_entry(entry, root, **options) for entry in entries]


def local_path_of_target(target: str | Path, root: str | Path) -> str:
    """Turn a target (`<root>/github/...` or `github/...`) into its registry key `github/...`."""
    target_path = Path(target)
    root_path = Path(root)
    if target_path.parts[:1] != (LOCAL_PREFIX,):
        try:
            target_path = target_path.resolve().relative_to(root_path.resolve())
        except ValueError:
            raise ValueError(
                f"target {target} is neither under the root folder {root} nor of the form "
                f"{LOCAL_PREFIX}/<org>/<repo>/<path>"
            ) from None
    return target_path.as_posix()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.data.fetch",
        description=(
            "Fetch registered data files into ROOT/github/<org>/<repo>/<path>, from a data mirror "
            "or by download, and verify their git blob ids."
        ),
    )
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="file to fetch, as ROOT/github/<org>/<repo>/<path> or github/<org>/<repo>/<path>",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="fetch every file of the registry (with --mirror: every file of the mirror)",
    )
    parser.add_argument(
        "--registry",
        type=Path,
        default=DEFAULT_REGISTRY,
        help=f"registry TSV (default: {DEFAULT_REGISTRY})",
    )
    parser.add_argument(
        "--extra-registry",
        type=Path,
        default=None,
        help="extra registry TSV of files outside the data mirror, looked up after --registry; its "
        f"files can only be downloaded (default: {EXTRA_REGISTRY_NAME} beside --registry, when "
        "that file exists)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help=f"folder that receives github/<org>/<repo>/<path> (default: {DEFAULT_ROOT})",
    )
    parser.add_argument(
        "--mirror",
        type=Path,
        default=None,
        help="data mirror folder laid out as github/<org>/<repo>/<path>; when given, files are "
        "copied from it and the network is not used",
    )
    parser.add_argument(
        "--link",
        action="store_true",
        help="with --mirror, create symbolic links to the mirror's files instead of copies",
    )
    parser.add_argument(
        "--base-url",
        default=RAW_GITHUB_URL,
        help="download server, followed by /<org>/<repo>/<commit>/<path> "
        f"(default: {RAW_GITHUB_URL})",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per download request")
    parser.add_argument(
        "--retries", type=int, default=2, help="extra attempts after a network error"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.link and args.mirror is None:
        parser.error("--link needs --mirror")
    if not args.all and not args.targets:
        parser.error("name at least one TARGET, or pass --all")

    try:
        extra_registry = args.extra_registry
        if extra_registry is None and args.registry.with_name(EXTRA_REGISTRY_NAME).is_file():
            extra_registry = args.registry.with_name(EXTRA_REGISTRY_NAME)
        registry: Registry = read_registries(args.registry, extra_registry)
        if args.all:
            entries = list(registry)
            if args.mirror is not None:
                # The extra registry's files are never in a data mirror.
                entries = [entry for entry in entries if entry.in_mirror]
                skipped = len(registry) - len(entries)
                if skipped:
                    logger.info("skipped %d files of the extra registry (not in the mirror)", skipped)
        else:
            entries = registry.select(
                local_path_of_target(target, args.root) for target in args.targets
            )
    except (OSError, KeyError, ValueError) as error:
        logger.error("%s", error.args[0] if isinstance(error, KeyError) else error)
        return 2

    try:
        fetch_entries(
            entries,
            args.root,
            mirror=args.mirror,
            link=args.link,
            base_url=args.base_url,
            timeout=args.timeout,
            retries=args.retries,
        )
    except (BlobMismatchError, OSError, ValueError) as error:
        logger.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
