"""File names and format identifiers shared by the readers and writers of SFT files."""

# Default format: a folder with a safetensors file and a JSON config.
SFT_WEIGHTS_NAME = "sft.safetensors"
SFT_CONFIG_NAME = "sft_config.json"

# Version of the default format. Readers reject files with a higher version.
FORMAT_VERSION = 1

# Legacy format of the original composable-sft library: one torch.save pickle per folder.
LEGACY_WEIGHTS_NAME = "pytorch_diff.bin"

# Values accepted by `file_format` in `SFT.save_pretrained`.
SAFETENSORS_FORMAT = "safetensors"
LEGACY_FORMAT = "legacy"
FILE_FORMATS = (SAFETENSORS_FORMAT, LEGACY_FORMAT)

# Kinds of SFT recorded in the config. None means unknown (for example a legacy file).
SFT_KINDS = ("language", "task", "composed")

# Policies for a base-model fingerprint mismatch, accepted by `apply` and `compose`.
MISMATCH_POLICIES = ("warn", "raise", "ignore")
