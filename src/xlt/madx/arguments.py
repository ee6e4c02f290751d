"""Command-line options of MAD-X adapter training (`xlt-train --method madx`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters import SeqBnConfig, SeqBnInvConfig

# Defaults of the `adapters` library's MAD-X configurations (adapters 1.3.0: 16 and 2).
DEFAULT_REDUCTION_FACTOR: float = SeqBnConfig().reduction_factor
DEFAULT_INV_REDUCTION_FACTOR: float = SeqBnInvConfig().inv_adapter_reduction_factor


@dataclass
class AdapterArguments:
    """Adapter sizes and the language adapter that a task adapter is stacked on."""

    language_adapter: str | None = field(
        default=None,
        metadata={
            "help": "Task adapters: folder of the source-language adapter (written by `xlt-train "
            "--method madx --task mlm`), loaded frozen and stacked under the task adapter, "
            "`Stack(language, task)`. Leave out to train the task adapter on the bare model."
        },
    )
    adapter_reduction_factor: float = field(
        default=DEFAULT_REDUCTION_FACTOR,
        metadata={
            "help": "Bottleneck reduction factor of the adapter in every layer: the bottleneck has "
            "hidden size // factor units, so a factor below 1 makes it wider than the hidden size. "
            "Sets the parameter budget; `python -m xlt.madx.budget` counts it for a model."
        },
    )
    inv_adapter_reduction_factor: float = field(
        default=DEFAULT_INV_REDUCTION_FACTOR,
        metadata={
            "help": "Language adapters: reduction factor of the invertible (NICE) adapter on the "
            "embeddings. Ignored for task adapters, which have none."
        },
    )

    def __post_init__(self):
        if self.language_adapter is not None and not self.language_adapter:
            raise ValueError("language_adapter must name a folder, got an empty value")
        for name in ("adapter_reduction_factor", "inv_adapter_reduction_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
