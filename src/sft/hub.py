"""Downloading SFTs from and uploading them to the Hugging Face hub.

NOTE: the tests never reach the hub, so these functions are exercised only by users.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional

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
    revision: Optional[str] = None,
    cache_dir: Optional[str] = None,
    token: Optional[str | bool] = None,
    local_files_only: bool = False,
) -> Path:
    """Download the SFT files of a hub model repository and return the local snapshot folder."""
    from huggingface_hub import snapshot_download

    logger.info("Downloading SFT %s (revision %s) from the hub", repo_id, revision or "main")
    folder = snapshot_download(
        repo_id,
        revision=revision,
        allow_patterns=SFT_FILE_PATTERNS,
        cache_dir=cache_dir,
        token=token,
        local_files_only=local_files_only,
    )
    return Path(folder)


def upload_sft(
    sft: "SFT",
    repo_id: str,
    file_format: str,
    private: Optional[bool] = None,
    token: Optional[str | bool] = None,
    revision: Optional[str] = None,
    commit_message: Optional[str] = None,
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
