"""XLM-R-style fast tokenizer (SentencePiece Unigram) built from pieces, scores and a charsmap."""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from transformers import XLMRobertaTokenizerFast

BOS, PAD, EOS, UNK, MASK = "<s>", "<pad>", "</s>", "<unk>", "<mask>"
METASPACE = "\u2581"
# Maximum sequence length of the XLM-R family, special tokens included.
MODEL_MAX_LENGTH = 512


def build_xlmr_tokenizer(
    pieces: Sequence[str],
    scores: Sequence[float],
    charsmap: bytes,
    model_max_length: int = MODEL_MAX_LENGTH,
) -> XLMRobertaTokenizerFast:
    """Build an `XLMRobertaTokenizerFast` over a Unigram vocabulary.

    The pipeline is the one that transformers 4.57 (``XLMRobertaConverter``) builds for XLM-R.
    The normaliser applies the SentencePiece charsmap, removes trailing whitespace and turns runs
    of spaces into one ``▁``. A Metaspace pre-tokenizer prepends ``▁`` to the text (and to each
    word of pre-split input), Unigram Viterbi search segments it, and the templates are
    ``<s> A </s>`` and ``<s> A </s></s> B </s>``, with token type 0 throughout. `pieces` must contain ``<s>``,
    ``<pad>``, ``</s>``, ``<unk>`` and ``<mask>``.
    """
    if len(pieces) != len(scores):
        raise ValueError(f"{len(pieces)} pieces but {len(scores)} scores; give one score per piece")
    ids = {piece: index for index, piece in enumerate(pieces)}
    missing = [token for token in (BOS, PAD, EOS, UNK, MASK) if token not in ids]
    if missing:
        raise ValueError(f"special tokens {missing} missing from the vocabulary")

    backend = Tokenizer(
        models.Unigram([(piece, float(score)) for piece, score in zip(pieces, scores)],
                       unk_id=ids[UNK], byte_fallback=False)
    )
    # NOTE: `Precompiled` first looks up each whole grapheme cluster shorter than 6 bytes, and a
    # cluster whose first code point has a mapping becomes that mapping alone, so a combining
    # mark after, say, a compatibility character is dropped (tokenizers 0.22). SentencePiece
    # engines that map code point by code point keep the mark. XLM-R's own fast tokenizer
    # behaves the same way as this one.
    backend.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(charsmap),
            normalizers.Strip(left=False, right=True),
            normalizers.Replace(Regex(" {2,}"), METASPACE),
        ]
    )
    backend.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=METASPACE, prepend_scheme="always", split=True
    )
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        pair=f"{BOS} $A {EOS} {EOS} $B {EOS}",
        special_tokens=[(BOS, ids[BOS]), (EOS, ids[EOS])],
    )
    backend.add_special_tokens(
        [
            AddedToken(BOS, special=True, normalized=False),
            AddedToken(PAD, special=True, normalized=False),
            AddedToken(EOS, special=True, normalized=False),
            AddedToken(UNK, special=True, normalized=False),
            AddedToken(MASK, special=True, lstrip=True, normalized=False),
        ]
    )
    return XLMRobertaTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        sep_token=EOS,
        cls_token=BOS,
        unk_token=UNK,
        pad_token=PAD,
        mask_token=AddedToken(MASK, lstrip=True, rstrip=False, special=True, normalized=False),
        model_max_length=model_max_length,
    )
