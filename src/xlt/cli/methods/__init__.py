"""Training methods that `xlt-train --method` selects. Importing a method module registers it."""

from . import dense, madx, sparse  # noqa: F401  (registers the methods)
from .base import METHODS, TrainingJob, TrainingMethod, TrainingResult, get_method, register_method

__all__ = ["METHODS", "TrainingJob", "TrainingMethod", "TrainingResult", "get_method", "register_method"]
