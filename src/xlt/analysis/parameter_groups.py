"""Grouping of encoder parameters by layer and by type, from their names alone.

Names follow the Hugging Face BERT and RoBERTa / XLM-R modules, which share the encoder layout
(`<prefix>.embeddings.word_embeddings.weight`, `<prefix>.encoder.layer.<i>.attention.self.query.weight`,
`<prefix>.encoder.layer.<i>.intermediate.dense.weight`, ...), so the same rules serve both, and
common alternatives (`q_proj`, `fc1`, `layers.<i>`, ...) map to the same types. Parameters that
match no rule fall into `OTHER`.
"""

from __future__ import annotations

import re

EMBEDDINGS = "embeddings"
OTHER = "other"

# Parameter types in display order, each with the pattern its names match. The first pattern
# that matches wins, so the attention output comes before the feed-forward output.
PARAMETER_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in (
        ("word embeddings", r"(^|\.)(word_embeddings|embed_tokens)\."),
        ("position embeddings", r"(^|\.)(position_embeddings|embed_positions)\."),
        ("token type embeddings", r"(^|\.)token_type_embeddings\."),
        ("layer norm", r"(^|\.)(LayerNorm|layer_norm|layernorm|[a-z_]*_layer_norm|ln_\w+)\."),
        ("attention query", r"(^|\.)(query|q_proj|q)\.(weight|bias)$"),
        ("attention key", r"(^|\.)(key|k_proj|k)\.(weight|bias)$"),
        ("attention value", r"(^|\.)(value|v_proj|v)\.(weight|bias)$"),
        ("attention output", r"(^|\.)(attention\.output\.dense|out_proj|o_proj|o)\.(weight|bias)$"),
        ("FFN intermediate", r"(^|\.)(intermediate\.dense|fc1|wi|up_proj)\.(weight|bias)$"),
        ("FFN output", r"(^|\.)(output\.dense|fc2|wo|down_proj)\.(weight|bias)$"),
        ("pooler", r"(^|\.)pooler\."),
    )
)
TYPE_ORDER: tuple[str, ...] = tuple(label for label, _ in PARAMETER_TYPES) + (OTHER,)

_LAYER = re.compile(r"(^|\.)(layer|layers|h|block|blocks)\.(?P<index>\d+)\.")


def parameter_type(name: str) -> str:
    """Return the type of a parameter (a label of `PARAMETER_TYPES`, or `OTHER`)."""
    for label, pattern in PARAMETER_TYPES:
        if pattern.search(name):
            return label
    return OTHER


def layer_group(name: str) -> str:
    """Return "layer <i>" for a parameter of transformer layer i, `EMBEDDINGS`, or `OTHER`."""
    match = _LAYER.search(name)
    if match is not None:
        return f"layer {int(match['index'])}"
    if re.search(r"(^|\.)embeddings?\.|(^|\.)embed_", name):
        return EMBEDDINGS
    return OTHER


def layer_sort_key(group: str) -> tuple[int, int]:
    """Order embeddings first, then layers by index, then `OTHER`."""
    if group == EMBEDDINGS:
        return (0, 0)
    if group.startswith("layer "):
        return (1, int(group.split()[1]))
    return (2, 0)


def type_sort_key(group: str) -> int:
    return TYPE_ORDER.index(group) if group in TYPE_ORDER else len(TYPE_ORDER)
