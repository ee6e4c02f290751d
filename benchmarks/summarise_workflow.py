"""Summarise the per-job benchmark files of one workflow run as a Markdown table.

Snakemake writes one TSV per training, model-building and evaluation job under
benchmarks/<experiment>/ (the `benchmark:` directive of the rules). This script groups them by
the kind of job, the first two folders below the experiment (such as train/language). Per group it
prints the number of jobs, their total and median CPU and wall times, and the largest peak
memory (max RSS):

    python benchmarks/summarise_workflow.py benchmarks/default

CPU time is the better guide for sizing a run, because wall times grow when jobs share the cores.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def read_benchmark(path: Path) -> dict[str, float]:
    """Return the last row of a Snakemake benchmark TSV (seconds, cpu_time, max_rss in MB)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: empty benchmark file; rerun its job or delete the file")
    row = rows[-1]
    try:
        return {"seconds": float(row["s"]), "cpu_time": float(row["cpu_time"]), "max_rss": float(row["max_rss"])}
    except (KeyError, ValueError) as error:
        raise ValueError(f"{path}: not a Snakemake benchmark file ({error}); columns s, cpu_time and max_rss are needed") from error


def job_kind(path: Path, root: Path) -> str:
    """Return the first two folders of `path` below `root`, such as "train/language"."""
    parts = path.relative_to(root).parts[:-1]
    return "/".join(parts[:2]) if parts else path.stem


def summarise(root: Path) -> list[dict[str, object]]:
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for path in sorted(root.rglob("*.tsv")):
        groups[job_kind(path, root)].append(read_benchmark(path))
    if not groups:
        raise ValueError(f"{root}: no benchmark files; run the workflow first")
    summary = []
    for kind, rows in sorted(groups.items()):
        cpu = [row["cpu_time"] for row in rows]
        wall = [row["seconds"] for row in rows]
        summary.append(
            {
                "kind": kind,
                "jobs": len(rows),
                "cpu_total": sum(cpu),
                "cpu_median": statistics.median(cpu),
                "wall_total": sum(wall),
                "wall_median": statistics.median(wall),
                "max_rss": max(row["max_rss"] for row in rows),
            }
        )
    return summary


def markdown(summary: list[dict[str, object]]) -> str:
    lines = [
        "| jobs | count | CPU s, total | CPU s, median | wall s, total | wall s, median | max RSS, MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary:
        lines.append(
            f"| {row['kind']} | {row['jobs']} | {row['cpu_total']:,.0f} | {row['cpu_median']:,.0f} | "
            f"{row['wall_total']:,.0f} | {row['wall_median']:,.0f} | {row['max_rss']:,.0f} |"
        )
    jobs = sum(row["jobs"] for row in summary)
    cpu = sum(row["cpu_total"] for row in summary)
    wall = sum(row["wall_total"] for row in summary)
    lines.append(f"| all | {jobs} | {cpu:,.0f} | | {wall:,.0f} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="benchmarks/<experiment> folder of a workflow run")
    args = parser.parse_args(argv)
    try:
        print(markdown(summarise(args.folder)))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
