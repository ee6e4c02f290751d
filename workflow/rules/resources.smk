# Stage 1: data files from the registry and one masked-LM corpus per language.


rule fetch_data_file:
    """Copy a registered file from the data mirror, or download it, and verify its git blob id."""
    output:
        "resources/github/{path}",
    params:
        registry=REGISTRY_FILE,
        source=data_source_arguments(),
    log:
        "logs/resources/fetch/{path}.log",
    wildcard_constraints:
        path=r"[^/]+/[^/]+/.+",
    conda:
        ENV
    shell:
        "python -m xlt.data.fetch --registry {params.registry} --root resources {params.source} "
        "github/{wildcards.path} > {log} 2>&1"


rule build_corpus:
    """Build a language's masked-LM corpus (cleaned, de-duplicated, test sentences removed)."""
    input:
        corpus_inputs,
    output:
        corpus="resources/corpora/{lang}.txt",
        report="resources/corpora/{lang}.json",
    params:
        catalogue=CATALOGUE_FILE,
        registry=REGISTRY_FILE,
    log:
        "logs/resources/corpus/{lang}.log",
    conda:
        ENV
    shell:
        "python -m xlt.data.corpus --language {wildcards.lang} --root resources "
        "--catalogue {params.catalogue} --registry {params.registry} "
        "--output {output.corpus} --report {output.report} > {log} 2>&1"


rule split_corpus:
    """Hold out part of a corpus for masked-LM validation, and cap the experiment's training lines."""
    input:
        "resources/corpora/{lang}.txt",
    output:
        train=PLAN.corpus_split_path("{lang}", "train"),
        dev=PLAN.corpus_split_path("{lang}", "dev"),
    params:
        every=config["corpus_split"]["every"],
        max_dev=config["corpus_split"]["max_dev_sentences"],
        max_train=lambda wildcards: cli_arguments({"max-train": config["corpus_split"].get("max_train_sentences")}),
    log:
        PLAN.logs("corpus/{lang}.split.log"),
    conda:
        ENV
    shell:
        "python -m xlt.workflow.split_corpus {input} --train {output.train} --dev {output.dev} "
        "--every {params.every} --max-dev {params.max_dev} {params.max_train} > {log} 2>&1"
