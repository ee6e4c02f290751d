"""Label inventories and the example records that every reader returns and every task consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

# The 17 universal part-of-speech tags (https://universaldependencies.org/u/pos/).
UPOS_TAGS: tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)

# The 37 universal dependency relations (https://universaldependencies.org/u/dep/),
# without language-specific subtypes.
UNIVERSAL_DEPRELS: tuple[str, ...] = (
    "acl", "advcl", "advmod", "amod", "appos", "aux", "case", "cc", "ccomp", "clf",
    "compound", "conj", "cop", "csubj", "dep", "det", "discourse", "dislocated", "expl",
    "fixed", "flat", "goeswith", "iobj", "list", "mark", "nmod", "nsubj", "nummod", "obj",
    "obl", "orphan", "parataxis", "punct", "reparandum", "root", "vocative", "xcomp",
)

# Entity tags shared by the English source (CoNLL-2003 with MISC mapped to O) and MasakhaNER
# (with DATE mapped to O).
NER_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

# One label order for every NLI source and target.
NLI_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")


@dataclass
class UdSentence:
    """One sentence of a CoNLL-U file, restricted to its syntactic words.

    Multiword-token ranges and empty nodes are not included. `heads` are 1-based word indices
    with 0 for the root, and `deprels` are universal relations without their subtype.
    `tokens` are the surface tokens in order: a multiword token's form replaces its words.
    """

    words: list[str]
    upos: list[str]
    heads: list[int]
    deprels: list[str]
    sent_id: str | None = None
    text: str | None = None
    comments: dict[str, str] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)


@dataclass
class NerSentence:
    """One sentence of a CoNLL-format NER file, with tags already mapped to `NER_TAGS`."""

    tokens: list[str]
    tags: list[str]


@dataclass
class NliExample:
    """One premise-hypothesis pair; `label` indexes `NLI_LABELS`."""

    premise: str
    hypothesis: str
    label: int
    language: str | None = None
    example_id: str | None = None
