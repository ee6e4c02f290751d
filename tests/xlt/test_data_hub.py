"""Hub exports (MultiNLI, Wikipedia) with `datasets.load_dataset` replaced: no test reaches the hub."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from datasets import ClassLabel, Dataset, Features, Value

from xlt.data.catalogue import DEFAULT_CATALOGUE, load_catalogue
from xlt.data.hub import (
    HUB_NLI_DATASETS,
    WIKIPEDIA_CODES,
    export_nli,
    export_wikipedia,
    hub_export_path,
    is_prose,
    main,
    parse_hub_spec,
    report_path,
    wikipedia_code,
    wikipedia_export_path,
)
from xlt.data.records import NLI_LABELS
from xlt.tasks.sources import detect_nli_format, read_nli_examples

REPO_ROOT = Path(__file__).resolve().parents[2]

NLI_FEATURES = Features(
    {
        "pairID": Value("string"),
        "premise": Value("string"),
        "hypothesis": Value("string"),
        "genre": Value("string"),
        "label": ClassLabel(names=["entailment", "neutral", "contradiction"]),
    }
)


def multi_nli() -> Dataset:
    return Dataset.from_dict(
        {
            "pairID": ["1e", "2n", "3x", "4c"],
            "premise": ["A man sleeps.", "Tabs\tand\nbreaks.", "No gold label.", "It rains."],
            "hypothesis": ["Someone rests.", "A sentence.", "Unknown.", "It is dry."],
            "genre": ["fiction"] * 4,
            "label": [0, 1, -1, 2],
        },
        features=NLI_FEATURES,
    )


def wikipedia(articles: int = 6) -> Dataset:
    texts = [
        f"Article {index}\n\nFirst paragraph of article {index} is prose.\nSee also\n"
        f"Second paragraph of article {index}, also prose.\n* a list item"
        for index in range(articles)
    ]
    return Dataset.from_dict(
        {
            "id": [str(index) for index in range(articles)],
            "url": [f"https://xx.wikipedia.org/wiki?curid={index}" for index in range(articles)],
            "title": [f"Article {index}" for index in range(articles)],
            "text": texts,
        }
    )


@pytest.fixture
def fake_hub(monkeypatch):
    """Replace `datasets.load_dataset` and record its calls."""
    calls = []

    def load_dataset(path, name=None, split=None, revision=None, **kwargs):
        calls.append({"path": path, "name": name, "split": split, "revision": revision, **kwargs})
        if path == "nyu-mll/multi_nli":
            return multi_nli()
        if path == "wikimedia/wikipedia":
            return wikipedia()
        raise AssertionError(f"unexpected dataset {path}")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_nli_export_is_read_by_nli_readers(tmp_path, fake_hub):
    output = tmp_path / "train.tsv"

    report = export_nli("nyu-mll/multi_nli", "train", output)

    assert fake_hub == [{"path": "nyu-mll/multi_nli", "name": None, "split": "train", "revision": None}]
    assert detect_nli_format(output) == "americasnli"
    examples = read_nli_examples(output)
    assert [example.example_id for example in examples] == ["1e", "2n", "4c"]
    assert [NLI_LABELS[example.label] for example in examples] == ["entailment", "neutral", "contradiction"]
    assert examples[1].premise == "Tabs and breaks."
    assert {example.language for example in examples} == {"en"}
    assert report["pairs"] == 3
    assert report["dropped_without_gold_label"] == 1
    assert report["pairs_with_tabs_or_line_breaks_replaced"] == 1
    assert json.loads(report_path(output).read_text()) == report


def test_nli_export_rejects_unknown_split(tmp_path, fake_hub):
    with pytest.raises(ValueError, match="split='test' is not a split of nyu-mll/multi_nli"):
        export_nli("nyu-mll/multi_nli", "test", tmp_path / "test.tsv")
    assert fake_hub == []


def test_nli_export_rejects_non_nli_labels(tmp_path, monkeypatch):
    features = NLI_FEATURES.copy()
    features["label"] = ClassLabel(names=["positive", "negative"])
    data = Dataset.from_dict(
        {"pairID": ["1"], "premise": ["p"], "hypothesis": ["h"], "genre": ["g"], "label": [0]},
        features=features,
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: data)
    output = tmp_path / "train.tsv"

    with pytest.raises(ValueError, match=r"labels \['positive', 'negative'\] are not NLI labels"):
        export_nli("nyu-mll/multi_nli", "train", output)
    assert not output.exists()


def test_wikipedia_export_keeps_prose_paragraphs(tmp_path, fake_hub):
    output = tmp_path / "hau.txt"

    report = export_wikipedia("hau", output, snapshot="20231101", seed=3, revision="abc")

    assert fake_hub == [
        {"path": "wikimedia/wikipedia", "name": "20231101.ha", "split": "train", "revision": "abc"}
    ]
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    assert all(line.endswith(("prose.", "also prose.")) for line in lines)
    assert report["lines"] == 12
    assert report["articles_read"] == 6
    assert report["dropped_not_prose"] == 18
    assert report["wiki"] == "ha"


def test_wikipedia_cap_and_seed(tmp_path, fake_hub):
    first = export_wikipedia("hau", tmp_path / "a.txt", max_lines=3, seed=7)
    export_wikipedia("hau", tmp_path / "b.txt", max_lines=3, seed=7)
    export_wikipedia("hau", tmp_path / "c.txt", max_lines=12, seed=8)

    lines = (tmp_path / "a.txt").read_text().splitlines()
    assert len(lines) == 3
    assert lines == (tmp_path / "b.txt").read_text().splitlines()
    assert first["articles_read"] == 2
    other = (tmp_path / "c.txt").read_text().splitlines()
    assert sorted(other) == sorted(set(other))
    assert other[:3] != lines


def test_wikipedia_without_wiki_is_rejected(tmp_path, fake_hub):
    with pytest.raises(ValueError, match="'luo' has no Wikipedia"):
        export_wikipedia("luo", tmp_path / "luo.txt")
    assert fake_hub == []


def test_wiki_override(tmp_path, fake_hub):
    export_wikipedia("luo", tmp_path / "luo.txt", wiki="sw")
    assert fake_hub[0]["name"] == "20231101.sw"


@pytest.mark.parametrize(
    ("paragraph", "expected"),
    [
        ("This paragraph ends with a full stop.", True),
        ("«Una frase que termina con comillas.»", True),
        ("这是一个以句号结尾的中文句子，足够长了吗？是的。", True),
        ("History and etymology of the name", False),
        ("Short.", False),
    ],
)
def test_is_prose(paragraph, expected):
    assert is_prose(paragraph, min_chars=20) is expected


def test_wikipedia_codes_cover_catalogue():
    catalogue = load_catalogue(REPO_ROOT / DEFAULT_CATALOGUE)
    codes = {language.code for language in catalogue}

    assert codes <= set(WIKIPEDIA_CODES)
    assert wikipedia_code("yue") == "zh-yue"
    assert wikipedia_code("kpv") == "kv"
    assert wikipedia_code("quy") == "qu"
    assert wikipedia_code("oto") is None
    with pytest.raises(KeyError, match="has no entry"):
        wikipedia_code("xx")


def test_hub_specs_and_paths():
    assert parse_hub_spec("hub:nyu-mll/multi_nli:validation_matched") == (
        "nyu-mll/multi_nli",
        "validation_matched",
    )
    assert hub_export_path("nyu-mll/multi_nli", "train") == "hub/nyu-mll/multi_nli/train.tsv"
    assert wikipedia_export_path("20231101", "yue") == "hub/wikimedia/wikipedia/20231101/yue.txt"
    for spec in ("hub:nyu-mll/multi_nli:test", "hub:glue:train", "nyu-mll/multi_nli:train"):
        with pytest.raises(ValueError, match="not a known hub dataset split; known: hub:nyu-mll"):
            parse_hub_spec(spec)
    assert set(HUB_NLI_DATASETS) == {"nyu-mll/multi_nli"}


def test_cli_exports_and_reports_errors(tmp_path, fake_hub, caplog):
    output = tmp_path / "hub" / "swa.txt"
    assert main(["wikipedia", "--language", "swa", "--max-lines", "2", "--output", str(output)]) == 0
    assert len(output.read_text().splitlines()) == 2
    assert fake_hub[-1]["name"] == "20231101.sw"

    assert main(["wikipedia", "--language", "shp", "--output", str(tmp_path / "shp.txt")]) == 1
    assert "'shp' has no Wikipedia" in caplog.text

    nli_output = tmp_path / "validation_matched.tsv"
    arguments = ["nli", "--dataset", "nyu-mll/multi_nli", "--split", "validation_matched"]
    assert main([*arguments, "--output", str(nli_output)]) == 0
    assert report_path(nli_output).is_file()
