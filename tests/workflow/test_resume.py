"""An interrupted workflow run resumes: the second run redoes no job that the first one finished.

The test runs the tiny experiment towards one metric file, interrupts Snakemake as Ctrl-C would
once the first language SFT has finished, then runs the same command again. The second run must
produce the metric file without running any job that the first run's log reports finished.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run_snakemake, snakemake_command, tail

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.data]

TARGET = "results/tiny/metrics/pos/lt_sft/mt/seed1.json"
START_TIMEOUT_S = 600
JOB_BLOCK = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", re.MULTILINE)
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", re.MULTILINE)


def started_jobs(log_text: str) -> dict[str, tuple[str, str]]:
    """Map each job id in a Snakemake log to its rule and its output."""
    jobs = {}
    for match in JOB_BLOCK.finditer(log_text):
        fields = dict(re.findall(r"^    (\w+): (.*)$", match.group(2), re.MULTILINE))
        if "jobid" in fields:
            jobs[fields["jobid"]] = (match.group(1), fields.get("output", ""))
    return jobs


def finished_outputs(log_text: str) -> dict[str, str]:
    """Map the output of every job that a Snakemake log reports finished to its rule."""
    jobs = started_jobs(log_text)
    return {jobs[jobid][1]: rule for jobid, rule in FINISHED.findall(log_text) if jobid in jobs}


def interrupt_after_first_training(command: list[str], workdir: Path, log: Path) -> int:
    """Run `command` until one training job has finished, then send SIGINT; return its exit code."""
    environment = {**os.environ, "WANDB_MODE": "disabled"}
    with log.open("w") as handle:
        process = subprocess.Popen(
            command, cwd=workdir, stdout=handle, stderr=subprocess.STDOUT, env=environment
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while "train_language_sft" not in finished_outputs(log.read_text(encoding="utf-8")).values():
            if process.poll() is not None:
                pytest.fail(f"snakemake ended before any training job finished:\n{tail(log)}")
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"no training job finished within {START_TIMEOUT_S} s:\n{tail(log)}")
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        return process.wait(timeout=300)


def test_interrupted_run_resumes(tmp_path, data_mirror):
    command = snakemake_command(tmp_path, data_mirror) + [TARGET]

    first_code = interrupt_after_first_training(command, tmp_path, tmp_path / "first.log")
    assert first_code != 0, f"the interrupted run exited with 0:\n{tail(tmp_path / 'first.log')}"
    assert not (tmp_path / TARGET).exists(), "the interrupt came after the whole target was built"
    finished_before = finished_outputs((tmp_path / "first.log").read_text(encoding="utf-8"))
    assert "train_language_sft" in finished_before.values()

    # The same command again: the workflow profile's rerun-incomplete redoes the interrupted jobs.
    run_snakemake(command, tmp_path, tmp_path / "second.log")

    assert (tmp_path / TARGET).is_file()
    rerun = set(started_jobs((tmp_path / "second.log").read_text(encoding="utf-8")).values())
    redone = sorted(output for rule, output in rerun if output in finished_before)
    assert redone == [], f"the second run redid finished jobs: {redone}"
    assert any(rule == "evaluate" for rule, _output in rerun)
