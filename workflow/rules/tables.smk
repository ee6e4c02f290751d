# Stage 7: the experiment plan, result tables mirroring the paper's, and figures.
#
# The outputs wrapped in report() make up the HTML report, built after a run with
#   snakemake --report results/<experiment>/report.html
# Caption paths are relative to this file.

report: "../report/workflow.rst"


rule experiment_plan:
    """Record which methods, targets and seeds the tables cover (read by tables and notebooks)."""
    output:
        report(
            PLAN.results("plan.json"),
            caption="../report/plan.rst",
            category="Data files",
            labels={"file": "plan.json"},
        ),
    params:
        plan=PLAN.to_dict(),
    log:
        PLAN.logs("plan.log"),
    run:
        write_plan(output[0], params.plan)


rule task_table:
    """Write the {wildcards.task} table: a row per method, a column per target language."""
    input:
        plan=PLAN.results("plan.json"),
        metrics=task_metrics,
        # From the repository, so that the workflow also runs in another working directory.
        reference=str(REPOSITORY / "results/reference/paper.csv"),
    output:
        markdown=PLAN.results("tables/{task}.md"),
        csv=report(
            PLAN.results("tables/{task}.csv"),
            caption="../report/task_table_csv.rst",
            category="Data files",
            labels={"file": "{task}.csv"},
        ),
        # The report shows HTML inline but offers Markdown only as a download.
        html=report(
            PLAN.results("tables/{task}.html"),
            caption="../report/task_table.rst",
            category="Result tables",
            labels={"task": "{task}"},
        ),
    log:
        PLAN.logs("tables/{task}.log"),
    conda:
        ENV
    shell:
        "python -m xlt.workflow.tables --plan {input.plan} --task {wildcards.task} "
        "--metrics {input.metrics} --reference {input.reference} "
        "--markdown {output.markdown} --csv {output.csv} > {log} 2>&1 && "
        "python -m xlt.workflow.markdown_page {output.markdown} {output.html} >> {log} 2>&1"


rule per_language_figure:
    """Draw grouped bars of every method per target language, one panel per task and metric."""
    input:
        plan=PLAN.results("plan.json"),
        metrics=all_metrics(),
    output:
        report(
            PLAN.results("figures/per_language.png"),
            caption="../report/per_language.rst",
            category="Figures",
            labels={"figure": "scores per target language"},
        ),
    log:
        PLAN.logs("figures/per_language.log"),
    conda:
        ENV
    shell:
        "python -m xlt.workflow.figures per-language --plan {input.plan} "
        "--metrics {input.metrics} --output {output} > {log} 2>&1"


rule sparsity_sweep_figure:
    """Plot the sweep task's score against the task SFT's K, one line per target language."""
    input:
        plan=PLAN.results("plan.json"),
        metrics=sweep_metrics(),
    output:
        report(
            PLAN.results("figures/sparsity_sweep.png"),
            caption="../report/sparsity_sweep.rst",
            category="Figures",
            labels={"figure": "sparsity sweep"},
        ),
    log:
        PLAN.logs("figures/sparsity_sweep.log"),
    conda:
        ENV
    shell:
        "python -m xlt.workflow.figures sweep --plan {input.plan} "
        "--metrics {input.metrics} --output {output} > {log} 2>&1"


rule mask_overlap:
    """Compare the masks of the LT-SFT language SFTs and task SFTs: Jaccard index per layer and type."""
    input:
        language_sfts=lambda wildcards: PLAN.mask_overlap_modules()[0],
        task_sfts=lambda wildcards: PLAN.mask_overlap_modules()[1],
    output:
        csv=report(
            PLAN.results("tables/mask_overlap.csv"),
            caption="../report/mask_overlap_csv.rst",
            category="Data files",
            labels={"file": "mask_overlap.csv"},
        ),
        figure=report(
            PLAN.results("figures/mask_overlap.png"),
            caption="../report/mask_overlap.rst",
            category="Figures",
            labels={"figure": "mask overlap"},
        ),
    log:
        PLAN.logs("tables/mask_overlap.log"),
    conda:
        ENV
    shell:
        "python -m xlt.analysis.overlap --language_sfts {input.language_sfts} "
        "--task_sfts {input.task_sfts} --csv {output.csv} --figure {output.figure} > {log} 2>&1"
