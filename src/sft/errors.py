"""Exceptions raised by the sft library."""


class SftFormatError(ValueError):
    """An SFT file is invalid, unsafe to load or written by an unsupported format version."""


class BaseModelMismatchError(ValueError):
    """An SFT was made for another base model than the one it is applied to or composed with."""


class RevertOrderError(RuntimeError):
    """An SFT is reverted while it is not the most recently applied SFT on the model."""
