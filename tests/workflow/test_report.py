"""The Snakemake HTML report of the tiny run: every table and figure bundled with its caption.

Reuses the session's tiny workflow run (conftest.py). The browser test also needs Chromium and the
playwright package, and skips without them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_helpers import REPO_ROOT

from xlt.workflow.tables import TASK_TITLES

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.data]

TASKS = ("pos", "dp", "ner", "nli")
FIGURES = ("per_language.png", "sparsity_sweep.png", "mask_overlap.png")
SCREENSHOT_TOOL = REPO_ROOT / "tools" / "screenshot_report.py"


def report_variable(html: str, name: str):
    """Return the JSON value that the report assigns to the JavaScript variable `name`."""
    # The bundled JavaScript libraries declare variables of the same name, so only an assignment
    # of a JSON object or string directly followed by the end of its script counts.
    match = re.search(rf"var {name} = ((?:\{{|\").*?);\s*</script>", html, re.DOTALL)
    assert match is not None, f"the report has no `var {name} = <JSON object or string>` script"
    return json.loads(match.group(1))


def decode_data_uri(uri: str) -> bytes:
    header, _, payload = uri.partition(",")
    assert header.endswith(";base64"), header
    return base64.b64decode(payload)


@pytest.fixture(scope="module")
def report_contents(tiny_report):
    html = tiny_report.read_text(encoding="utf-8")
    results = report_variable(html, "results")
    categories = report_variable(html, "categories")
    by_category = {
        category: {Path(path).name for paths in subcategories.values() for path in paths}
        for category, subcategories in categories.items()
    }
    return html, results, by_category


def result_named(results: dict, name: str) -> dict:
    matches = [entry for path, entry in results.items() if Path(path).name == name]
    assert len(matches) == 1, f"{name}: {len(matches)} results in the report"
    return matches[0]


def test_report_file_exists(tiny_report):
    assert tiny_report.is_file()
    assert tiny_report.stat().st_size > 0


def test_report_groups_results_by_category(report_contents):
    _html, _results, by_category = report_contents

    assert by_category["Result tables"] == {f"{task}.html" for task in TASKS}
    assert by_category["Figures"] == set(FIGURES)
    assert by_category["Data files"] == {f"{task}.csv" for task in TASKS} | {"mask_overlap.csv", "plan.json"}


@pytest.mark.parametrize("task", TASKS)
def test_report_table_shows_every_method(report_contents, tiny_run, task):
    _html, results, _by_category = report_contents
    entry = result_named(results, f"{task}.html")
    page = decode_data_uri(entry["data_uri"]).decode("utf-8")
    markdown = (tiny_run / "results" / "tiny" / "tables" / f"{task}.md").read_text(encoding="utf-8")

    assert entry["mime_type"] == "text/html"
    assert f"<h1>{TASK_TITLES[task]}</h1>" in page
    assert page.count("<table>") == markdown.count("|---|")
    labels = [line.split("|")[1].strip() for line in markdown.splitlines() if line.startswith("| ")]
    for label in labels:
        assert f"<td>{label}</td>" in page or f"<th>{label}</th>" in page, label
    assert f"<tt class=\"docutils literal\">{task}</tt>" in entry["caption"]


@pytest.mark.parametrize("name", FIGURES)
def test_report_embeds_figure(report_contents, tiny_run, name):
    _html, results, _by_category = report_contents
    entry = result_named(results, name)
    figure = (tiny_run / "results" / "tiny" / "figures" / name).read_bytes()

    assert entry["mime_type"] == "image/png"
    assert decode_data_uri(entry["data_uri"]) == figure
    assert entry["caption"].strip()


def test_report_has_workflow_description(report_contents):
    html, _results, _by_category = report_contents
    description = report_variable(html, "workflow_desc")

    assert "Results of the experiment <tt class=\"docutils literal\">tiny</tt>" in description


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_visible_in_chromium(tiny_report, tmp_path):
    pytest.importorskip("playwright.sync_api", reason="the browser check needs the playwright package")
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("Chromium not found; install it (apt-get install chromium) or set CHROMIUM")

    completed = subprocess.run(
        [sys.executable, str(SCREENSHOT_TOOL), str(tiny_report), "--output-dir", str(tmp_path),
         "--chromium", chromium],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    checks = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    shown = {Path(check["path"]).name for check in checks if check["visible"]}
    assert shown == {f"{task}.html" for task in TASKS} | set(FIGURES)
    for check in checks:
        assert (tmp_path / check["screenshot"]).stat().st_size > 0, check["screenshot"]
