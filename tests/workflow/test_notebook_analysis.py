"""The helpers of the analysis notebook, on a results folder written by the workflow's table code."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from synthetic_results import SYNTHETIC_EXPERIMENT

from xlt.analysis import results as xr


@pytest.fixture
def plan(synthetic_results):
    return xr.load_plan(synthetic_results)


@pytest.fixture
def scores(synthetic_results, plan):
    return xr.load_scores(synthetic_results, plan)


def test_missing_experiment_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"configs/absent\.yaml") as error:
        xr.experiment_folder(tmp_path, "absent")
    assert str(tmp_path / "absent" / "plan.json") in str(error.value)


def test_experiment_folder_found(synthetic_results):
    assert xr.experiment_folder(synthetic_results.parent, SYNTHETIC_EXPERIMENT) == synthetic_results


def test_missing_table_reads_as_none(synthetic_results):
    assert xr.read_task_table(synthetic_results, "nli") is None


def test_long_scores_per_language(scores):
    row = scores[(scores["method"] == "lt_sft") & (scores["language"] == "mt")].iloc[0]

    assert list(scores.columns) == list(xr.SCORE_COLUMNS)
    # Seeds 1 and 2 score 60% and 62%.
    assert row["mean"] == pytest.approx(61.0)
    assert row["sd"] == pytest.approx(1.41, abs=0.01)
    assert row["seeds"] == 2
    assert math.isnan(scores[(scores["method"] == "madx") & (scores["language"] == "mt")].iloc[0]["sd"])
    # The reference row (Ansell et al., 2022) has no values here, and the average is no language.
    assert "paper" not in set(scores["method"])
    assert set(scores["language"]) == {"mt", "fo", "hau", "yor"}


def test_wide_table_keeps_table_order(scores):
    wide = xr.wide_table(scores, "pos", "accuracy")

    assert list(wide.index) == ["LT-SFT", "MAD-X", "LT-SFT, task K = 2%", "LT-SFT, task K = 20%"]
    assert list(wide.columns) == ["mt", "fo", "avg"]
    assert wide.loc["MAD-X", "avg"] == pytest.approx((55.0 + 74.0) / 2)


def test_comparison_counts_wins_and_ties(scores):
    pos = xr.compare(scores, "pos", "accuracy", "LT-SFT", "MAD-X")
    ner = xr.compare(scores, "ner", "f1", "LT-SFT", "MAD-X")

    assert dict(pos.differences) == pytest.approx({"mt": 6.0, "fo": -3.0})
    assert (pos.wins, pos.losses) == (1, 1)
    assert pos.mean_difference == pytest.approx(1.5)
    # yor: 30% and 32% over two seeds against 30%: one point higher.
    assert dict(ner.differences) == pytest.approx({"hau": 6.0, "yor": 1.0})
    assert (ner.wins, ner.losses) == (2, 0)


def test_comparison_sentence_states_numbers(scores):
    sentence = xr.compare(scores, "pos", "accuracy", "LT-SFT", "MAD-X").describe()

    assert sentence == (
        "POS accuracy: LT-SFT is higher than MAD-X on 1 of 2 targets, +1.5 points on average "
        "(mt +6.0, fo -3.0)."
    )


def test_comparison_reports_ties():
    scores = pd.DataFrame.from_records(
        [
            ("pos", "a", "A", "accuracy", "mt", 50.0, float("nan"), 1),
            ("pos", "b", "B", "accuracy", "mt", 50.01, float("nan"), 1),
        ],
        columns=list(xr.SCORE_COLUMNS),
    )
    comparison = xr.compare(scores, "pos", "accuracy", "A", "B")

    assert (comparison.wins, comparison.losses) == (0, 0)
    assert "on 0 of 1 targets (tied on 1)" in comparison.describe()


def test_comparison_without_shared_targets(scores):
    assert xr.compare(scores, "ner", "f1", "LT-SFT", "LT-SFT, task K = 2%") is None


def test_describe_task_leaves_out_sweep(scores, plan):
    sentences = xr.describe_task(scores, plan, "pos", "lt_sft")

    assert len(sentences) == 1
    assert sentences[0].startswith("POS accuracy: LT-SFT is higher than MAD-X")


def test_describe_task_rejects_unknown_method(scores, plan):
    with pytest.raises(KeyError, match="lt_sft, madx"):
        xr.describe_task(scores, plan, "pos", "missing")


def test_describe_best_per_target(scores):
    pos = scores[(scores["task"] == "pos") & (scores["metric"] == "accuracy")]

    assert xr.describe_best(pos, "pos", "accuracy") == (
        "POS accuracy, best method per target: mt: LT-SFT (61.0); fo: MAD-X (74.0)."
    )


def test_sweep_points_and_sentence(scores, plan):
    sweep = xr.sweep_scores(scores, plan)

    assert list(sweep["k_percent"]) == [2.0, 20.0, 2.0, 20.0]
    assert list(sweep["language"]) == ["fo", "fo", "mt", "mt"]
    assert xr.describe_sweep(sweep) == [
        "POS accuracy, fo: best at K = 20% (66.0); from K = 2% to 20% the score moves by +14.0 points over 2 sizes.",
        "POS accuracy, mt: best at K = 20% (58.0); from K = 2% to 20% the score moves by +8.0 points over 2 sizes.",
    ]


def test_overlap_matrices(synthetic_results):
    overlap = xr.read_mask_overlap(synthetic_results)
    overall = xr.overlap_matrix(overlap)
    layers = xr.layer_ratios(overlap)

    assert list(overall.index) == ["mt", "fo"]
    assert list(overall.columns) == ["pos", "ner"]
    assert ((overall > 0) & (overall < 1)).all().all()
    assert list(layers.index) == ["pos", "ner"]
    assert list(layers.columns) == ["embeddings", "layer 0", "layer 1"]
    expected = overlap[(overlap["grouping"] == "layer") & (overlap["task_sft"] == "pos") & (overlap["group"] == "layer 0")]
    assert layers.loc["pos", "layer 0"] == pytest.approx(expected["jaccard_ratio"].mean())


def test_describe_overlap_numbers(synthetic_results):
    overlap = xr.read_mask_overlap(synthetic_results)
    overall = overlap[overlap["grouping"] == "overall"]
    sentences = xr.describe_overlap(overlap)

    assert sentences[0].startswith("Over 4 pairs of a language SFT and a task SFT")
    assert f"{overall['jaccard'].max():.3f}" in sentences[0]
    assert f"averages {overall['jaccard_ratio'].mean():.2f}" in sentences[1]
    assert sentences[2].startswith("Mean ratio to random masks per layer: embeddings ")
