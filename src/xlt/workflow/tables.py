"""Result tables: one row per method, one column per target language plus the average.

`python -m xlt.workflow.tables --plan plan.json --task pos --metrics M1.json M2.json ...
--reference results/reference/paper.csv --markdown pos.md --csv pos.csv`

Metrics files are found at `metrics/<task>/<method>/<language>/seed<seed>.json`; the method and
seed are read from that path, the scores from the file. Scores are shown in percent; with several
seeds a cell shows the mean ± the sample standard deviation over seeds.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.atomic import atomic_open

logger = logging.getLogger(__name__)

# The metrics each task table reports, as (key in the metrics JSON, column label).
TASK_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "pos": (("accuracy", "accuracy"),),
    "dp": (("uas", "UAS"), ("las", "LAS")),
    "ner": (("f1", "F1"),),
    "nli": (("accuracy", "accuracy"),),
}
TASK_TITLES: dict[str, str] = {
    "pos": "POS tagging (UD), word accuracy",
    "dp": "Dependency parsing (UD), UAS and LAS over all words, punctuation included",
    "ner": "NER (MasakhaNER), entity-level micro F1",
    "nli": "NLI (AmericasNLI), accuracy",
}
REFERENCE_LABEL = "Paper (Ansell et al., 2022)"
REFERENCE_COLUMNS = ("task", "method", "language", "metric", "value", "table")
_METRICS_PATH = re.compile(r"metrics/(?P<task>[^/]+)/(?P<method>[^/]+)/(?P<language>[^/]+)/seed(?P<seed>\d+)\.json$")


@dataclass(frozen=True)
class Score:
    task: str
    method: str
    language: str
    seed: int
    values: Mapping[str, float]


def read_scores(paths: Sequence[str | Path]) -> list[Score]:
    """Read metrics files, taking task, method, language and seed from each path."""
    scores = []
    for path in paths:
        match = _METRICS_PATH.search(Path(path).as_posix())
        if match is None:
            raise ValueError(
                f"{path}: not a metrics path of the form metrics/<task>/<method>/<language>/seed<N>.json"
            )
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        values = record.get("metrics")
        if not isinstance(values, Mapping):
            raise ValueError(f"{path}: has no 'metrics' mapping; was it written by xlt-evaluate?")
        scores.append(
            Score(
                task=match["task"],
                method=match["method"],
                language=match["language"],
                seed=int(match["seed"]),
                values={k: v for k, v in values.items() if isinstance(v, (int, float))},
            )
        )
    return scores


def read_reference(path: str | Path | None) -> list[dict[str, str]]:
    """Read the paper's values: rows of REFERENCE_COLUMNS; lines starting with '#' are comments."""
    if path is None or not Path(path).exists():
        return []
    with open(path, encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    reader = csv.DictReader(lines)
    missing = [c for c in REFERENCE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(missing)}; expected {', '.join(REFERENCE_COLUMNS)}")
    rows = []
    for number, row in enumerate(reader, start=2):
        try:
            float(row["value"])
        except ValueError:
            raise ValueError(f"{path}, line {number}: value {row['value']!r} is not a number") from None
        if not row["table"].strip():
            raise ValueError(f"{path}, line {number}: every value needs the paper's table number")
        rows.append(row)
    return rows


def summarise(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def format_cell(values: Sequence[float] | None, scale: float = 100.0) -> str:
    if not values:
        return "–"
    mean, sd = summarise(values)
    return f"{mean * scale:.1f}" if sd is None else f"{mean * scale:.1f} ± {sd * scale:.1f}"


@dataclass
class TableRow:
    method: str
    label: str
    metric: str
    cells: dict[str, list[float]]  # language -> one value per seed
    average: list[float]  # one average per seed, over the languages the row covers
    covered: list[str]
    seeds: int
    note: str | None
    is_reference: bool = False
    reference_missing: bool = False


def build_rows(plan: Mapping[str, Any], task: str, scores: Sequence[Score], reference: Sequence[Mapping[str, str]]) -> list[TableRow]:
    """Rows of one task's table, one per (method, metric), in the plan's method order."""
    targets = plan["tasks"][task]["targets"]
    by_key: dict[tuple[str, str], dict[int, Mapping[str, float]]] = defaultdict(dict)
    for score in scores:
        if score.task == task:
            by_key[score.method, score.language][score.seed] = score.values

    rows = []
    for metric, _label in TASK_METRICS[task]:
        for method in plan["methods"]:
            if task not in method["tasks"]:
                continue
            covered = method["targets"][task]
            cells = {}
            for language in covered:
                per_seed = by_key.get((method["name"], language), {})
                missing = [s for s in method["seeds"] if s not in per_seed]
                if missing:
                    raise ValueError(
                        f"{task}: no metrics for method {method['name']}, language {language}, "
                        f"seeds {missing}; run the workflow to produce them"
                    )
                cells[language] = [per_seed[s][metric] for s in method["seeds"]]
            average = [
                statistics.fmean(cells[language][i] for language in covered) for i in range(len(method["seeds"]))
            ]
            rows.append(
                TableRow(
                    method=method["name"],
                    label=method["label"],
                    metric=metric,
                    cells=cells,
                    average=average,
                    covered=list(covered),
                    seeds=len(method["seeds"]),
                    note=method.get("note"),
                )
            )
        rows.append(reference_row(task, metric, targets, reference))
    return rows


def reference_row(task: str, metric: str, targets: Sequence[str], reference: Sequence[Mapping[str, str]]) -> TableRow:
    values = [r for r in reference if r["task"] == task and r["metric"] == metric]
    cells = {r["language"]: [float(r["value"]) / 100.0] for r in values if r["language"] in targets}
    tables = sorted({r["table"] for r in values})
    return TableRow(
        method="paper",
        label=REFERENCE_LABEL,
        metric=metric,
        cells=cells,
        average=[],
        covered=sorted(cells),
        seeds=1,
        note=f"values from the paper's Table {', '.join(tables)}" if tables else None,
        is_reference=True,
        reference_missing=not values,
    )


def without_text(plan: Mapping[str, Any], task: str) -> set[tuple[str, str]]:
    return {(method, language) for t, method, language in plan["without_language_module"] if t == task}


def render_markdown(plan: Mapping[str, Any], task: str, rows: Sequence[TableRow]) -> str:
    targets = plan["tasks"][task]["targets"]
    no_text = without_text(plan, task)
    out = io.StringIO()
    out.write(f"# {TASK_TITLES[task]}\n\n")
    out.write(
        f"Experiment `{plan['experiment']}`, zero-shot from {plan['source_language']}; scores in %"
        f"{', mean ± standard deviation over seeds where a row has several' if len(plan['seeds']) > 1 else ''}.\n"
    )
    notes: list[str] = []
    # Rows that share a note, or that average over fewer languages than the table has, are
    # listed in one note each, in table order.
    method_notes: dict[str, list[str]] = {}
    partial_rows: dict[str, list[str]] = {}
    for metric, metric_label in TASK_METRICS[task]:
        if len(TASK_METRICS[task]) > 1:
            out.write(f"\n## {metric_label}\n")
        out.write("\n| Method | " + " | ".join(targets) + " | avg |\n")
        out.write("|---|" + "---:|" * (len(targets) + 1) + "\n")
        for row in (r for r in rows if r.metric == metric):
            out.write(render_markdown_row(row, targets, no_text, notes))
            if row.note and not row.is_reference:
                method_notes.setdefault(row.note, []).append(row.label)
            if row.average and len(row.covered) < len(targets):
                partial_rows.setdefault(row.label, list(row.covered))
    for note, labels in method_notes.items():
        notes.append(f"{'; '.join(dict.fromkeys(labels))}: {note}")
    if partial_rows:
        rows_text = "; ".join(f"{label}: {', '.join(covered)}" for label, covered in partial_rows.items())
        notes.append(f"† average over the languages the row covers ({rows_text}).")
    if no_text:
        languages = sorted({language for _method, language in no_text})
        notes.append(
            f"\\* evaluated without a target-language SFT or adapter: no text for "
            f"{', '.join(languages)}."
        )
    if notes:
        out.write("\nNotes:\n\n" + "\n".join(f"- {note}" for note in dict.fromkeys(notes)) + "\n")
    return out.getvalue()


def render_markdown_row(row: TableRow, targets: Sequence[str], no_text: set[tuple[str, str]], notes: list[str]) -> str:
    if row.is_reference and row.reference_missing:
        notes.append(
            f"{REFERENCE_LABEL}: no values recorded in results/reference/paper.csv, which holds only "
            "values taken from the paper with their table number."
        )
        return f"| {row.label} | " + " | ".join(["not recorded"] * len(targets)) + " | not recorded |\n"
    cells = []
    for language in targets:
        cell = format_cell(row.cells.get(language))
        if (row.method, language) in no_text:
            cell += "\\*"
        cells.append(cell)
    average = format_cell(row.average) if row.average else "–"
    if row.average and len(row.covered) < len(targets):
        average += "†"
    if row.is_reference and row.note:
        notes.append(f"{row.label}: {row.note}")
    seeds = f" ({row.seeds} seeds)" if row.seeds > 1 else ""
    return f"| {row.label}{seeds} | " + " | ".join(cells) + f" | {average} |\n"


def render_csv(plan: Mapping[str, Any], task: str, rows: Sequence[TableRow]) -> str:
    targets = plan["tasks"][task]["targets"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["method", "label", "metric", "seeds"]
    for language in [*targets, "avg"]:
        header += [f"{language}_mean", f"{language}_sd"]
    writer.writerow(header)
    for row in rows:
        values = [row.method, row.label, row.metric, row.seeds]
        for language in targets:
            values += csv_cells(row.cells.get(language))
        values += csv_cells(row.average or None)
        writer.writerow(values)
    return out.getvalue()


def csv_cells(values: Sequence[float] | None) -> list[str]:
    if not values:
        return ["", ""]
    mean, sd = summarise(values)
    return [f"{mean * 100:.2f}", "" if sd is None else f"{sd * 100:.2f}"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write one task's result table as Markdown and CSV.")
    parser.add_argument("--plan", required=True, help="plan.json written by the workflow")
    parser.add_argument("--task", required=True, choices=sorted(TASK_METRICS))
    parser.add_argument("--metrics", nargs="*", default=[], help="metrics JSON files of this task")
    parser.add_argument("--reference", help="CSV of values taken from the paper")
    parser.add_argument("--markdown", required=True, help="Markdown table to write")
    parser.add_argument("--csv", required=True, help="CSV table to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    with open(args.plan, encoding="utf-8") as handle:
        plan = json.load(handle)
    scores = read_scores(args.metrics)
    rows = build_rows(plan, args.task, scores, read_reference(args.reference))
    for path, text in ((args.markdown, render_markdown(plan, args.task, rows)), (args.csv, render_csv(plan, args.task, rows))):
        with atomic_open(path) as handle:
            handle.write(text)
    logger.info("Wrote %s and %s (%d rows)", args.markdown, args.csv, len(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
