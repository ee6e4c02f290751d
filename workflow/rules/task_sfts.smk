# Stage 4: task SFTs, trained on labelled source-language data with the source-language SFT of
# the same variant applied (so that SFT is part of the starting weights), or on the bare base
# model when {trained_on} is "none".


rule train_task_sft:
    """Train the {wildcards.task} task SFT on the source language."""
    input:
        unpack(lambda wildcards: task_module_inputs(wildcards, wildcards.sft_task_variant)),
    output:
        directory(PLAN.results("sfts/task/{task}/{sft_task_variant}/{trained_on}/seed{seed}")),
    params:
        args=lambda wildcards, input: task_module_arguments(wildcards, input, wildcards.sft_task_variant),
        environment=lambda wildcards: job_environment(
            task_module_run_name(wildcards, wildcards.sft_task_variant)
        ),
    log:
        PLAN.logs("train/task/{task}/{sft_task_variant}/{trained_on}/seed{seed}.log"),
    benchmark:
        PLAN.benchmarks("train/task/{task}/{sft_task_variant}/{trained_on}/seed{seed}.tsv")
    threads: compute("threads")
    resources:
        **training_resources(),
    conda:
        ENV
    shell:
        "{params.environment} xlt-train {params.args} --output_dir {output} > {log} 2>&1"
