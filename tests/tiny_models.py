"""Tiny random models and tokenizers for tests, importable as `tiny_models` from any test folder.

Test modules import these helpers from here instead of from a conftest module, because pytest
loads several conftest files under the same module name.
"""

from __future__ import annotations

from pathlib import Path

from transformers import BertConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


TINY_WORDS = (
    "the a an of and to in is was it for on that with as by at from this be are or "
    "dog cat house tree run runs ran walk walked big small red green blue old new "
    "John Mary London Paris Google Berlin said says go went come came see saw . , ? !"
).split()


def tiny_bert_config(**overrides) -> BertConfig:
    """Return a BERT config with hidden size 32 and 2 layers, small enough for unit tests."""
    values = dict(
        vocab_size=128,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    values.update(overrides)
    return BertConfig(**values)


def build_tiny_tokenizer(folder: Path, words=TINY_WORDS):
    """Write a WordPiece tokenizer over `words` (plus characters) to `folder` and return it."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({c for w in words for c in w})
    vocab = {}
    for token in specials + list(dict.fromkeys(words)) + chars + ["##" + c for c in chars]:
        vocab.setdefault(token, len(vocab))
    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    return tokenizer
