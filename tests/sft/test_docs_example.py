import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "library.md"


def quick_start_code() -> str:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the quick start section should hold exactly one python block"
    return blocks[0]


def test_quick_start_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = compile(quick_start_code(), str(DOCS), "exec")
    exec(code, {"__name__": "quick_start"})  # noqa: S102 - runs the documented example on purpose
    assert (tmp_path / "sfts" / "first" / "sft.safetensors").is_file()
    assert "kind='composed'" in capsys.readouterr().out
