"""Result tables: rows, cells, averages, seeds and the paper's reference row."""

from __future__ import annotations

import json

import pytest

from xlt.workflow.split_corpus import sample_lines, split_lines
from xlt.workflow.tables import build_rows, read_reference, read_scores, render_csv, render_markdown

PLAN = {
    "experiment": "unit",
    "source_language": "en",
    "seeds": [1, 2],
    "tasks": {"dp": {"targets": ["mt", "bxr"], "test_datasets": {}, "base_model": "m"}},
    "methods": [
        {"name": "lt_sft", "label": "LT-SFT", "tasks": ["dp"], "targets": {"dp": ["mt", "bxr"]},
         "seeds": [1, 2], "note": None, "sweep_proportion": None},
        {"name": "madx", "label": "MAD-X", "tasks": ["dp"], "targets": {"dp": ["mt"]},
         "seeds": [1], "note": "budget", "sweep_proportion": None},
    ],
    "without_language_module": [["dp", "lt_sft", "bxr"]],
}


def write_metrics(root, method, language, seed, uas, las):
    path = root / "metrics" / "dp" / method / language / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": "dp", "metrics": {"uas": uas, "las": las, "scope": "all words"}}))
    return path


@pytest.fixture
def metrics_files(tmp_path):
    return [
        write_metrics(tmp_path, "lt_sft", "mt", 1, 0.60, 0.50),
        write_metrics(tmp_path, "lt_sft", "mt", 2, 0.70, 0.52),
        write_metrics(tmp_path, "lt_sft", "bxr", 1, 0.40, 0.20),
        write_metrics(tmp_path, "lt_sft", "bxr", 2, 0.40, 0.30),
        write_metrics(tmp_path, "madx", "mt", 1, 0.55, 0.45),
    ]


def test_rows_have_seed_means_and_averages(metrics_files):
    rows = build_rows(PLAN, "dp", read_scores(metrics_files), [])
    uas = {row.method: row for row in rows if row.metric == "uas"}

    assert uas["lt_sft"].cells["mt"] == [0.60, 0.70]
    assert uas["lt_sft"].average == pytest.approx([0.50, 0.55])
    assert uas["madx"].covered == ["mt"]
    assert uas["paper"].reference_missing


def test_markdown_marks_sd_partial_rows_and_missing_text(metrics_files):
    rows = build_rows(PLAN, "dp", read_scores(metrics_files), [])

    text = render_markdown(PLAN, "dp", rows)

    assert "| Method | mt | bxr | avg |" in text
    assert "| LT-SFT (2 seeds) | 65.0 ± 7.1 | 40.0 ± 0.0\\* | 52.5 ± 3.5 |" in text
    assert "| MAD-X | 55.0 | – | 55.0† |" in text
    assert "not recorded" in text
    assert "## UAS" in text and "## LAS" in text
    assert "no text for bxr" in text


def test_markdown_merges_shared_and_partial_notes(tmp_path, metrics_files):
    plan = json.loads(json.dumps(PLAN))
    plan["methods"].append(
        {"name": "random", "label": "Random", "tasks": ["dp"], "targets": {"dp": ["mt"]},
         "seeds": [1], "note": "budget", "sweep_proportion": None}
    )
    files = [*metrics_files, write_metrics(tmp_path, "random", "mt", 1, 0.30, 0.20)]
    rows = build_rows(plan, "dp", read_scores(files), [])

    notes = render_markdown(plan, "dp", rows).split("Notes:")[1].splitlines()

    assert "- MAD-X; Random: budget" in notes
    assert "- † average over the languages the row covers (MAD-X: mt; Random: mt)." in notes
    assert sum("†" in note for note in notes) == 1


def test_csv_has_mean_and_sd_columns(metrics_files):
    rows = build_rows(PLAN, "dp", read_scores(metrics_files), [])

    header, *lines = render_csv(PLAN, "dp", rows).splitlines()

    assert header == "method,label,metric,seeds,mt_mean,mt_sd,bxr_mean,bxr_sd,avg_mean,avg_sd"
    assert "lt_sft,LT-SFT,uas,2,65.00,7.07,40.00,0.00,52.50,3.54" in lines


def test_missing_metrics_file_raises(metrics_files):
    scores = read_scores(metrics_files[1:])

    with pytest.raises(ValueError, match="method lt_sft, language mt, seeds \\[1\\]"):
        build_rows(PLAN, "dp", scores, [])


def test_reference_values_fill_paper_row(tmp_path, metrics_files):
    reference = tmp_path / "paper.csv"
    reference.write_text(
        "# comment\ntask,method,language,metric,value,table\ndp,lt_sft,mt,uas,80.5,3\n"
    )

    rows = build_rows(PLAN, "dp", read_scores(metrics_files), read_reference(reference))
    paper = next(row for row in rows if row.method == "paper" and row.metric == "uas")

    assert paper.cells == {"mt": [0.805]}
    assert paper.note == "values from the paper's Table 3"


def test_reference_without_table_number_raises(tmp_path):
    reference = tmp_path / "paper.csv"
    reference.write_text("task,method,language,metric,value,table\ndp,lt_sft,mt,uas,80.5,\n")

    with pytest.raises(ValueError, match="line 2: every value needs the paper's table number"):
        read_reference(reference)


def test_metrics_path_must_follow_layout(tmp_path):
    path = tmp_path / "scores.json"
    path.write_text("{}")

    with pytest.raises(ValueError, match="not a metrics path"):
        read_scores([path])


def test_split_lines_holds_out_every_nth_line():
    train, dev = split_lines([str(i) for i in range(10)], every=3, max_dev=2)

    assert dev == ["0", "3"]
    assert train == ["1", "2", "4", "5", "6", "7", "8", "9"]


def test_split_lines_rejects_every_below_two():
    with pytest.raises(ValueError, match="every must be at least 2"):
        split_lines(["a"], every=1, max_dev=1)


def test_sample_lines_keeps_order_and_is_seeded():
    lines = [str(i) for i in range(100)]

    first = sample_lines(lines, 10, seed=3)

    assert first == sample_lines(lines, 10, seed=3)
    assert first != sample_lines(lines, 10, seed=4)
    assert first == sorted(first, key=int)
    assert sample_lines(lines, None, seed=3) == lines
