"""The HTML pages of the result tables that the Snakemake report displays."""

from __future__ import annotations

from xlt.workflow import markdown_page
from xlt.workflow.tables import Score, build_rows, render_markdown

PLAN = {
    "experiment": "unit",
    "source_language": "en",
    "seeds": [1],
    "without_language_module": [["pos", "lt_sft", "bxr"]],
    "tasks": {"pos": {"targets": ["mt", "bxr"]}},
    "methods": [
        {
            "name": "lt_sft",
            "label": "LT-SFT",
            "tasks": ["pos"],
            "targets": {"pos": ["mt", "bxr"]},
            "seeds": [1],
            "note": None,
        }
    ],
}


def pos_markdown() -> str:
    scores = [Score("pos", "lt_sft", "mt", 1, {"accuracy": 0.5}), Score("pos", "lt_sft", "bxr", 1, {"accuracy": 0.25})]
    return render_markdown(PLAN, "pos", build_rows(PLAN, "pos", scores, reference=[]))


def test_page_renders_table_cells():
    page = markdown_page.render_page(pos_markdown(), "POS")

    assert page.startswith("<!DOCTYPE html>")
    assert "<title>POS</title>" in page
    assert "<h1>POS tagging (UD), word accuracy</h1>" in page
    assert "<td>LT-SFT</td>" in page
    assert '<td style="text-align:right">50.0</td>' in page
    # The Markdown escape of the mark for languages without text becomes a plain asterisk.
    assert '<td style="text-align:right">25.0*</td>' in page


def test_page_escapes_raw_html():
    page = markdown_page.render_page("# Title <b>\n\n<script>alert(1)</script>\n", "a <title>")

    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page
    assert "<title>a &lt;title&gt;</title>" in page


def test_page_title_from_first_heading():
    assert markdown_page.page_title("intro\n# POS tagging\n## UAS\n", "pos") == "POS tagging"
    assert markdown_page.page_title("no heading here\n", "pos") == "pos"


def test_command_writes_page(tmp_path):
    source = tmp_path / "pos.md"
    source.write_text(pos_markdown(), encoding="utf-8")
    output = tmp_path / "html" / "pos.html"

    assert markdown_page.main([str(source), str(output)]) == 0
    page = output.read_text(encoding="utf-8")
    assert "<title>POS tagging (UD), word accuracy</title>" in page
    assert "<table>" in page


def test_command_reports_missing_file(tmp_path, caplog):
    missing = tmp_path / "missing.md"

    assert markdown_page.main([str(missing), str(tmp_path / "out.html")]) == 1
    assert str(missing) in caplog.text
    assert not (tmp_path / "out.html").exists()
