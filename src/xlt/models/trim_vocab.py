"""Trim a model's vocabulary to the pieces that a given set of texts uses.

Usage::

    python -m xlt.models.trim_vocab --model resources/models/multilingual-e5-small \\
        --text resources/corpora/*.txt --words task-words/*.tsv \\
        --out resources/models/multilingual-e5-small-trimmed

The kept vocabulary is the special and added tokens plus every piece that the tokenizer produces on
the inputs. ``--text`` files contain one sentence per line and are tokenised as running text.
``--words`` files contain one sentence per line with its words separated by TAB. They are
tokenised with ``is_split_into_words=True``, as token-classification tasks do, which gives
different pieces because each word gets its own ``▁``.

New ids follow the old order, so the special tokens of XLM-R (``<s>``, ``<pad>``, ``</s>``,
``<unk>``) keep ids 0-3. Embedding rows, and the rows and bias of an output layer when the model
has one, are selected with the same table.

The kept pieces keep their Unigram scores, so the trimmed tokenizer finds the same segmentation on
the inputs: the best segmentation under the full vocabulary uses only kept pieces, and every
segmentation into kept pieces was available under the full vocabulary too. (WordPiece's greedy
longest match likewise finds the same pieces.) The argument leaves out the unknown-character
fallback, whose candidates depend on the vocabulary, so the command re-tokenises every input to
check the result. The check and the old-to-new id table go to ``vocab_map.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerFast

from xlt.models.outputs import atomic_output_dir, provenance
from xlt.models.text_files import read_text_lines, read_word_lines
from xlt.provenance import write_json_atomic

logger = logging.getLogger(__name__)

VOCAB_MAP_FILE = "vocab_map.json"
SUPPORTED_MODELS = ("Unigram", "WordPiece")
_FILE_AND_ID_OPTIONS = ("added_tokens_decoder", "name_or_path", "tokenizer_file", "vocab_file",
                        "merges_file", "tokenizer_object")
_CONFIG_TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id",
                     "cls_token_id", "mask_token_id", "unk_token_id", "decoder_start_token_id")


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def iter_token_ids(
    tokenizer: PreTrainedTokenizerFast,
    text_files: Sequence[Path],
    words_files: Sequence[Path],
    batch_size: int = 1000,
) -> Iterator[tuple[Path, list[list[int]]]]:
    """Yield ``(file, ids of a batch of lines)`` for every input file, without special tokens."""
    inputs = [(path, False) for path in text_files] + [(path, True) for path in words_files]
    for path, split_into_words in inputs:
        lines = read_word_lines(path) if split_into_words else read_text_lines(path)
        for batch in _batches(lines, batch_size):
            # verbose=False: sentences longer than the model's limit are fine here.
            encoded = tokenizer(batch, add_special_tokens=False, verbose=False,
                                is_split_into_words=split_into_words)
            yield path, encoded["input_ids"]


def collect_used_ids(
    tokenizer: PreTrainedTokenizerFast,
    text_files: Sequence[Path],
    words_files: Sequence[Path],
    batch_size: int = 1000,
) -> tuple[np.ndarray, dict[str, dict[str, int]]]:
    """Return the sorted ids found when tokenising the inputs, and line and token counts per file."""
    used = np.zeros(len(tokenizer), dtype=bool)
    counts: dict[str, dict[str, int]] = {}
    batches = iter_token_ids(tokenizer, text_files, words_files, batch_size)
    for path, batch in tqdm(batches, desc="tokenising", unit="batch", disable=None):
        stats = counts.setdefault(str(path), {"lines": 0, "tokens": 0})
        stats["lines"] += len(batch)
        for ids in batch:
            stats["tokens"] += len(ids)
            used[ids] = True
    return np.flatnonzero(used), counts


def kept_ids(tokenizer: PreTrainedTokenizerFast, used: np.ndarray) -> np.ndarray:
    """Return the sorted union of `used` and the ids of all special and added tokens."""
    always = set(tokenizer.all_special_ids) | set(tokenizer.get_added_vocab().values())
    return np.array(sorted(always | set(used.tolist())), dtype=np.int64)


def _remap_post_processor(processor: dict | None, old_to_new: dict[int, int]) -> dict | None:
    if processor is None:
        return None
    kind = processor.get("type")
    if kind == "TemplateProcessing":
        for token in processor["special_tokens"].values():
            token["ids"] = [old_to_new[i] for i in token["ids"]]
    elif kind in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            processor[key] = [processor[key][0], old_to_new[processor[key][1]]]
    elif kind == "Sequence":
        processor["processors"] = [
            _remap_post_processor(inner, old_to_new) for inner in processor["processors"]
        ]
    elif kind != "ByteLevel":
        raise ValueError(
            f"post-processor {kind!r} is not supported; supported: TemplateProcessing, "
            "RobertaProcessing, BertProcessing, ByteLevel and Sequence of these"
        )
    return processor


def trim_tokenizer(
    tokenizer: PreTrainedTokenizerFast, keep: np.ndarray
) -> PreTrainedTokenizerFast:
    """Return a tokenizer of the same class over the pieces `keep` (old ids, sorted)."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state["model"]
    if model["type"] not in SUPPORTED_MODELS:
        raise ValueError(
            f"vocabulary trimming supports {', '.join(SUPPORTED_MODELS)} tokenizers; "
            f"this one is {model['type']}"
        )
    old_to_new = {int(old): new for new, old in enumerate(keep)}

    if model["type"] == "Unigram":
        vocab = model["vocab"]
        model["vocab"] = [vocab[old] for old in keep]
        if model.get("unk_id") is not None:
            model["unk_id"] = old_to_new[model["unk_id"]]
    else:
        pieces = {index: piece for piece, index in model["vocab"].items()}
        model["vocab"] = {pieces[old]: new for new, old in enumerate(keep)}

    for token in state.get("added_tokens", []):
        token["id"] = old_to_new[token["id"]]
    state["post_processor"] = _remap_post_processor(state.get("post_processor"), old_to_new)
    backend = Tokenizer.from_str(json.dumps(state))

    # The constructor options (special tokens, casing flags such as do_lower_case, which
    # BertTokenizerFast enforces on the normaliser) carry over; those naming files or ids do not.
    options = {
        key: value for key, value in tokenizer.init_kwargs.items()
        if key not in _FILE_AND_ID_OPTIONS
    }
    options.update(padding_side=tokenizer.padding_side, truncation_side=tokenizer.truncation_side)
    return type(tokenizer)(tokenizer_object=backend, **options)


@torch.no_grad()
def trim_model(model: PreTrainedModel, keep: np.ndarray) -> PreTrainedModel:
    """Keep only the embedding rows `keep` (and the output rows and bias, if any), in place."""
    index = torch.as_tensor(keep, dtype=torch.long)
    old_to_new = {int(old): new for new, old in enumerate(keep)}
    old_input = model.get_input_embeddings()
    padding_idx = old_input.padding_idx
    new_input = torch.nn.Embedding(
        len(keep), old_input.embedding_dim,
        padding_idx=None if padding_idx is None else old_to_new[padding_idx],
        dtype=old_input.weight.dtype, device=old_input.weight.device,
    )
    new_input.weight.copy_(old_input.weight[index])

    old_output = model.get_output_embeddings()
    tied = old_output is not None and old_output.weight is old_input.weight
    model.set_input_embeddings(new_input)
    if old_output is not None:
        new_output = torch.nn.Linear(
            old_output.in_features, len(keep), bias=old_output.bias is not None,
            dtype=old_output.weight.dtype, device=old_output.weight.device,
        )
        new_output.weight = new_input.weight if tied else torch.nn.Parameter(
            old_output.weight[index].clone()
        )
        if old_output.bias is not None:
            new_output.bias.copy_(old_output.bias[index])
        model.set_output_embeddings(new_output)

    model.config.vocab_size = len(keep)
    for name in _CONFIG_TOKEN_IDS:
        value = getattr(model.config, name, None)
        if isinstance(value, int):
            if value not in old_to_new:
                raise ValueError(f"config.{name}={value} is not among the kept ids")
            setattr(model.config, name, old_to_new[value])
    return model


def verify_trimmed(
    old: PreTrainedTokenizerFast,
    new: PreTrainedTokenizerFast,
    keep: np.ndarray,
    text_files: Sequence[Path],
    words_files: Sequence[Path],
    batch_size: int = 1000,
) -> dict[str, int]:
    """Re-tokenise the inputs with both tokenizers and count lines whose pieces differ."""
    old_to_new = np.full(len(old), -1, dtype=np.int64)
    old_to_new[keep] = np.arange(len(keep))
    checked = mismatched = 0
    old_batches = iter_token_ids(old, text_files, words_files, batch_size)
    new_batches = iter_token_ids(new, text_files, words_files, batch_size)
    for (path, old_batch), (_, new_batch) in zip(old_batches, new_batches):
        for old_ids, new_ids in zip(old_batch, new_batch):
            checked += 1
            if old_to_new[old_ids].tolist() != new_ids:
                mismatched += 1
                if mismatched <= 5:
                    logger.warning("%s: trimmed tokenizer differs on %s", path,
                                   old.decode(old_ids)[:200])
    return {"lines_checked": checked, "lines_with_different_pieces": mismatched}


def load_model(model_dir: str | Path) -> PreTrainedModel:
    """Load a model folder with the class named in its config (`architectures`)."""
    config = AutoConfig.from_pretrained(model_dir)
    architectures = config.architectures or []
    if not architectures or not hasattr(transformers, architectures[0]):
        raise ValueError(
            f"{model_dir}/config.json names no loadable architecture ({architectures}); "
            "save the model with save_pretrained so that `architectures` is set"
        )
    model_class = getattr(transformers, architectures[0])
    if model_class.__name__ == "BertModel":
        return model_class.from_pretrained(model_dir, add_pooling_layer=False)
    return model_class.from_pretrained(model_dir)


def trim_vocabulary(
    model_dir: str | Path,
    text_files: Sequence[str | Path],
    words_files: Sequence[str | Path],
    out: str | Path,
    batch_size: int = 1000,
) -> dict:
    """Write a copy of `model_dir` with the vocabulary trimmed to the inputs; return the summary."""
    text_files = [Path(path) for path in text_files]
    words_files = [Path(path) for path in words_files]
    if not text_files and not words_files:
        raise ValueError("give at least one --text or --words file")
    for path in text_files + words_files:
        if not path.is_file():
            raise FileNotFoundError(f"input file {path} does not exist")

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not tokenizer.is_fast:
        raise ValueError(
            f"{model_dir}: vocabulary trimming needs a fast tokenizer (tokenizer.json)"
        )
    used, counts = collect_used_ids(tokenizer, text_files, words_files, batch_size)
    keep = kept_ids(tokenizer, used)
    logger.info("keeping %d of %d pieces", len(keep), len(tokenizer))

    trimmed_tokenizer = trim_tokenizer(tokenizer, keep)
    check = verify_trimmed(tokenizer, trimmed_tokenizer, keep, text_files, words_files, batch_size)
    if check["lines_with_different_pieces"]:
        logger.warning("the trimmed tokenizer segments %d of %d lines differently",
                       check["lines_with_different_pieces"], check["lines_checked"])
    model = trim_model(load_model(model_dir), keep)

    summary = {
        "source_model": str(model_dir),
        "old_vocab_size": len(tokenizer),
        "new_vocab_size": len(keep),
        "inputs": counts,
        "text_files": [str(path) for path in text_files],
        "words_files": [str(path) for path in words_files],
        "verification": check,
        "provenance": provenance(),
    }
    with atomic_output_dir(out) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        trimmed_tokenizer.save_pretrained(staging)
        write_json_atomic(
            staging / VOCAB_MAP_FILE,
            {**summary, "old_to_new": {str(old): new for new, old in enumerate(keep.tolist())}},
        )
    logger.info("wrote %s (%d pieces)", out, len(keep))
    return summary


def load_vocab_map(model_dir: str | Path) -> dict[int, int]:
    """Return the old-to-new id table stored in a trimmed model folder."""
    with open(Path(model_dir) / VOCAB_MAP_FILE, encoding="utf-8") as stream:
        table = json.load(stream)["old_to_new"]
    return {int(old): new for old, new in table.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.models.trim_vocab",
        description="Trim a model's vocabulary to the pieces used on the given texts.",
    )
    parser.add_argument("--model", required=True, help="model folder with a fast tokenizer")
    parser.add_argument("--text", nargs="*", default=[],
                        help="running-text files, one sentence per line")
    parser.add_argument("--words", nargs="*", default=[],
                        help="files with one sentence per line, words separated by TAB")
    parser.add_argument("--out", required=True, help="output model folder (replaced when done)")
    parser.add_argument("--batch-size", "--batch_size", type=int, default=1000,
                        help="lines tokenised per call (default: 1000)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        summary = trim_vocabulary(args.model, args.text, args.words, args.out, args.batch_size)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 1
    logger.info("vocabulary: %d -> %d pieces", summary["old_vocab_size"], summary["new_vocab_size"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
