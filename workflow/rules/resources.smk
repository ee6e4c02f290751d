# Stage 1: data files from the registry and one masked-LM corpus per language. Hub exports (full
# MultiNLI, Wikipedia) are made where a config asks for them (`hub:` dataset splits, corpora from
# Wikipedia). The downloads run on the submitting machine under a cluster executor, because
# compute nodes often have no network access.


localrules:
    fetch_data_file,
    export_hub_dataset,
    export_wikipedia,


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


rule export_hub_dataset:
    """Export one split of a hub NLI dataset (full MultiNLI) to a TSV that the NLI readers parse."""
    output:
        data=PLAN.resource(hub_export_path("{hub_dataset}", "{hub_split}")),
        report=PLAN.resource(str(report_path(hub_export_path("{hub_dataset}", "{hub_split}")))),
    log:
        "logs/resources/hub/{hub_dataset}/{hub_split}.log",
    conda:
        ENV
    shell:
        "python -m xlt.data.hub nli --dataset {wildcards.hub_dataset} --split {wildcards.hub_split} "
        "--output {output.data} > {log} 2>&1"


rule export_wikipedia:
    """Export prose paragraphs of the Wikipedia of {wildcards.lang}, capped with a fixed seed."""
    output:
        text=PLAN.wikipedia_export("{lang}"),
        report=str(report_path(PLAN.wikipedia_export("{lang}"))),
    params:
        args=wikipedia_export_arguments(),
    log:
        PLAN.wikipedia_export("{lang}").replace("resources/", "logs/resources/", 1) + ".log",
    conda:
        ENV
    shell:
        "python -m xlt.data.hub wikipedia --language {wildcards.lang} {params.args} "
        "--output {output.text} > {log} 2>&1"


rule build_wikipedia_corpus:
    """Build a language's masked-LM corpus from its Wikipedia export (same cleaning and leak filter)."""
    input:
        unpack(wikipedia_corpus_inputs),
    output:
        corpus=PLAN.wikipedia_corpus("{lang}"),
        report=str(Path(PLAN.wikipedia_corpus("{lang}")).with_suffix(".json")),
    params:
        catalogue=CATALOGUE_FILE,
        registry=REGISTRY_FILE,
    log:
        PLAN.wikipedia_corpus("{lang}").replace("resources/", "logs/resources/", 1) + ".log",
    resources:
        mem_mb=compute("mem_mb"),
        runtime=compute("runtime_min"),
    conda:
        ENV
    shell:
        "python -m xlt.data.corpus --language {wildcards.lang} --root resources "
        "--catalogue {params.catalogue} --registry {params.registry} "
        "--extra-source plain:{input.text} --no-catalogue-sources "
        "--output {output.corpus} --report {output.report} > {log} 2>&1"


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
        lambda wildcards: PLAN.corpus(wildcards.lang),
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
