"""MAD-X baseline: language and task adapters from the `adapters` library (AdapterHub).

MAD-X trains one language adapter per language by masked-LM, with invertible adapters on the
embeddings, and a task adapter on labelled source-language data stacked on the frozen
source-language adapter. At test time the target-language adapter takes
the source one's place in `Stack(language, task)`. `xlt-train --method madx` trains both kinds
and `xlt-evaluate --task_adapter ... --language_adapter ...` composes them. This package contains
the pieces both entry points share: adapter configurations, the artifact format and budgets.
"""

from .arguments import AdapterArguments
from .artifact import (
    HEAD_WEIGHTS_NAME,
    MADX_CONFIG_NAME,
    AdapterModule,
    load_adapter_module,
    read_adapter_config,
)
from .config import ADAPTER_KINDS, MadxConfig, MadxFormatError
from .modules import activate, add_adapter, build_adapter_config, init_adapters, set_trainable

__all__ = [
    "ADAPTER_KINDS",
    "HEAD_WEIGHTS_NAME",
    "MADX_CONFIG_NAME",
    "AdapterArguments",
    "AdapterModule",
    "MadxConfig",
    "MadxFormatError",
    "activate",
    "add_adapter",
    "build_adapter_config",
    "init_adapters",
    "load_adapter_module",
    "read_adapter_config",
    "set_trainable",
]
