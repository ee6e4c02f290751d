# Stage 5: zero-shot evaluation of every (task, method, target language, seed): the task module
# composed with the target-language module (when the method composes and the language has text),
# on the target test set.


rule evaluate:
    """Evaluate method {wildcards.method} on the {wildcards.lang} {wildcards.task} test set."""
    input:
        unpack(evaluation_inputs),
    output:
        PLAN.results("metrics/{task}/{method}/{lang}/seed{seed}.json"),
    params:
        command=evaluation_command,
        args=evaluation_arguments,
        environment=lambda wildcards: job_environment(
            f"evaluate-{wildcards.task}-{wildcards.method}-{wildcards.lang}-seed{wildcards.seed}"
        ),
    log:
        PLAN.logs("evaluate/{task}/{method}/{lang}/seed{seed}.log"),
    benchmark:
        PLAN.benchmarks("evaluate/{task}/{method}/{lang}/seed{seed}.tsv")
    threads: compute("threads")
    resources:
        **training_resources(),
    conda:
        ENV
    shell:
        "{params.environment} {params.command} {params.args} --output_file {output} > {log} 2>&1"
