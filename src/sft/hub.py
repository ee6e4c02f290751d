"""Downloading SFTs from and uploading them to the Hugging Face hub.

NOTE: the tests never reach the hub, so these functions are exercised only by users.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .constants import LEGACY_WEIGHTS_NAME, SFT_CONFIG_NAME, SFT_WEIGHTS_NAME

if TYPE_CHECKING:
    from .sft import SFT

logger = logging.getLogger(__name__)

SFT_FILE_PATTERNS = [SFT_WEIGHTS_NAME, SFT_CONFIG_NAME, LEGACY_WEIGHTS_NAME]


def is_hub_repo_id(name: str) -> bool:
    """Return whether `name` is a syntactically valid hub repository id."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def download_sft_folder(
    repo_id: str,
    revision: str | None = None,
    cache_dir: str | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> Path:
    """Download the SFT files of a hub model repository and return the local snapshot folder."""
    from huggingface_hub import snapshot_download

    logger.info("Downloading SFT %s (revision %s) from the hub", repo_id, revision or "main")
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=SFT_FILE_PATTERNS,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
        )
    except (OSError, ValueError) as error:
        # huggingface_hub's errors for missing repositories, offline mode and cache misses
        # derive from OSError or ValueError.
        raise FileNotFoundError(
            f"no SFT found at {repo_id!r}: there is no such local file or folder, and downloading "
            f"it as a hub repository failed: {error}"
        ) from error
    return Path(folder)


def upload_sft(
    sft: SFT,
    repo_id: str,
    file_format: str,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Save `sft` to a temporary folder, upload it to `repo_id` and return the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory() as folder:
        sft.save_pretrained(folder, file_format=file_format)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            revision=revision,
            commit_message=commit_message or "Upload SFT",
            repo_type="model",
        )
    logger.info("Uploaded %s to %s", sft.display_name, repo_id)
    return str(commit)
