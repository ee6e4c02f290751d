"""Read an experiment's results folder into pandas frames, and state what the numbers show.

The workflow writes `results/<experiment>/plan.json`, `tables/<task>.csv` (a row per method and
metric, `<language>_mean` and `<language>_sd` columns in percent) and `tables/mask_overlap.csv`.
The analysis notebook (`notebooks/analysis.ipynb`) reads them through this module. The `describe_*`
functions turn the numbers into sentences, so that the notebook's commentary always matches the
numbers it shows.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..workflow.tables import TASK_METRICS

PLAN_FILE = "plan.json"
TABLES_FOLDER = "tables"
MASK_OVERLAP_FILE = "mask_overlap.csv"
# The `method` value of the task tables' row of values reported by Ansell et al. (ACL 2022).
REFERENCE_METHOD = "paper"
AVERAGE_COLUMN = "avg"
# Differences of at most this many points count as ties. The tables print one decimal.
TIE_TOLERANCE = 0.05
SCORE_COLUMNS: tuple[str, ...] = ("task", "method", "label", "metric", "language", "mean", "sd", "seeds")


def experiment_folder(results_dir: str | Path, experiment: str) -> Path:
    """Return `results_dir/experiment`, raising FileNotFoundError with the fix if it has no plan."""
    folder = Path(results_dir) / experiment
    if not (folder / PLAN_FILE).is_file():
        raise FileNotFoundError(
            f"{folder / PLAN_FILE} not found: run the workflow for the experiment {experiment!r} "
            f"first (snakemake --cores all --configfile configs/{experiment}.yaml), or point "
            "RESULTS_DIR at the folder that contains its results"
        )
    return folder


def load_plan(folder: str | Path) -> dict[str, Any]:
    """Read the experiment plan (methods, tasks and targets, seeds) from `folder/plan.json`."""
    with open(Path(folder) / PLAN_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def read_task_table(folder: str | Path, task: str) -> pd.DataFrame | None:
    """Read `folder/tables/<task>.csv`, or return None if the workflow has not written it yet."""
    path = Path(folder) / TABLES_FOLDER / f"{task}.csv"
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"method": str, "label": str, "metric": str})


def long_scores(table: pd.DataFrame, plan: Mapping[str, Any], task: str) -> pd.DataFrame:
    """Turn a task table into one row per (method, metric, target language) that has a score.

    The average column is left out, because its languages differ between rows. Scores and
    standard deviations are in percent, and `sd` is NaN for a single seed. Columns: SCORE_COLUMNS.
    """
    records = []
    for row in table.to_dict("records"):
        for language in plan["tasks"][task]["targets"]:
            mean = row.get(f"{language}_mean")
            if mean is None or pd.isna(mean):
                continue
            records.append(
                {
                    "task": task,
                    "method": row["method"],
                    "label": row["label"],
                    "metric": row["metric"],
                    "language": language,
                    "mean": float(mean),
                    "sd": float(row[f"{language}_sd"]),
                    "seeds": int(row["seeds"]),
                }
            )
    return pd.DataFrame.from_records(records, columns=list(SCORE_COLUMNS))


def load_scores(folder: str | Path, plan: Mapping[str, Any]) -> pd.DataFrame:
    """Return the long scores of every task table that exists in `folder` (SCORE_COLUMNS)."""
    frames = []
    for task in plan["tasks"]:
        table = read_task_table(folder, task)
        if table is not None:
            frames.append(long_scores(table, plan, task))
    if not frames:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def wide_table(scores: pd.DataFrame, task: str, metric: str) -> pd.DataFrame:
    """Return a method × target language frame of mean scores of one task and metric.

    Rows keep the order of the table, and the `avg` column averages the languages of each row.
    """
    selected = scores[(scores["task"] == task) & (scores["metric"] == metric)]
    labels = list(dict.fromkeys(selected["label"]))
    wide = selected.pivot(index="label", columns="language", values="mean").reindex(labels)
    languages = [language for language in dict.fromkeys(selected["language"])]
    wide = wide[languages]
    wide[AVERAGE_COLUMN] = wide.mean(axis=1)
    wide.index.name = None
    wide.columns.name = None
    return wide


def method_order(plan: Mapping[str, Any], task: str, sweep: bool = False) -> list[str]:
    """Return the names of the methods of `task` in table order: the sweep's if `sweep`, else the others."""
    return [
        method["name"]
        for method in plan["methods"]
        if task in method["tasks"] and (method.get("sweep_proportion") is not None) == sweep
    ]


@dataclass(frozen=True)
class Comparison:
    """Scores of one method against another on the target languages that both have."""

    task: str
    metric_label: str
    method: str
    baseline: str
    differences: Mapping[str, float]  # language -> method minus baseline, in points

    @property
    def wins(self) -> int:
        return sum(value > TIE_TOLERANCE for value in self.differences.values())

    @property
    def losses(self) -> int:
        return sum(value < -TIE_TOLERANCE for value in self.differences.values())

    @property
    def mean_difference(self) -> float:
        return statistics.fmean(self.differences.values())

    def describe(self) -> str:
        """State the comparison in one sentence, with the per-language differences."""
        targets = len(self.differences)
        ties = targets - self.wins - self.losses
        outcome = f"higher than {self.baseline} on {self.wins} of {targets} targets"
        if ties:
            outcome += f" (tied on {ties})"
        details = ", ".join(f"{language} {value:+.1f}" for language, value in self.differences.items())
        return (
            f"{self.task.upper()} {self.metric_label}: {self.method} is {outcome}, "
            f"{self.mean_difference:+.1f} points on average ({details})."
        )


def compare(scores: pd.DataFrame, task: str, metric: str, method: str, baseline: str) -> Comparison | None:
    """Compare two methods, given by their labels, or return None if no target has both.

    `metric` is a key of TASK_METRICS, such as "uas".
    """
    selected = scores[(scores["task"] == task) & (scores["metric"] == metric)]
    ours = selected[selected["label"] == method].set_index("language")["mean"]
    theirs = selected[selected["label"] == baseline].set_index("language")["mean"]
    shared = [language for language in ours.index if language in theirs.index]
    if not shared:
        return None
    differences = {language: float(ours[language] - theirs[language]) for language in shared}
    metric_label = dict(TASK_METRICS[task]).get(metric, metric)
    return Comparison(task, metric_label, method, baseline, differences)


def label_of(plan: Mapping[str, Any], name: str) -> str:
    """Return the table label of the method called `name` in the plan."""
    for method in plan["methods"]:
        if method["name"] == name:
            return method["label"]
    names = ", ".join(method["name"] for method in plan["methods"])
    raise KeyError(f"method {name!r} is not in the plan, whose methods are {names}")


def describe_task(scores: pd.DataFrame, plan: Mapping[str, Any], task: str, main_method: str) -> list[str]:
    """Return sentences that compare `main_method` with every other method of `task`.

    The reference row (values of Ansell et al., ACL 2022) is compared too where it has values.

    The comparison uses the first metric of the task (accuracy, UAS, F1) and leaves out the
    methods of the sparsity sweep.
    """
    metric = TASK_METRICS[task][0][0]
    selected = scores[(scores["task"] == task) & (scores["metric"] == metric)]
    if selected.empty:
        return [f"{task.upper()}: no scores yet."]
    main = label_of(plan, main_method)
    sentences = []
    for name in method_order(plan, task):
        if name == main_method:
            continue
        comparison = compare(scores, task, metric, main, label_of(plan, name))
        if comparison is not None:
            sentences.append(comparison.describe())
    reference_labels = selected.loc[selected["method"] == REFERENCE_METHOD, "label"]
    if not reference_labels.empty:
        comparison = compare(scores, task, metric, main, reference_labels.iloc[0])
        if comparison is not None:
            sentences.append(comparison.describe())
    return sentences


def describe_best(selected: pd.DataFrame, task: str, metric_label: str) -> str:
    """Name the best method per target language among the rows of one task and metric."""
    methods = selected[selected["method"] != REFERENCE_METHOD]
    best = methods.loc[methods.groupby("language", sort=False)["mean"].idxmax()]
    parts = [f"{row.language}: {row.label} ({row.mean:.1f})" for row in best.itertuples()]
    return f"{task.upper()} {metric_label}, best method per target: " + "; ".join(parts) + "."


def sweep_scores(scores: pd.DataFrame, plan: Mapping[str, Any]) -> pd.DataFrame:
    """Scores of the sparsity sweep's methods with their task SFT size `k_percent` (0-100)."""
    proportions = {
        method["name"]: method["sweep_proportion"] * 100
        for method in plan["methods"]
        if method.get("sweep_proportion") is not None
    }
    sweep = scores[scores["method"].isin(list(proportions))].copy()
    sweep["k_percent"] = sweep["method"].map(proportions)
    return sweep.sort_values(["task", "metric", "language", "k_percent"], ignore_index=True)


def describe_sweep(sweep: pd.DataFrame) -> list[str]:
    """For each target language of the sweep, the best K and the change from the smallest K."""
    sentences = []
    for (task, metric, language), points in sweep.groupby(["task", "metric", "language"], sort=False):
        points = points.sort_values("k_percent")
        best = points.loc[points["mean"].idxmax()]
        first, last = points.iloc[0], points.iloc[-1]
        sentences.append(
            f"{task.upper()} {metric}, {language}: best at K = {best.k_percent:g}% ({best['mean']:.1f}); "
            f"from K = {first.k_percent:g}% to {last.k_percent:g}% the score moves by "
            f"{last['mean'] - first['mean']:+.1f} points over {len(points)} sizes."
        )
    return sentences


def read_mask_overlap(folder: str | Path) -> pd.DataFrame | None:
    """Read `folder/tables/mask_overlap.csv`, or return None if the analysis did not run."""
    path = Path(folder) / TABLES_FOLDER / MASK_OVERLAP_FILE
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"language_sft": str, "task_sft": str, "grouping": str, "group": str})


def overlap_matrix(overlap: pd.DataFrame, value: str = "jaccard") -> pd.DataFrame:
    """Pivot the whole-model overlaps: language SFTs as rows, task SFTs as columns, in CSV order."""
    overall = overlap[overlap["grouping"] == "overall"]
    matrix = overall.pivot(index="language_sft", columns="task_sft", values=value)
    return matrix.reindex(
        index=list(dict.fromkeys(overall["language_sft"])), columns=list(dict.fromkeys(overall["task_sft"]))
    )


def layer_ratios(overlap: pd.DataFrame) -> pd.DataFrame:
    """Mean `jaccard_ratio` over the language SFTs: task SFTs as rows, layers as columns."""
    layers = overlap[overlap["grouping"] == "layer"]
    matrix = layers.pivot_table(index="task_sft", columns="group", values="jaccard_ratio", aggfunc="mean")
    return matrix.reindex(
        index=list(dict.fromkeys(layers["task_sft"])), columns=list(dict.fromkeys(layers["group"]))
    )


def describe_overlap(overlap: pd.DataFrame) -> list[str]:
    """State how much the language and task SFT masks overlap, overall and by layer."""
    overall = overlap[overlap["grouping"] == "overall"]
    if overall.empty:
        return ["The mask-overlap table has no overall rows."]
    ratios = overall["jaccard_ratio"].dropna()
    top = overall.loc[overall["jaccard"].idxmax()]
    spread = (
        f"Over {len(overall)} pairs of a language SFT and a task SFT, the Jaccard index of the masks "
        f"ranges from {overall['jaccard'].min():.3f} to {overall['jaccard'].max():.3f}. The highest "
        f"is {top.language_sft} with {top.task_sft} ({top.jaccard:.3f})."
    )
    sentences = [spread]
    if not ratios.empty:
        above = int((ratios > 1).sum())
        sentences.append(
            f"Relative to random masks of the same sizes the ratio averages {ratios.mean():.2f}, "
            f"above 1 (more overlap than chance) for {above} of {len(ratios)} pairs."
        )
    layers = overlap[overlap["grouping"] == "layer"].dropna(subset=["jaccard_ratio"])
    if not layers.empty:
        by_layer = layers.groupby("group", sort=False)["jaccard_ratio"].mean()
        parts = ", ".join(f"{group} {ratio:.2f}" for group, ratio in by_layer.items())
        sentences.append(f"Mean ratio to random masks per layer: {parts}.")
    return sentences

