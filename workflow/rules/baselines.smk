# Stage 6: baselines that are not SFTs (MAD-X adapters). The SFT-based baselines (full
# fine-tuning, random masks, dense composition, no L1, the sparsity sweep) are variants of the
# SFT rules, chosen in the config.
#
# MAD-X adapters train with `xlt-train --method madx` on the same data, base model and training
# arguments as the SFT modules: language adapters by masked-LM on each language's corpus, task
# adapters on the source language stacked on the source-language adapter of the same variant.


rule train_language_adapter:
    """Train a MAD-X language adapter on the corpus of {wildcards.lang}."""
    input:
        unpack(language_module_inputs),
    output:
        directory(PLAN.results("adapters/language/{base}/{adapter_language_variant}/{lang}/seed{seed}")),
    params:
        args=lambda wildcards, input: language_module_arguments(
            wildcards, input, wildcards.adapter_language_variant
        ),
        environment=lambda wildcards: job_environment(
            language_module_run_name(wildcards, wildcards.adapter_language_variant)
        ),
    log:
        PLAN.logs("train/language/{base}/{adapter_language_variant}/{lang}/seed{seed}.log"),
    benchmark:
        PLAN.benchmarks("train/language/{base}/{adapter_language_variant}/{lang}/seed{seed}.tsv")
    threads: compute("threads")
    resources:
        **training_resources(),
    conda:
        ENV
    shell:
        "{params.environment} xlt-train {params.args} --output_dir {output} > {log} 2>&1"


rule train_task_adapter:
    """Train the {wildcards.task} MAD-X task adapter on the source language."""
    input:
        unpack(lambda wildcards: task_module_inputs(wildcards, wildcards.adapter_task_variant)),
    output:
        directory(PLAN.results("adapters/task/{task}/{adapter_task_variant}/{trained_on}/seed{seed}")),
    params:
        args=lambda wildcards, input: task_module_arguments(wildcards, input, wildcards.adapter_task_variant),
        environment=lambda wildcards: job_environment(
            task_module_run_name(wildcards, wildcards.adapter_task_variant)
        ),
    log:
        PLAN.logs("train/task/{task}/{adapter_task_variant}/{trained_on}/seed{seed}.log"),
    benchmark:
        PLAN.benchmarks("train/task/{task}/{adapter_task_variant}/{trained_on}/seed{seed}.tsv")
    threads: compute("threads")
    resources:
        **training_resources(),
    conda:
        ENV
    shell:
        "{params.environment} xlt-train {params.args} --output_dir {output} > {log} 2>&1"
