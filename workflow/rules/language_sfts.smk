# Stage 3: language SFTs, trained by masked-LM on each language's corpus. One SFT per base model,
# variant (LT-SFT, random mask, dense, ...), corpus language and seed.


rule train_language_sft:
    """Train a language SFT on the corpus of {wildcards.lang}."""
    input:
        unpack(language_module_inputs),
    output:
        directory(PLAN.results("sfts/language/{base}/{sft_language_variant}/{lang}/seed{seed}")),
    params:
        args=lambda wildcards, input: language_module_arguments(
            wildcards, input, wildcards.sft_language_variant
        ),
        environment=lambda wildcards: job_environment(
            language_module_run_name(wildcards, wildcards.sft_language_variant)
        ),
    log:
        PLAN.logs("train/language/{base}/{sft_language_variant}/{lang}/seed{seed}.log"),
    benchmark:
        PLAN.benchmarks("train/language/{base}/{sft_language_variant}/{lang}/seed{seed}.tsv")
    threads: compute("threads")
    resources:
        **training_resources(),
    conda:
        ENV
    shell:
        "{params.environment} xlt-train {params.args} --output_dir {output} > {log} 2>&1"
