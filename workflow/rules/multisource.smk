# Stage 4b: multi-source task SFTs, trained on several source languages at once with
# `xlt-train --sources`. Each batch comes from one source and is trained with that source's
# language SFT of the {trained_on} variant applied, so the task SFT is relative to the bare base
# model. {held_out} is the evaluated target left out of the sources, or "none" for the module
# trained on every source.


rule train_multisource_task_sft:
    """Train the {wildcards.task} task SFT on its sources, leaving out {wildcards.held_out}."""
    input:
        unpack(multisource_task_module_inputs),
    output:
        directory(
            PLAN.multisource_task_module(
                "{task}", "{sft_task_variant}", "{trained_on}", "{held_out}", "{seed}"
            )
        ),
    params:
        args=multisource_task_module_arguments,
        environment=lambda wildcards: job_environment(multisource_task_module_run_name(wildcards)),
    log:
        PLAN.logs(
            "train/task-multisource/{task}/{sft_task_variant}/{trained_on}/held-out-{held_out}/seed{seed}.log"
        ),
    benchmark:
        PLAN.benchmarks(
            "train/task-multisource/{task}/{sft_task_variant}/{trained_on}/held-out-{held_out}/seed{seed}.tsv"
        )
    wildcard_constraints:
        held_out=_alternatives([NO_HELD_OUT] + LANGUAGE_CODES),
    threads: compute("threads")
    resources:
        **training_resources(),
    conda:
        ENV
    shell:
        "{params.environment} xlt-train {params.args} --output_dir {output} > {log} 2>&1"
