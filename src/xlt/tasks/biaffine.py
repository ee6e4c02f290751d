"""A biaffine dependency parser (Dozat and Manning, ICLR 2017) on top of any Hugging Face encoder.

Word vectors are pooled from the encoder's sub-word vectors (the first sub-word, or the mean of
all sub-words of the word) and the vector of the first special token (`[CLS]` or `<s>`) stands for
the root. Two MLPs project every word to its role as a dependent and as a head, a biaffine scorer
gives every (dependent, head) arc a score, and a second biaffine scorer gives every arc a score per
relation label.

The parser class for an encoder architecture subclasses that architecture's `PreTrainedModel`
base class. It stores the encoder under the same attribute (`bert`, `roberta`, ...) as the
masked-LM and token-classification models do. Encoder parameter names are therefore identical,
and a language SFT applies to the parser unchanged.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, PreTrainedModel
from transformers.modeling_outputs import ModelOutput
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from .arguments import WORD_POOLING_METHODS
from .base import IGNORE_INDEX

# Config attributes that define the parser head, with their defaults.
PARSER_CONFIG_DEFAULTS = {
    "parser_arc_size": 256,
    "parser_relation_size": 128,
    "parser_dropout": 0.1,
    "word_pooling": "first",
}


class Biaffine(nn.Module):
    """Biaffine scorer: `score[b, i, j, o] = [d_i; 1]^T U_o [h_j; 1]` for dependents d and heads h.

    `dependent_bias` and `head_bias` add the linear terms in d and h. The arc scorer leaves out
    the dependent term, because it is the same for every head of a dependent and cancels in the
    softmax over heads.
    """

    def __init__(self, input_size: int, num_outputs: int, dependent_bias: bool, head_bias: bool):
        super().__init__()
        self.dependent_bias = dependent_bias
        self.head_bias = head_bias
        self.weight = nn.Parameter(
            torch.zeros(num_outputs, input_size + dependent_bias, input_size + head_bias)
        )

    def forward(self, dependents: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        if self.dependent_bias:
            dependents = torch.cat([dependents, torch.ones_like(dependents[..., :1])], dim=-1)
        if self.head_bias:
            heads = torch.cat([heads, torch.ones_like(heads[..., :1])], dim=-1)
        return torch.einsum("bix,oxy,bjy->bijo", dependents, self.weight, heads)


def _mlp(input_size: int, output_size: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(input_size, output_size), nn.LeakyReLU(0.1), nn.Dropout(dropout))


class BiaffineParserHead(nn.Module):
    """Arc and relation scorers over word vectors, with the root vector as head candidate 0."""

    def __init__(self, hidden_size: int, num_relations: int, arc_size: int, relation_size: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.arc_dependent = _mlp(hidden_size, arc_size, dropout)
        self.arc_head = _mlp(hidden_size, arc_size, dropout)
        self.relation_dependent = _mlp(hidden_size, relation_size, dropout)
        self.relation_head = _mlp(hidden_size, relation_size, dropout)
        self.arc_scorer = Biaffine(arc_size, 1, dependent_bias=False, head_bias=True)
        self.relation_scorer = Biaffine(relation_size, num_relations, dependent_bias=True, head_bias=True)

    def forward(self, root: torch.Tensor, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score arcs (batch, words, words + 1) and relations (batch, words, words + 1, relations)."""
        nodes = self.dropout(torch.cat([root.unsqueeze(1), words], dim=1))
        words = nodes[:, 1:]
        arc_scores = self.arc_scorer(self.arc_dependent(words), self.arc_head(nodes)).squeeze(-1)
        relation_scores = self.relation_scorer(self.relation_dependent(words), self.relation_head(nodes))
        return arc_scores, relation_scores


def pool_words(
    hidden: torch.Tensor, token_word_ids: torch.Tensor, num_words: int, method: str
) -> torch.Tensor:
    """Pool sub-word vectors (batch, tokens, hidden) into word vectors (batch, num_words, hidden).

    `token_word_ids` gives each token's word index, -1 for special and padding tokens. A word
    without a token gets a zero vector (its scores are masked by the caller).
    """
    batch_size, num_tokens, hidden_size = hidden.shape
    is_word_token = token_word_ids >= 0
    word_index = token_word_ids.clamp(min=0)
    if method == "first":
        positions = torch.arange(num_tokens, device=hidden.device).expand(batch_size, -1)
        positions = torch.where(is_word_token, positions, torch.full_like(positions, num_tokens))
        first = torch.full((batch_size, num_words), num_tokens, dtype=torch.long, device=hidden.device)
        first = first.scatter_reduce(1, word_index, positions, reduce="amin")
        found = first < num_tokens
        pooled = hidden.gather(1, first.clamp(max=num_tokens - 1).unsqueeze(-1).expand(-1, -1, hidden_size))
        return pooled * found.unsqueeze(-1)
    if method == "mean":
        weights = is_word_token.to(hidden.dtype).unsqueeze(-1)
        sums = torch.zeros(batch_size, num_words, hidden_size, dtype=hidden.dtype, device=hidden.device)
        sums = sums.scatter_add(1, word_index.unsqueeze(-1).expand(-1, -1, hidden_size), hidden * weights)
        counts = torch.zeros(batch_size, num_words, 1, dtype=hidden.dtype, device=hidden.device)
        counts = counts.scatter_add(1, word_index.unsqueeze(-1), weights)
        return sums / counts.clamp(min=1.0)
    raise ValueError(f"word pooling must be one of {', '.join(WORD_POOLING_METHODS)}, got {method!r}")


@dataclass
class DependencyParserOutput(ModelOutput):
    """Parser outputs: the loss (with labels), arc and relation scores, and the encoded-word mask.

    `arc_scores[b, i, j]` scores head j (0 = root, j >= 1 = word j) for word i + 1, with invalid
    heads (padding, words without a token, the word itself) at the dtype's minimum.
    `relation_scores[b, i, j, r]` scores relation r for that arc.
    """

    loss: torch.Tensor | None = None
    arc_scores: torch.Tensor | None = None
    relation_scores: torch.Tensor | None = None
    word_mask: torch.Tensor | None = None


class BiaffineParserMixin:
    """Model body shared by the parser classes that `biaffine_parser_class` builds."""

    # Average the loss per batch; the Trainer must not pass num_items_in_batch.
    accepts_loss_kwargs = False

    def __init__(self, config):
        super().__init__(config)
        for name, default in PARSER_CONFIG_DEFAULTS.items():
            if not hasattr(config, name):
                setattr(config, name, default)
        if config.word_pooling not in WORD_POOLING_METHODS:
            raise ValueError(
                f"config.word_pooling must be one of {', '.join(WORD_POOLING_METHODS)}, "
                f"got {config.word_pooling!r}"
            )
        encoder_class = self._encoder_class
        if "add_pooling_layer" in inspect.signature(encoder_class.__init__).parameters:
            encoder = encoder_class(config, add_pooling_layer=False)
        else:
            encoder = encoder_class(config)
        setattr(self, self.base_model_prefix, encoder)
        self.parser = BiaffineParserHead(
            hidden_size=config.hidden_size,
            num_relations=config.num_labels,
            arc_size=config.parser_arc_size,
            relation_size=config.parser_relation_size,
            dropout=config.parser_dropout,
        )
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, Biaffine):
            module.weight.data.zero_()
        else:
            super()._init_weights(module)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        token_word_ids: torch.Tensor | None = None,
        word_mask: torch.Tensor | None = None,
        head_labels: torch.Tensor | None = None,
        relation_labels: torch.Tensor | None = None,
    ) -> DependencyParserOutput:
        """Score every arc and relation of a batch of sentences.

        `token_word_ids` (batch, tokens) maps each token to its word (-1 for special tokens and
        padding), `word_mask` (batch, words) marks the words that have a token. `head_labels`
        (0 = root, word i = i) and `relation_labels` (indices of `config.id2label`) have shape
        (batch, words) with -100 where a word is not scored.
        """
        encoder = getattr(self, self.base_model_prefix)
        encoder_kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            encoder_kwargs["token_type_ids"] = token_type_ids
        hidden = encoder(**encoder_kwargs, return_dict=True).last_hidden_state

        num_words = word_mask.shape[1]
        words = pool_words(hidden, token_word_ids, num_words, self.config.word_pooling)
        arc_scores, relation_scores = self.parser(hidden[:, 0], words)

        node_mask = torch.cat([torch.ones_like(word_mask[:, :1]), word_mask], dim=1).bool()
        valid_heads = node_mask.unsqueeze(1).expand(-1, num_words, -1).clone()
        self_arcs = torch.arange(num_words, device=word_mask.device)
        valid_heads[:, self_arcs, self_arcs + 1] = False
        arc_scores = arc_scores.masked_fill(~valid_heads, torch.finfo(arc_scores.dtype).min)

        loss = None
        if head_labels is not None:
            arc_loss = F.cross_entropy(
                arc_scores.reshape(-1, num_words + 1).float(),
                head_labels.reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
            gold_heads = head_labels.clamp(min=0)
            gold_relation_scores = relation_scores.gather(
                2, gold_heads[:, :, None, None].expand(-1, -1, 1, relation_scores.shape[-1])
            ).squeeze(2)
            relation_targets = relation_labels.masked_fill(head_labels == IGNORE_INDEX, IGNORE_INDEX)
            relation_loss = F.cross_entropy(
                gold_relation_scores.reshape(-1, relation_scores.shape[-1]).float(),
                relation_targets.reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
            if not (head_labels != IGNORE_INDEX).any():
                arc_loss = relation_loss = arc_scores.sum() * 0.0
            loss = arc_loss + relation_loss

        return DependencyParserOutput(
            loss=loss, arc_scores=arc_scores, relation_scores=relation_scores, word_mask=word_mask.bool()
        )


def _pretrained_base_class(encoder_class: type[PreTrainedModel]) -> type[PreTrainedModel]:
    """Return the architecture's `PreTrainedModel` subclass (e.g. BertPreTrainedModel)."""
    for candidate in encoder_class.__mro__[1:]:
        if (
            issubclass(candidate, PreTrainedModel)
            and candidate is not PreTrainedModel
            and candidate.__dict__.get("base_model_prefix")
        ):
            return candidate
    raise TypeError(
        f"{encoder_class.__name__} has no architecture-specific PreTrainedModel base class with a "
        "base_model_prefix; the parser supports encoders such as BertModel and XLMRobertaModel"
    )


@functools.cache
def biaffine_parser_class(encoder_class: type[PreTrainedModel]) -> type[PreTrainedModel]:
    """Return the parser class for an encoder class (e.g. BertModel gives BertForBiaffineParsing)."""
    base_class = _pretrained_base_class(encoder_class)
    architecture = encoder_class.__name__.removesuffix("Model")
    return type(
        f"{architecture}ForBiaffineParsing",
        (BiaffineParserMixin, base_class),
        {
            "_encoder_class": encoder_class,
            "__doc__": f"Biaffine dependency parser over a {encoder_class.__name__} encoder.",
        },
    )


def biaffine_parser_class_for(model_name_or_path: str) -> type[PreTrainedModel]:
    """Return the parser class for the architecture of a checkpoint."""
    config = AutoConfig.from_pretrained(model_name_or_path)
    try:
        encoder_class = MODEL_MAPPING[type(config)]
    except KeyError:
        raise ValueError(
            f"{model_name_or_path}: model type {config.model_type!r} has no encoder class in "
            "transformers"
        ) from None
    return biaffine_parser_class(encoder_class)
