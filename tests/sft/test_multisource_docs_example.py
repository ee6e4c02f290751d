import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "library.md"


def multisource_example_code() -> str:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Multi-source training", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the multi-source section should hold exactly one python block"
    return blocks[0]


def test_multisource_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = compile(multisource_example_code(), str(DOCS), "exec")
    exec(code, {"__name__": "multisource_example"})  # noqa: S102 - runs the documented example
    assert capsys.readouterr().out.strip().splitlines()[-1] == "500"
