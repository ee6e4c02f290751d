"""The library examples of docs/library.md (quick start) and README.md run as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Document, section heading, and that section's first python block is the tiny-model example.
EXAMPLES = [(ROOT / "docs" / "library.md", "## Quick start"), (ROOT / "README.md", "## Using the library")]


def example_code(path: Path, heading: str) -> str:
    text = path.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, f"{path.name}: the section {heading!r} has no python block"
    return blocks[0]


@pytest.mark.parametrize(("path", "heading"), EXAMPLES, ids=["library-docs", "readme"])
def test_library_example_runs(path, heading, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = compile(example_code(path, heading), str(path), "exec")
    exec(code, {"__name__": "example"})  # noqa: S102 - runs the documented example on purpose
    assert (tmp_path / "sfts" / "first" / "sft.safetensors").is_file()
    assert "kind='composed'" in capsys.readouterr().out
