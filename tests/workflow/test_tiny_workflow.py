"""The tiny experiment end to end: every rule, method, table, figure and the mask-overlap analysis.

The `tiny_run` fixture (conftest.py) runs `snakemake --cores 2` on configs/tiny.yaml once per test
session in a temporary working directory with the offline data mirror, which takes several minutes
on two CPU cores. The report and notebook tests reuse that run. Marked `workflow` and `slow`, and
skipped when the mirror is absent.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from workflow_helpers import load_config, make_plan

from xlt.workflow.tables import TASK_METRICS

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.data]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def plan():
    return make_plan(load_config("tiny"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("task", ["pos", "dp", "ner", "nli"])
def test_table_has_every_method_and_target(tiny_run, plan, task):
    results = tiny_run / "results" / "tiny"
    rows = read_csv(results / "tables" / f"{task}.csv")
    targets = list(plan.tasks[task].targets)

    assert list(rows[0])[4:] == [f"{column}_{stat}" for column in [*targets, "avg"] for stat in ("mean", "sd")]
    methods = [name for name, method in plan.methods.items() if task in method.tasks]
    for metric, _label in TASK_METRICS[task]:
        metric_rows = {row["method"]: row for row in rows if row["metric"] == metric}
        assert list(metric_rows) == [*methods, "paper"], metric
        for name in methods:
            covered = plan.methods[name].targets(targets)
            for target in covered:
                assert metric_rows[name][f"{target}_mean"] != "", (name, metric, target)
            assert metric_rows[name]["avg_mean"] != "", (name, metric)

    markdown = (results / "tables" / f"{task}.md").read_text(encoding="utf-8")
    for method in plan.methods.values():
        if task in method.tasks:
            assert f"| {method.label}" in markdown, method.label
    assert "MAD-X: language adapters have 6,474 parameters" in markdown


def test_figures_exist(tiny_run):
    figures = tiny_run / "results" / "tiny" / "figures"
    for name in ("per_language.png", "sparsity_sweep.png", "mask_overlap.png"):
        assert (figures / name).read_bytes().startswith(PNG_SIGNATURE), name


def test_mask_overlap_covers_every_pair(tiny_run, plan):
    rows = read_csv(tiny_run / "results" / "tiny" / "tables" / "mask_overlap.csv")
    language_sfts, task_sfts = plan.mask_overlap_modules()

    overall = [row for row in rows if row["grouping"] == "overall"]
    assert len(overall) == len(language_sfts) * len(task_sfts)
    assert {row["task_sft"] for row in overall} == {"pos", "dp", "ner", "nli"}
    assert {row["language_sft"] for row in overall} == {path.split("/")[-2] for path in language_sfts}
    for row in overall:
        assert 0.0 <= float(row["jaccard"]) <= 1.0
        assert float(row["expected_jaccard"]) > 0.0
    assert {"layer 0", "layer 1", "embeddings"} <= {row["group"] for row in rows if row["grouping"] == "layer"}


def test_madx_adapters_match_their_budget(tiny_run):
    results = tiny_run / "results" / "tiny" / "adapters"
    language = json.loads((results / "language/tiny/madx/en/seed1/train_metrics.json").read_text())
    task = json.loads((results / "task/pos/madx/madx/seed1/train_metrics.json").read_text())

    assert language["summary"]["num_adapter_parameters"] == 6474
    assert task["summary"]["num_adapter_parameters"] == 12934
    assert task["summary"]["stacked_on"] == "en"
    # The config's note states these numbers against the maskable entries of the tiny model.
    assert language["summary"]["num_maskable_entries"] == 129280

    metrics = json.loads((tiny_run / "results/tiny/metrics/pos/madx/mt/seed1.json").read_text())
    assert metrics["active_adapters"] == "Stack[mt, pos]"
