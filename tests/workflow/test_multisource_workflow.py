"""The multi-source row of the tiny experiment: its task SFTs, their sources and its table row.

Reuses the session's tiny workflow run (`tiny_run` in conftest.py). Marked `workflow` and `slow`,
and skipped when the data mirror is absent.
"""

from __future__ import annotations

import json

import pytest
from workflow_helpers import load_config, make_plan

from sft import SFT

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.data]

METHOD = "lt_sft_multisource"


@pytest.fixture(scope="module")
def plan():
    return make_plan(load_config("tiny"))


def trained_sources(tiny_run, module):
    metrics = json.loads((tiny_run / module / "train_metrics.json").read_text())
    return metrics, sorted(metrics["sources"])


@pytest.mark.parametrize(
    "task, target, sources",
    [("pos", "mt", ["en", "fo"]), ("pos", "bxr", ["en", "fo", "mt"]), ("dp", "fo", ["en", "mt"])],
)
def test_task_sft_leaves_out_the_target(tiny_run, plan, task, target, sources):
    module = plan.evaluation_modules(task, METHOD, target, 1)["task_module"]

    metrics, trained_on = trained_sources(tiny_run, module)

    assert trained_on == sources
    for language in sources:
        assert metrics["sources"][language]["num_train_records"] == 24
        assert metrics["source_sfts"][language]["name_or_path"].endswith(f"/lt_sft/{language}/seed1")
    assert sorted(metrics["validation_per_source"]) == sources
    sft = SFT.from_pretrained(tiny_run / module)
    assert sft.config.kind == "task"
    assert 0 < sft.num_diff_entries <= sft.config.ft_params_num


def test_table_row_and_note(tiny_run):
    markdown = (tiny_run / "results" / "tiny" / "tables" / "pos.md").read_text()

    assert "| LT-SFT (multi-source)" in markdown
    assert "pos: en, mt, fo" in markdown
