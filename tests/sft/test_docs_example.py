"""The library examples of docs/library.md and README.md run as written."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY_DOCS = ROOT / "docs" / "library.md"
README = ROOT / "README.md"


def python_blocks(path: Path, heading: str) -> list[str]:
    """Return the python code blocks of the section of `path` that starts at `heading`."""
    text = path.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def run_example(code: str, path: Path, name: str) -> None:
    exec(compile(code, str(path), "exec"), {"__name__": name})  # noqa: S102 - runs the documented example on purpose


def test_quick_start_example_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(LIBRARY_DOCS, "## Quick start")
    assert len(blocks) == 1, "the quick start section should hold exactly one python block"
    monkeypatch.chdir(tmp_path)

    run_example(blocks[0], LIBRARY_DOCS, "quick_start")

    assert (tmp_path / "sfts" / "first" / "sft.safetensors").is_file()
    assert "kind='composed'" in capsys.readouterr().out


def test_readme_library_example_runs(tmp_path, monkeypatch, capsys):
    # The first block is the tiny-model example; the second loads hub ids and cannot run offline.
    blocks = python_blocks(README, "## Using the library")
    assert len(blocks) == 2, "the README's library section should hold the tiny and the hub example"
    assert blocks[0] == python_blocks(LIBRARY_DOCS, "## Quick start")[0], "README and docs examples differ"
    monkeypatch.chdir(tmp_path)

    run_example(blocks[0], README, "readme_example")

    assert (tmp_path / "sfts" / "first" / "sft.safetensors").is_file()
    assert "kind='composed'" in capsys.readouterr().out


def test_multisource_example_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(LIBRARY_DOCS, "## Multi-source training")
    assert len(blocks) == 1, "the multi-source section should hold exactly one python block"
    monkeypatch.chdir(tmp_path)

    run_example(blocks[0], LIBRARY_DOCS, "multisource_example")

    assert capsys.readouterr().out.strip().splitlines()[-1] == "500"
