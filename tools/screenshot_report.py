"""Open a Snakemake HTML report in headless Chromium, show every table and figure, take screenshots.

    python tools/screenshot_report.py results/tiny/report.html --output-dir /tmp/report-shots

The report is a single page that shows a result only after a click on its category and on its
view button. The script clicks through to every result that the report can display (PNG figures
and HTML tables) and writes a screenshot of the window. It counts a figure as visible when the
image has loaded with a nonzero size, and a table when its page has a table with rows. It also writes
`overview.png` (the start page) and `summary.json` (one entry per result). The exit status is 1
if any result is not visible.

Needs Chromium (`apt-get install chromium`, or --chromium PATH) and the Python package
playwright, which drives it. playwright's own browser download is not needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger("screenshot_report")

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Flags for a sandboxed machine without a display or network: without the last four, Chromium
# keeps trying to reach Google's services at start.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# MIME types that the report (Snakemake 9) displays in the page. Other types are download links.
DISPLAYED_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "text/html")
TIMEOUT_MS = 15_000


@dataclass
class ResultCheck:
    """Outcome of showing one result of the report in the browser."""

    path: str
    category: str
    label: str
    mime_type: str
    visible: bool
    detail: str
    screenshot: str | None


def read_report_data(html: str, variable: str) -> object:
    """Return the JSON value that the report assigns to the JavaScript variable `variable`."""
    match = re.search(rf"<script id=\"[^\"]+\">\s*var {variable} = (.*?);\s*</script>", html, re.DOTALL)
    if match is None:
        raise ValueError(
            f"the report has no `var {variable} = ...` script, so it is not a Snakemake 9 report: "
            "build it with `snakemake --report`"
        )
    return json.loads(match.group(1))


def first_label(entry: dict) -> str:
    """Return the text that the report shows in the first column of a result's row."""
    labels = entry.get("labels") or {}
    return str(next(iter(labels.values()))) if labels else entry["name"]


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def open_result(page, url: str, category: str, label: str) -> None:
    """Load the report, open `category` and click the view button in the row of `label`."""
    page.goto(url)
    page.get_by_role("link", name=category, exact=True).click()
    row = page.locator("tbody tr").filter(has=page.get_by_text(label, exact=True))
    row.first.locator("a[iconname='eye']").click()


def check_image(page, filename: str) -> tuple[bool, str]:
    # The report embeds each result as a data URI that names the file (and has its own logo).
    image = page.locator(f"img[src*='filename={filename};']").first
    image.wait_for(state="visible", timeout=TIMEOUT_MS)
    width, height, complete = image.evaluate("i => [i.naturalWidth, i.naturalHeight, i.complete]")
    return bool(complete and width > 0 and height > 0), f"image {width}x{height} px"


def check_table(page, filename: str) -> tuple[bool, str]:
    page.locator(f"iframe[src*='filename={filename};']").first.wait_for(state="visible", timeout=TIMEOUT_MS)
    frame = next((frame for frame in page.frames if f"filename={filename};" in frame.url), None)
    if frame is None:
        return False, "no HTML frame in the page"
    rows = frame.locator("table tbody tr").count()
    heading = frame.locator("h1").first.inner_text() if frame.locator("h1").count() else ""
    return rows > 0, f"{rows} table rows under {heading!r}"


def check_report(
    report: Path, output_dir: Path, chromium: str, width: int, height: int
) -> list[ResultCheck]:
    """Show every displayable result of `report` in Chromium and return what was seen."""
    from playwright.sync_api import sync_playwright

    html = report.read_text(encoding="utf-8")
    results = read_report_data(html, "results")
    categories = read_report_data(html, "categories")
    url = report.resolve().as_uri()
    output_dir.mkdir(parents=True, exist_ok=True)

    checks = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=list(CHROMIUM_FLAGS)
        )
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.get_by_role("link", name="Workflow").wait_for(state="visible")
        page.screenshot(path=str(output_dir / "overview.png"))

        for category, subcategories in categories.items():
            for paths in subcategories.values():
                for path in paths:
                    entry = results[path]
                    label = first_label(entry)
                    if entry["mime_type"] not in DISPLAYED_TYPES:
                        logger.info("%s: %s is a download (%s)", category, path, entry["mime_type"])
                        continue
                    open_result(page, url, category, label)
                    if entry["mime_type"] == "text/html":
                        visible, detail = check_table(page, entry["filename"])
                    else:
                        visible, detail = check_image(page, entry["filename"])
                    screenshot = output_dir / f"{safe_name(category)}-{safe_name(Path(entry['name']).stem)}.png"
                    page.screenshot(path=str(screenshot))
                    checks.append(
                        ResultCheck(path, category, label, entry["mime_type"], visible, detail, screenshot.name)
                    )
                    logger.info("%s: %s %s (%s)", category, path, "visible" if visible else "NOT visible", detail)
        browser.close()
    return checks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="report.html written by `snakemake --report`")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for the PNG screenshots")
    parser.add_argument(
        "--chromium",
        default=os.environ.get("CHROMIUM", DEFAULT_CHROMIUM),
        help=f"Chromium executable (default: $CHROMIUM or {DEFAULT_CHROMIUM})",
    )
    parser.add_argument("--width", type=int, default=1400, help="window width in pixels")
    parser.add_argument("--height", type=int, default=1000, help="window height in pixels")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if not args.report.is_file():
        logger.error("report %s not found: build it with `snakemake --report %s`", args.report, args.report)
        return 1
    if not Path(args.chromium).is_file():
        logger.error("Chromium not found at %s: install it (apt-get install chromium) or pass --chromium", args.chromium)
        return 1

    checks = check_report(args.report, args.output_dir, args.chromium, args.width, args.height)
    summary = args.output_dir / "summary.json"
    summary.write_text(json.dumps([asdict(check) for check in checks], indent=2) + "\n", encoding="utf-8")
    hidden = [check.path for check in checks if not check.visible]
    if not checks:
        logger.error("the report displays no tables or figures")
        return 1
    if hidden:
        logger.error("not visible: %s", ", ".join(hidden))
        return 1
    logger.info("%d results visible, screenshots and %s in %s", len(checks), summary.name, args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
