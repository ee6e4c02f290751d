"""A tiny random BERT with a WordPiece tokenizer trained on given text, for CI runs.

Usage::

    python -m xlt.models.tiny --text resources/corpora/*.txt --out resources/models/tiny-bert

The tokenizer is a cased WordPiece model of the `tokenizers` library (BERT normaliser without
lower-casing or accent stripping, BERT pre-tokenizer, ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B
[SEP]`` templates). Its vocabulary is learnt here by the WordPiece trainer's merge procedure with
deterministic tie-breaking, so that the same text always gives the same vocabulary. The model is
a randomly initialised ``BertForMaskedLM`` with hidden size 32, 2 layers, 2 heads and FFN size 64,
seeded so that the same inputs give the same weights. It exercises the same code paths as the real encoder in seconds, and its scores mean
nothing.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import logging
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

from xlt.models.outputs import atomic_output_dir, provenance
from xlt.models.text_files import read_text_lines
from xlt.provenance import write_json_atomic

logger = logging.getLogger(__name__)

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]
CONTINUATION = "##"
TINY_MODEL_FILE = "tiny_model.json"
# Dimensions of the CI model, the same as the unit-test fixtures.
TINY_DIMENSIONS = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}


def learn_wordpiece_vocabulary(
    word_counts: Mapping[str, int], vocab_size: int, limit_alphabet: int
) -> list[str]:
    """Learn WordPiece entries by frequency-ordered merges, with deterministic tie-breaking.

    This is the procedure of the `tokenizers` WordPiece trainer: words start as characters
    (``##`` before every non-initial one) and the most frequent adjacent pair is merged until the
    vocabulary is full. That trainer (0.22) breaks ties between equally frequent pairs in a
    different order on every run, so the same text gave different vocabularies. Here ties go to
    the lexicographically smaller pair. Returns the special tokens, then the entries sorted.
    """
    character_counts: Counter[str] = Counter()
    for word, count in word_counts.items():
        for character in word:
            character_counts[character] += count
    alphabet = sorted(character_counts, key=lambda c: (-character_counts[c], c))[:limit_alphabet]
    allowed = set(alphabet)

    words: list[list[str]] = []
    frequencies: list[int] = []
    for word, count in sorted(word_counts.items()):
        if all(character in allowed for character in word):
            words.append([word[0]] + [CONTINUATION + character for character in word[1:]])
            frequencies.append(count)
    vocabulary = set(alphabet) | {CONTINUATION + character for character in alphabet}

    pair_counts: dict[tuple[str, str], int] = defaultdict(int)
    occurrences: dict[tuple[str, str], set[int]] = defaultdict(set)
    for index, (symbols, frequency) in enumerate(zip(words, frequencies)):
        for pair in itertools.pairwise(symbols):
            pair_counts[pair] += frequency
            occurrences[pair].add(index)
    heap = [(-count, *pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    while heap and len(vocabulary) + len(SPECIAL_TOKENS) < vocab_size:
        negative_count, first, second = heapq.heappop(heap)
        pair = (first, second)
        if pair_counts.get(pair, 0) != -negative_count:
            # A stale entry: the pair's count fell since it was pushed.
            if pair_counts.get(pair, 0) > 0:
                heapq.heappush(heap, (-pair_counts[pair], first, second))
            continue
        merged = first + second[len(CONTINUATION):]
        changed = set()
        for index in sorted(occurrences.pop(pair)):
            symbols, frequency = words[index], frequencies[index]
            for old in itertools.pairwise(symbols):
                pair_counts[old] -= frequency
            joined, position = [], 0
            while position < len(symbols):
                if symbols[position : position + 2] == [first, second]:
                    joined.append(merged)
                    position += 2
                else:
                    joined.append(symbols[position])
                    position += 1
            words[index] = joined
            for new in itertools.pairwise(joined):
                pair_counts[new] += frequency
                occurrences[new].add(index)
                changed.add(new)
        pair_counts.pop(pair, None)
        for new in sorted(changed - {pair}):
            if pair_counts[new] > 0:
                heapq.heappush(heap, (-pair_counts[new], *new))
        vocabulary.add(merged)

    return SPECIAL_TOKENS + sorted(vocabulary)


def train_wordpiece(
    lines: Iterable[str], vocab_size: int, limit_alphabet: int = 1000
) -> BertTokenizerFast:
    """Train a cased WordPiece tokenizer on `lines`.

    The alphabet keeps the `limit_alphabet` most frequent characters; words with rarer ones become
    ``[UNK]``. The vocabulary has `vocab_size` entries unless the alphabet and its ``##`` forms
    alone are more, or the text runs out of pairs to merge.
    """
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    word_counts: Counter[str] = Counter()
    for line in lines:
        normalized = normalizer.normalize_str(line)
        word_counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalized))
    entries = learn_wordpiece_vocabulary(word_counts, vocab_size, limit_alphabet)
    vocab = {entry: index for index, entry in enumerate(entries)}

    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token=UNK,
                                         continuing_subword_prefix=CONTINUATION))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.WordPiece(prefix=CONTINUATION)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
    )
    backend.add_special_tokens(SPECIAL_TOKENS)
    # do_lower_case and strip_accents must match the normaliser, or BertTokenizerFast replaces it.
    return BertTokenizerFast(
        tokenizer_object=backend,
        do_lower_case=False,
        strip_accents=False,
        tokenize_chinese_chars=True,
        unk_token=UNK,
        pad_token=PAD,
        cls_token=CLS,
        sep_token=SEP,
        mask_token=MASK,
        model_max_length=TINY_DIMENSIONS["max_position_embeddings"],
    )


def build_tiny_model(
    text_files: Sequence[str | Path],
    out: str | Path,
    vocab_size: int = 3000,
    seed: int = 0,
    limit_alphabet: int = 1000,
) -> Path:
    """Train the tokenizer on `text_files` and save it with a seeded random BertForMaskedLM."""
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise ValueError(f"vocab_size={vocab_size}: must exceed the {len(SPECIAL_TOKENS)} "
                         "special tokens")
    if limit_alphabet < 1:
        raise ValueError(f"limit_alphabet={limit_alphabet}: must be a positive integer")
    paths = [Path(path) for path in text_files]
    if not paths:
        raise ValueError("give at least one --text file")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"text file {path} does not exist")

    lines = (line for path in paths for line in read_text_lines(path))
    tokenizer = train_wordpiece(lines, vocab_size, limit_alphabet)
    config = BertConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        architectures=["BertForMaskedLM"],
        **TINY_DIMENSIONS,
    )
    torch.manual_seed(seed)
    model = BertForMaskedLM(config)

    with atomic_output_dir(out) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        write_json_atomic(
            staging / TINY_MODEL_FILE,
            {"text_files": [str(path) for path in paths], "requested_vocab_size": vocab_size,
             "limit_alphabet": limit_alphabet, "vocab_size": len(tokenizer), "seed": seed,
             "provenance": provenance()},
        )
    logger.info("wrote %s (%d WordPiece entries)", out, len(tokenizer))
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.models.tiny",
        description="Train a small WordPiece tokenizer and save it with a random tiny BERT.",
    )
    parser.add_argument("--text", nargs="+", required=True,
                        help="plain-text files, one sentence per line")
    parser.add_argument("--out", required=True, help="output model folder (replaced when done)")
    parser.add_argument("--vocab-size", "--vocab_size", type=int, default=3000,
                        help="maximum WordPiece vocabulary size (default: 3000)")
    parser.add_argument("--limit-alphabet", "--limit_alphabet", type=int, default=1000,
                        help="most frequent characters kept; rarer ones become [UNK] "
                        "(default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weight initialisation")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        build_tiny_model(args.text, args.out, args.vocab_size, args.seed, args.limit_alphabet)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
