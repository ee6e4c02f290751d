"""Figures of an experiment: per-language scores of every method, and the sparsity sweep.

`python -m xlt.workflow.figures per-language --plan plan.json --metrics ... --output fig.png`
`python -m xlt.workflow.figures sweep --plan plan.json --metrics ... --output fig.png`
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import json
import math
import statistics

from ..data.atomic import atomic_open
from .tables import TASK_METRICS, TASK_TITLES, Score, read_scores

logger = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_by(scores: Sequence[Score], task: str, metric: str) -> dict[tuple[str, str], tuple[float, float]]:
    """(method, language) -> (mean, sd) in percent over seeds."""
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    for score in scores:
        if score.task == task and metric in score.values:
            grouped[score.method, score.language].append(score.values[metric] * 100)
    return {
        key: (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        for key, values in grouped.items()
    }


def per_language_figure(plan: Mapping[str, Any], scores: Sequence[Score]):
    """One panel per task (and per metric for DP): grouped bars of every method per target language.

    Each method keeps one colour in every panel, and the legend lists every method of the plan,
    including those that appear in only some panels.
    """
    plt = _pyplot()
    from matplotlib.patches import Patch

    panels = [(task, metric, label) for task in plan["tasks"] for metric, label in TASK_METRICS[task]]
    plotted_methods = [m for m in plan["methods"] if m.get("sweep_proportion") is None]
    palette = plt.get_cmap("tab10" if len(plotted_methods) <= 10 else "tab20").colors
    colours = {method["name"]: palette[index % len(palette)] for index, method in enumerate(plotted_methods)}
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for axis, (task, metric, metric_label) in zip(axes[:, 0], panels):
        targets = plan["tasks"][task]["targets"]
        methods = [m for m in plotted_methods if task in m["tasks"]]
        values = _mean_by(scores, task, metric)
        width = 0.8 / max(len(methods), 1)
        for index, method in enumerate(methods):
            xs, ys, errors = [], [], []
            for position, language in enumerate(targets):
                if (method["name"], language) in values:
                    mean, sd = values[method["name"], language]
                    xs.append(position + (index - (len(methods) - 1) / 2) * width)
                    ys.append(mean)
                    errors.append(sd)
            axis.bar(
                xs, ys, width=width, yerr=errors, label=method["label"], color=colours[method["name"]], capsize=2
            )
        axis.set_xticks(range(len(targets)), targets)
        axis.set_ylabel(f"{metric_label} (%)")
        axis.set_title(TASK_TITLES[task] if metric == TASK_METRICS[task][0][0] else f"{task.upper()} {metric_label}")
        axis.grid(axis="y", alpha=0.3)
    handles = [Patch(color=colours[m["name"]], label=m["label"]) for m in plotted_methods]
    legend_columns = 3
    figure.legend(handles=handles, loc="upper center", ncol=legend_columns, fontsize="small")
    # Leave room at the top for the legend: about 1.2% of the figure's height per legend row.
    legend_rows = math.ceil(len(handles) / legend_columns)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.012 * legend_rows - 0.02))
    return figure


def sweep_figure(plan: Mapping[str, Any], scores: Sequence[Score]):
    """The sweep task's first metric against the task SFT's share of maskable parameters."""
    plt = _pyplot()
    sweep_methods = [m for m in plan["methods"] if m.get("sweep_proportion") is not None]
    if not sweep_methods:
        raise ValueError("the plan has no sparsity sweep; set `sweep` in the experiment config")
    task = sweep_methods[0]["tasks"][0]
    metric, metric_label = TASK_METRICS[task][0]
    values = _mean_by(scores, task, metric)
    figure, axis = plt.subplots(figsize=(6, 4))
    targets = sweep_methods[0]["targets"][task]
    for language in targets:
        points = sorted(
            (m["sweep_proportion"] * 100, *values[m["name"], language])
            for m in sweep_methods
            if (m["name"], language) in values
        )
        if points:
            xs, ys, errors = zip(*points)
            axis.errorbar(xs, ys, yerr=errors, marker="o", capsize=2, label=language)
    axis.set_xscale("log")
    axis.set_xlabel("task SFT size K (% of maskable parameters)")
    axis.set_ylabel(f"{task.upper()} {metric_label} (%)")
    axis.set_title(f"Sparsity sweep ({plan['experiment']})")
    axis.grid(alpha=0.3)
    axis.legend(title="target")
    figure.tight_layout()
    return figure


def save_figure(figure, path: str) -> None:
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw an experiment's figures from its metrics files.")
    parser.add_argument("figure", choices=("per-language", "sweep"))
    parser.add_argument("--plan", required=True, help="plan.json written by the workflow")
    parser.add_argument("--metrics", nargs="*", default=[], help="metrics JSON files")
    parser.add_argument("--output", required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    with open(args.plan, encoding="utf-8") as handle:
        plan = json.load(handle)
    scores = read_scores(args.metrics)
    figure = per_language_figure(plan, scores) if args.figure == "per-language" else sweep_figure(plan, scores)
    save_figure(figure, args.output)
    logger.info("Wrote %s", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
