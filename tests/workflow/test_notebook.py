"""notebooks/analysis.ipynb executed headless with nbclient: any cell error fails the test.

The notebook takes its experiment and results folder from the environment variables
XLT_EXPERIMENT and XLT_RESULTS_DIR, which the kernel inherits from the test process.
"""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from synthetic_results import SYNTHETIC_EXPERIMENT
from workflow_helpers import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "analysis.ipynb"
CELL_TIMEOUT_S = 300


def execute_notebook(monkeypatch, results_dir, experiment):
    """Run every cell of the notebook in a fresh kernel started in the notebook's folder."""
    monkeypatch.setenv("XLT_RESULTS_DIR", str(results_dir))
    monkeypatch.setenv("XLT_EXPERIMENT", experiment)
    # The kernel's inline backend captures the figures, which a non-interactive MPLBACKEND would not.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    return notebook


def printed_text(notebook) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream"
    )


def image_count(notebook) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def test_notebook_saved_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]

    for cell in code_cells:
        assert cell.outputs == [], cell.source[:60]
        assert cell.execution_count is None, cell.source[:60]


def test_notebook_chooses_experiment_first():
    first = nbformat.read(NOTEBOOK, as_version=4).cells[0]

    assert first.cell_type == "code"
    assert "parameters" in first.metadata.get("tags", [])
    assert 'EXPERIMENT = os.environ.get("XLT_EXPERIMENT", "default")' in first.source


@pytest.mark.slow
def test_notebook_runs_on_synthetic_results(monkeypatch, synthetic_results):
    notebook = execute_notebook(monkeypatch, synthetic_results.parent, SYNTHETIC_EXPERIMENT)
    text = printed_text(notebook)

    assert "Experiment 'synthetic'" in text
    assert "POS accuracy: LT-SFT is higher than MAD-X on 1 of 2 targets, +1.5 points on average" in text
    assert "POS accuracy, mt: best at K = 20% (58.0)" in text
    assert "Over 4 pairs of a language SFT and a task SFT" in text
    # Bar charts, sweep curves and the mask-overlap heat maps.
    assert image_count(notebook) == 3


@pytest.mark.slow
def test_notebook_reports_missing_results(monkeypatch, tmp_path):
    with pytest.raises(Exception, match="run the workflow for the experiment 'absent'"):
        execute_notebook(monkeypatch, tmp_path, "absent")


@pytest.mark.workflow
@pytest.mark.slow
@pytest.mark.data
def test_notebook_runs_on_tiny_results(monkeypatch, tiny_run):
    notebook = execute_notebook(monkeypatch, tiny_run / "results", "tiny")
    text = printed_text(notebook)

    assert "Experiment 'tiny'" in text
    for task in ("POS accuracy", "DP UAS", "NER F1", "NLI accuracy"):
        assert f"{task}: LT-SFT is higher than MAD-X" in text, task
    assert "POS accuracy, mt: best at K = " in text
    assert "Mean ratio to random masks per layer: embeddings" in text
    assert image_count(notebook) == 3
