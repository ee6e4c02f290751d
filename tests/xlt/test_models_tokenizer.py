"""The SentencePiece charsmap builder and the XLM-R-style Unigram tokenizer built from a vocabulary."""

from __future__ import annotations

import random

import numpy as np
import pytest
from tokenizers import normalizers
from transformers import AutoTokenizer

from xlt.models.charsmap import build_codepoint_charsmap, build_precompiled_charsmap
from xlt.models.unigram_tokenizer import METASPACE, build_xlmr_tokenizer

PIECES = [
    "<s>", "<pad>", "</s>", "<unk>", METASPACE, "\u2581a", "a", "b", "c", "\u2581ab", "ab", "bc",
    "\u2581abc", "\u2581b", "\u2581c", "ca", "fi", "\u2581fi", "A", "\u2581A", "é", "\u2581é",
    "<mask>",
]
NORMALIZATION = {
    0x09: (0x20,),
    0x0B: (),
    0xA0: (0x20,),
    0x200B: (0x20,),
    0xFB01: (0x66, 0x69),
    0xFF21: (0x41,),
    0x2581: (0x20,),
}


def scores(seed: int = 0) -> list[float]:
    """Distinct negative scores for the ordinary pieces (so that no two segmentations tie)."""
    rng = np.random.default_rng(seed)
    ordinary = -1.0 - rng.permutation(len(PIECES) - 5) * 0.731 - rng.random(len(PIECES) - 5) * 0.1
    return [0.0] * 4 + ordinary.tolist() + [0.0]


def engine_tokenize(text: str, piece_scores: list[float], strip_right: bool = True) -> list[int]:
    """Content ids as e5.c's `tok_content` computes them (one <unk> per unknown character).

    With `strip_right`, trailing spaces are removed after normalisation first, as SentencePiece
    and the fast tokenizer do; the engine itself keeps them (``strip_right=False``).
    """
    code_points = []
    for character in text:
        code_points.extend(NORMALIZATION.get(ord(character), (ord(character),)))
    collapsed: list[int] = []
    for code_point in code_points:
        if code_point == 0x20 and collapsed and collapsed[-1] == 0x20:
            continue
        collapsed.append(code_point)
    normalized = "".join(map(chr, collapsed))
    if strip_right:
        normalized = normalized.rstrip(" ")
    if not normalized or normalized[0] != " ":
        normalized = " " + normalized
    normalized = normalized.replace(" ", METASPACE)

    index = {piece: i for i, piece in enumerate(PIECES)}
    unknown_score = min(piece_scores) - 10
    best = [-np.inf] * (len(normalized) + 1)
    back: list[tuple[int, int]] = [(0, 0)] * (len(normalized) + 1)
    best[0] = 0.0
    for start in range(len(normalized)):
        for end in range(start + 1, len(normalized) + 1):
            piece_id = index.get(normalized[start:end])
            if piece_id is not None and piece_id != 3:
                score = best[start] + piece_scores[piece_id]
                if score > best[end]:
                    best[end], back[end] = score, (start, piece_id)
        if best[start] + unknown_score > best[start + 1]:
            best[start + 1], back[start + 1] = best[start] + unknown_score, (start, 3)
    ids = []
    position = len(normalized)
    while position > 0:
        position, piece_id = back[position]
        ids.append(piece_id)
    return ids[::-1]


def collapse_unknown_runs(ids: list[int]) -> list[int]:
    return [token for i, token in enumerate(ids) if not (token == 3 and i and ids[i - 1] == 3)]


@pytest.fixture(scope="module")
def tokenizer():
    charsmap = build_codepoint_charsmap(NORMALIZATION)
    return build_xlmr_tokenizer(PIECES, scores(), charsmap)


def test_charsmap_maps_every_entry():
    normalizer = normalizers.Precompiled(build_codepoint_charsmap(NORMALIZATION))
    for code_point, replacement in NORMALIZATION.items():
        assert normalizer.normalize_str(chr(code_point)) == "".join(map(chr, replacement))
    assert normalizer.normalize_str("abc é") == "abc é"


def test_charsmap_many_multibyte_keys():
    rng = random.Random(3)
    mapping = {}
    for code_point in rng.sample(range(0x80, 0x30000), 3000):
        if 0xD800 <= code_point < 0xE000:
            continue
        mapping[chr(code_point)] = "".join(chr(rng.randrange(0x20, 0x7F))
                                           for _ in range(rng.randrange(0, 4)))
    normalizer = normalizers.Precompiled(build_precompiled_charsmap(mapping))
    for key, value in mapping.items():
        assert normalizer.normalize_str(key) == value, hex(ord(key))
    text = "".join(rng.choice(list(mapping)) + "x" for _ in range(200))
    expected = "".join(mapping.get(c, c) for c in text)
    assert normalizer.normalize_str(text) == expected


def test_charsmap_leaves_other_characters_alone():
    # Keys share UTF-8 lead bytes with many unmapped characters (U+0587 with U+0580, for
    # example), and the trie must not send those down another key's branch.
    rng = random.Random(5)
    mapping = {chr(c): chr(c + 1) * rng.randrange(0, 3) for c in rng.sample(range(0xA0, 0x3000), 800)}
    mapping["\u0587"] = "\u0565\u0582"
    normalizer = normalizers.Precompiled(build_precompiled_charsmap(mapping))
    for code_point in range(0x20, 0x3000):
        character = chr(code_point)
        expected = mapping.get(character, character)
        assert normalizer.normalize_str(character) == expected, hex(code_point)


def test_charsmap_rejects_empty_key():
    with pytest.raises(ValueError, match="non-empty"):
        build_precompiled_charsmap({"": "x"})


def test_tokenizer_matches_engine_on_random_text(tokenizer):
    alphabet = ["a", "b", "c", "é", " ", "  ", "\t", "\u00a0", "\u200b", "\u000b", "\ufb01",
                "\uff21", "A", "z", "q", "\u2581"]
    rng = random.Random(0)
    piece_scores = scores()
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
        if not text.strip(" \t\u00a0\u200b\u000b\u2581"):
            continue  # whitespace-only input: see test_tokenizer_whitespace_only
        expected = collapse_unknown_runs(engine_tokenize(text, piece_scores))
        actual = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert actual == expected, repr(text)


def test_tokenizer_trailing_and_empty_text(tokenizer):
    # The engine keeps a trailing space as a lone "▁" and emits "▁" for an empty text. The fast
    # tokenizer, like SentencePiece, drops trailing whitespace and emits nothing for no text.
    space = PIECES.index(METASPACE)
    assert engine_tokenize("ab ", scores(), strip_right=False)[-1] == space
    assert tokenizer("ab \t", add_special_tokens=False)["input_ids"] == engine_tokenize("ab", scores())
    assert tokenizer("", add_special_tokens=False)["input_ids"] == []
    assert engine_tokenize("", scores(), strip_right=False) == [space]


def test_tokenizer_templates_and_specials(tokenizer):
    first, second = engine_tokenize("ab", scores()), engine_tokenize("c", scores())
    assert tokenizer("ab", "c")["input_ids"] == [0, *first, 2, 2, *second, 2]
    assert "token_type_ids" not in tokenizer("ab")
    assert tokenizer.mask_token_id == len(PIECES) - 1
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.unk_token_id == 3
    masked = tokenizer("ab <mask> c", add_special_tokens=False)["input_ids"]
    assert masked == [*first, tokenizer.mask_token_id, *second]


def test_tokenizer_split_into_words(tokenizer):
    # Each word gets its own "▁", so "ab c" as two words segments like the two texts apart.
    ids = tokenizer(["ab", "cab"], is_split_into_words=True, add_special_tokens=False)["input_ids"]
    assert ids == engine_tokenize("ab", scores()) + engine_tokenize("cab", scores())
    assert tokenizer.decode(tokenizer("ab ca")["input_ids"], skip_special_tokens=True) == "ab ca"


def test_tokenizer_save_and_load(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded).__name__ == "XLMRobertaTokenizerFast"
    for text in ("ab\u00a0c", "\ufb01 \uff21", "abc  ab"):
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_tokenizer_requires_special_tokens():
    with pytest.raises(ValueError, match="<mask>"):
        build_xlmr_tokenizer(PIECES[:-1], scores()[:-1], build_codepoint_charsmap({}))
    with pytest.raises(ValueError, match="scores"):
        build_xlmr_tokenizer(PIECES, scores()[:-1], build_codepoint_charsmap({}))
