"""The per-language figure gives each method one colour in every panel and lists all of them."""

from types import SimpleNamespace

import pytest

pytest.importorskip("matplotlib")

from xlt.workflow.figures import per_language_figure  # noqa: E402


def _method(name, tasks):
    return {"name": name, "label": name.upper(), "tasks": tasks, "sweep_proportion": None}


def test_method_colour_across_panels():
    plan = {
        "experiment": "unit",
        "tasks": {"pos": {"targets": ["mt"]}, "ner": {"targets": ["hau"]}},
        "methods": [_method("lt_sft", ["pos", "ner"]), _method("multi", ["pos"]), _method("madx", ["pos", "ner"])],
    }
    scores = [
        SimpleNamespace(task=task, method=method, language=language, values={metric: 0.5})
        for task, language, metric in [("pos", "mt", "accuracy"), ("ner", "hau", "f1")]
        for method in (["lt_sft", "multi", "madx"] if task == "pos" else ["lt_sft", "madx"])
    ]
    figure = per_language_figure(plan, scores)
    colours = {}
    for axis in figure.axes:
        for container in axis.containers:
            label = container.get_label()
            if hasattr(container, "patches") and container.patches:
                colours.setdefault(label, set()).add(container.patches[0].get_facecolor())
    assert len(colours["MADX"]) == 1
    assert len(colours["LT_SFT"]) == 1
    assert colours["MADX"] != colours["MULTI"]
    legend_labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend_labels == ["LT_SFT", "MULTI", "MADX"]
