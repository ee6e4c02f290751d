"""Fixtures of the workflow tests: one tiny workflow run per session, its report, and a small
results folder written without running the workflow.

The tiny run takes several minutes on two CPU cores, so the workflow, report and notebook tests
share it through the session-scoped `tiny_run` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_results import write_synthetic_results
from workflow_helpers import REPO_ROOT, load_config

SNAKEFILE = REPO_ROOT / "workflow" / "Snakefile"
TINY_CONFIG = REPO_ROOT / "configs" / "tiny.yaml"
TINY_EXPERIMENT = "tiny"


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def failed_job_logs(workdir: Path) -> str:
    """Return the end of every job log that mentions an error, to explain a failed run."""
    reports = []
    for log in sorted((workdir / "logs").rglob("*.log")):
        text = log.read_text(errors="replace")
        if "Error" in text or "Traceback" in text:
            reports.append(f"--- {log.relative_to(workdir)}\n{tail(log, 15)}")
    return "\n".join(reports[:5])


def snakemake_command(workdir: Path, data_mirror: Path) -> list[str]:
    """The tiny experiment's Snakemake command line, run in `workdir`, without a target."""
    config = load_config(TINY_EXPERIMENT)
    # --config replaces the whole `data` mapping, so the registry and catalogue are repeated.
    data = {
        "mirror": str(data_mirror),
        "registry": config["data"]["registry"],
        "catalogue": config["data"]["catalogue"],
    }
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(SNAKEFILE),
        "--directory", str(workdir),
        "--configfile", str(TINY_CONFIG),
        "--config", f"data={json.dumps(data)}",
        "--cores", "2",
    ]


def run_snakemake(command: list[str], workdir: Path, log: Path) -> None:
    """Run a Snakemake command in `workdir` with W&B disabled, failing the test on an error."""
    environment = {**os.environ, "WANDB_MODE": "disabled"}
    with log.open("w") as handle:
        completed = subprocess.run(
            command, cwd=workdir, stdout=handle, stderr=subprocess.STDOUT, env=environment, check=False
        )
    assert completed.returncode == 0, f"snakemake failed:\n{tail(log)}\n{failed_job_logs(workdir)}"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, data_mirror):
    """Run the tiny workflow once in a fresh working directory and return that directory."""
    workdir = tmp_path_factory.mktemp("tiny-workflow")
    run_snakemake(snakemake_command(workdir, data_mirror), workdir, workdir / "snakemake.log")
    return workdir


@pytest.fixture(scope="session")
def tiny_report(tiny_run, data_mirror) -> Path:
    """Build the HTML report of the tiny run, as a user would after the workflow, and return it."""
    report = tiny_run / "results" / TINY_EXPERIMENT / "report.html"
    command = snakemake_command(tiny_run, data_mirror) + ["--report", str(report)]
    run_snakemake(command, tiny_run, tiny_run / "snakemake-report.log")
    return report


@pytest.fixture
def synthetic_results(tmp_path) -> Path:
    """Write the synthetic experiment into a temporary results folder and return its folder."""
    return write_synthetic_results(tmp_path / "results")
