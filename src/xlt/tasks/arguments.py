"""Options of the tasks' models and data processing, parsed by `HfArgumentParser`.

The options that shape a task head (parser sizes, word pooling) are recorded in every task SFT's
config, so evaluation rebuilds the same head before applying the SFT's stored head values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

WORD_POOLING_METHODS: tuple[str, ...] = ("first", "mean")


@dataclass
class TaskArguments:
    """Task-specific options. Each one only affects the tasks named in its help text."""

    mlm_probability: float = field(
        default=0.15,
        metadata={
            "help": "Masked-LM: fraction of tokens selected for prediction. Of the selected tokens, "
            "8 in 10 become the mask token, 1 in 10 a random token and 1 in 10 stay unchanged."
        },
    )
    mlm_eval_masking_seed: int = field(
        default=0,
        metadata={
            "help": "Masked-LM: seed of the torch.Generator that masks the validation and test "
            "blocks once, so that loss and accuracy are comparable between evaluations."
        },
    )
    freeze_mlm_head: bool = field(
        default=False,
        metadata={
            "help": "Masked-LM: keep every parameter of the prediction head fixed (the "
            "transform, its layer norm and the output bias; the output embedding follows the "
            "SftArguments options freeze_decoder and untie_embeddings)."
        },
    )
    word_pooling: str = field(
        default="first",
        metadata={
            "help": "Dependency parsing: how a word's vector is built from its sub-word vectors: "
            "'first' takes the first sub-word, 'mean' averages all of them."
        },
    )
    parser_arc_size: int = field(
        default=256,
        metadata={"help": "Dependency parsing: output size of the arc MLPs (head and dependent)."},
    )
    parser_relation_size: int = field(
        default=128,
        metadata={"help": "Dependency parsing: output size of the relation MLPs (head and dependent)."},
    )
    parser_dropout: float = field(
        default=0.1,
        metadata={"help": "Dependency parsing: dropout on word vectors and MLP outputs of the parser head."},
    )

    def __post_init__(self):
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(
                f"mlm_probability must be between 0 and 1 (exclusive), got {self.mlm_probability}"
            )
        if self.word_pooling not in WORD_POOLING_METHODS:
            raise ValueError(
                f"word_pooling must be one of {', '.join(WORD_POOLING_METHODS)}, "
                f"got {self.word_pooling!r}"
            )
        for name in ("parser_arc_size", "parser_relation_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.parser_dropout < 1.0:
            raise ValueError(f"parser_dropout must be in [0, 1), got {self.parser_dropout}")

    def to_dict(self) -> dict[str, Any]:
        """Return the options as a plain dict (for SFT configs and metrics files)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TaskArguments:
        """Rebuild the options from `to_dict()` output, ignoring keys this version does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})
