"""Render corpus reports (the JSON files of `xlt.data.corpus`) as one Markdown table.

python -m xlt.data.report resources/corpora/*.json > corpus-table.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

COLUMNS: tuple[str, ...] = (
    "Language",
    "Sentences",
    "Words",
    "Characters",
    "Sources",
    "Duplicates",
    "Leaked",
    "Leak keys",
)


def _row(report: dict) -> list[str]:
    removed = report["removed"]
    leaked = sum(value for key, value in removed.items() if key.startswith("leaked_"))
    language = report["corpus_language"]
    shared = [code for code in report["shared_by"] if code != language]
    if shared:
        language += f" (also {', '.join(shared)})"
    return [
        language,
        f"{report['sentences']:,}",
        f"{report['words']:,}",
        f"{report['characters']:,}",
        str(len(report["sources"])),
        f"{removed['duplicate']:,}",
        f"{leaked:,}",
        f"{report['leak_filter']['keys']:,}",
    ]


def markdown_table(reports: Iterable[dict]) -> str:
    """Return a Markdown table with one row per corpus, sorted by language code."""
    rows = [
        _row(report) for report in sorted(reports, key=lambda report: report["corpus_language"])
    ]
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|",
    ]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xlt.data.report",
        description="Print a Markdown table of the reports written by python -m xlt.data.corpus.",
    )
    parser.add_argument(
        "reports", nargs="+", type=Path, metavar="REPORT", help="corpus report JSON files"
    )
    args = parser.parse_args(argv)
    reports = [json.loads(path.read_text(encoding="utf-8")) for path in args.reports]
    sys.stdout.write(markdown_table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
