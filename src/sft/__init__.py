"""Composable sparse fine-tuning (SFT) of Hugging Face transformers."""

from .version import __version__

__all__ = ["__version__"]
