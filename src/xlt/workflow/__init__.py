"""Experiment planning, tables and figures behind the Snakemake workflow."""
