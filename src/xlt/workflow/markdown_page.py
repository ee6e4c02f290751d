"""Render a Markdown result table as a standalone HTML page for the Snakemake report.

    python -m xlt.workflow.markdown_page results/default/tables/pos.md results/default/tables/pos.html

Snakemake's HTML report (version 9) displays images, HTML and PDF files inline but offers any
other file, Markdown and CSV included, only as a download. The workflow therefore renders each
Markdown table to HTML, so that the report shows the tables themselves. The page has no scripts
and no external links, and it carries its style sheet inline.
"""

from __future__ import annotations

import argparse
import html
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import mistune

from ..data.atomic import atomic_write_text

logger = logging.getLogger(__name__)

# Light, print-friendly styling: the report shows the page in an iframe on a white background.
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #1f2328;
       background: #ffffff; }
h1 { font-size: 1.4em; }
h2 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.8em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.7em; }
thead th { background: #f6f8fa; }
tbody tr:nth-child(even) { background: #fafbfc; }
li { margin: 0.2em 0; }
"""


def markdown_to_html(markdown: str) -> str:
    """Convert Markdown with GitHub-style tables to an HTML fragment, escaping any raw HTML."""
    renderer = mistune.create_markdown(escape=True, plugins=["table"])
    return renderer(markdown)


def page_title(markdown: str, default: str) -> str:
    """Return the text of the first level-1 heading of `markdown`, or `default` without one."""
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return default


def render_page(markdown: str, title: str) -> str:
    """Return a complete HTML document that shows `markdown` under the page title `title`."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{markdown_to_html(markdown)}"
        "</body>\n</html>\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.workflow.markdown_page",
        description="Render a Markdown file (a result table) as a standalone HTML page.",
    )
    parser.add_argument("markdown", type=Path, help="Markdown file to read")
    parser.add_argument("output", type=Path, help="HTML file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        markdown = args.markdown.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        logger.error("cannot read %s: %s", args.markdown, error)
        return 1
    atomic_write_text(args.output, render_page(markdown, page_title(markdown, args.markdown.stem)))
    logger.info("Wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
