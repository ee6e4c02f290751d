"""Composable sparse fine-tuning (SFT) of Hugging Face transformers.

An SFT is a sparse difference over a pretrained model's weights plus dense values for
fully tuned parameters such as the head. SFTs are learned with Lottery Ticket sparse
fine-tuning (`LotteryTicketSparseFineTuner`), stored with `SFT.save_pretrained`, combined
with `SFT.compose` and applied to a model with `SFT.apply`. Multi-source task SFTs are trained
with `MultiSourceSparseFineTuner` on a `MultiSourceDataset`, one language SFT per source.
"""

from .arguments import SftArguments
from .config import SftConfig
from .errors import BaseModelMismatchError, RevertOrderError, SftFormatError
from .model_utils import apply_freeze_options, maskable_parameter_names
from .multisource_data import (
    BATCH_SOURCE_KEY,
    MultiSourceBatchSampler,
    MultiSourceCollator,
    MultiSourceDataset,
    SourceExample,
)
from .multisource_trainer import (
    MultiSourceSparseFineTuner,
    MultiSourceTrainer,
    MultiSourceTrainingMixin,
)
from .sft import SFT
from .sparse_diff import SparseDiff
from .trainer import LotteryTicketSparseFineTuner, SparseFineTuningMixin, make_sparse_fine_tuner
from .version import __version__

__all__ = [
    "BATCH_SOURCE_KEY",
    "SFT",
    "BaseModelMismatchError",
    "LotteryTicketSparseFineTuner",
    "MultiSourceBatchSampler",
    "MultiSourceCollator",
    "MultiSourceDataset",
    "MultiSourceSparseFineTuner",
    "MultiSourceTrainer",
    "MultiSourceTrainingMixin",
    "RevertOrderError",
    "SftArguments",
    "SftConfig",
    "SftFormatError",
    "SourceExample",
    "SparseDiff",
    "SparseFineTuningMixin",
    "__version__",
    "apply_freeze_options",
    "make_sparse_fine_tuner",
    "maskable_parameter_names",
]
