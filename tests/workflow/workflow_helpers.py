"""Helpers of the workflow tests: experiment configs validated against the workflow's schema."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


def load_config(name: str) -> dict:
    """Load configs/<name>.yaml and fill in the schema's defaults, as the Snakefile does."""
    from snakemake.utils import validate

    with open(REPO_ROOT / "configs" / f"{name}.yaml", encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    validate(config, str(SCHEMA), set_default=True)
    return config


def make_plan(config: dict):
    from xlt.data.catalogue import load_catalogue
    from xlt.workflow.plan import ExperimentPlan

    catalogue = load_catalogue(REPO_ROOT / config["data"]["catalogue"])
    return ExperimentPlan(config, catalogue, REPO_ROOT)
