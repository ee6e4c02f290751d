"""Mask overlap of language and task SFTs on hand-made masks: Jaccard indices and random baselines."""

import csv
import io

import pytest
import torch

from sft import SFT, SftConfig, SparseDiff
from xlt.analysis.overlap import (
    CSV_COLUMNS,
    Mask,
    load_mask,
    main,
    mask_overlap,
    overlap_rows,
    render_csv,
)
from xlt.analysis.parameter_groups import layer_group, parameter_type

QUERY = "bert.encoder.layer.0.attention.self.query.weight"
FFN_OUT = "bert.encoder.layer.1.output.dense.weight"
WORDS = "bert.embeddings.word_embeddings.weight"


def mask(label, sizes, indices):
    return Mask(
        label=label,
        path=f"/sfts/{label}",
        indices={name: torch.tensor(sorted(values), dtype=torch.int64).numpy() for name, values in indices.items()},
        sizes=sizes,
    )


SIZES = {QUERY: 16, FFN_OUT: 10, WORDS: 20}
LANGUAGE = mask("mt", SIZES, {QUERY: [0, 1, 2, 3], FFN_OUT: [0, 1], WORDS: [5]})
TASK = mask("pos", SIZES, {QUERY: [2, 3, 4, 5, 6, 7], FFN_OUT: [5], WORDS: []})


def by_group(rows):
    return {(row.grouping, row.group): row for row in rows}


# ------------------------------------------------------------------ parameter groups


@pytest.mark.parametrize(
    ("name", "layer", "kind"),
    [
        ("bert.embeddings.word_embeddings.weight", "embeddings", "word embeddings"),
        ("roberta.embeddings.position_embeddings.weight", "embeddings", "position embeddings"),
        ("bert.embeddings.token_type_embeddings.weight", "embeddings", "token type embeddings"),
        ("bert.embeddings.LayerNorm.weight", "embeddings", "layer norm"),
        ("bert.encoder.layer.0.attention.self.query.weight", "layer 0", "attention query"),
        ("roberta.encoder.layer.11.attention.self.key.bias", "layer 11", "attention key"),
        ("bert.encoder.layer.3.attention.self.value.weight", "layer 3", "attention value"),
        ("roberta.encoder.layer.2.attention.output.dense.weight", "layer 2", "attention output"),
        ("roberta.encoder.layer.2.attention.output.LayerNorm.bias", "layer 2", "layer norm"),
        ("bert.encoder.layer.5.intermediate.dense.weight", "layer 5", "FFN intermediate"),
        ("bert.encoder.layer.5.output.dense.bias", "layer 5", "FFN output"),
        ("bert.encoder.layer.5.output.LayerNorm.weight", "layer 5", "layer norm"),
        ("bert.pooler.dense.weight", "other", "pooler"),
        ("model.layers.4.self_attn.q_proj.weight", "layer 4", "attention query"),
        ("model.layers.4.mlp.down_proj.weight", "layer 4", "FFN output"),
        ("classifier.weight", "other", "other"),
    ],
)
def test_parameter_groups_from_names(name, layer, kind):
    assert layer_group(name) == layer
    assert parameter_type(name) == kind


# ------------------------------------------------------------------ counts


def test_overall_jaccard_of_known_sets():
    row = by_group(overlap_rows(LANGUAGE, TASK))["overall", "all"]
    assert row.language_entries == 7
    assert row.task_entries == 7
    assert row.intersection == 2  # query entries 2 and 3
    assert row.union == 12
    assert row.jaccard == pytest.approx(2 / 12)
    assert row.entries == 46


def test_jaccard_per_layer():
    rows = by_group(overlap_rows(LANGUAGE, TASK))
    layer0 = rows["layer", "layer 0"]
    assert (layer0.intersection, layer0.union) == (2, 8)
    assert layer0.jaccard == pytest.approx(0.25)
    layer1 = rows["layer", "layer 1"]
    assert (layer1.intersection, layer1.union) == (0, 3)
    assert layer1.jaccard == 0.0
    embeddings = rows["layer", "embeddings"]
    assert (embeddings.language_entries, embeddings.task_entries, embeddings.union) == (1, 0, 1)


def test_jaccard_per_type():
    rows = by_group(overlap_rows(LANGUAGE, TASK))
    assert rows["type", "attention query"].jaccard == pytest.approx(2 / 8)
    assert rows["type", "FFN output"].jaccard == 0.0
    assert rows["type", "word embeddings"].jaccard == 0.0
    assert {key[1] for key in rows if key[0] == "type"} == {"attention query", "FFN output", "word embeddings"}


def test_random_mask_baseline():
    rows = by_group(overlap_rows(LANGUAGE, TASK))
    query = rows["type", "attention query"]
    assert query.expected_intersection == pytest.approx(4 * 6 / 16)
    assert query.expected_jaccard == pytest.approx(1.5 / (4 + 6 - 1.5))
    assert query.jaccard_ratio == pytest.approx((2 / 8) / (1.5 / 8.5))
    overall = rows["overall", "all"]
    expected = 4 * 6 / 16 + 2 * 1 / 10 + 1 * 0 / 20
    assert overall.expected_intersection == pytest.approx(expected)
    assert overall.expected_jaccard == pytest.approx(expected / (7 + 7 - expected))


def test_identical_masks_have_jaccard_one():
    row = by_group(overlap_rows(LANGUAGE, LANGUAGE))["overall", "all"]
    assert row.jaccard == 1.0
    assert row.intersection == row.union == 7


def test_empty_group_has_no_jaccard():
    empty = mask("xx", {QUERY: 16}, {QUERY: []})
    row = by_group(overlap_rows(empty, empty))["overall", "all"]
    assert row.union == 0
    assert row.jaccard is None
    assert row.jaccard_ratio is None


def test_tensor_in_one_mask_only():
    language = mask("mt", {QUERY: 16}, {QUERY: [1, 2]})
    task = mask("pos", {FFN_OUT: 10}, {FFN_OUT: [1]})
    row = by_group(overlap_rows(language, task))["overall", "all"]
    assert (row.entries, row.intersection, row.union) == (26, 0, 3)
    assert row.expected_intersection == 0.0


def test_size_mismatch_is_rejected():
    other = mask("pos", {QUERY: 32}, {QUERY: [1]})
    with pytest.raises(ValueError, match="compare SFTs of the same base model"):
        overlap_rows(LANGUAGE, other)


def test_rows_order_tasks_then_languages():
    second = mask("fo", SIZES, {QUERY: [9]})
    rows = mask_overlap([LANGUAGE, second], [TASK])
    pairs = list(dict.fromkeys((row.task_sft, row.language_sft) for row in rows))
    assert pairs == [("pos", "mt"), ("pos", "fo")]
    groupings = [row.grouping for row in rows if row.language_sft == "mt"]
    assert groupings == sorted(groupings, key=["overall", "layer", "type"].index)


def test_csv_has_every_column():
    text = render_csv(overlap_rows(LANGUAGE, TASK))
    records = list(csv.DictReader(io.StringIO(text)))
    assert tuple(records[0]) == CSV_COLUMNS
    overall = next(r for r in records if r["grouping"] == "overall")
    assert overall["jaccard"] == f"{2 / 12:.6f}"
    assert overall["intersection"] == "2"


# ------------------------------------------------------------------ SFT folders


def save_sft(folder, indices, kind, record):
    diffs = {}
    for name, values in indices.items():
        index = torch.tensor(sorted(values), dtype=torch.int64)
        value = torch.ones(len(values))
        diffs[name] = SparseDiff(torch.Size([SIZES[name]]), index, value)
    SFT(diffs=diffs, config=SftConfig(kind=kind, training_arguments=record)).save_pretrained(folder)
    return folder


def test_load_mask_skips_zero_values(tmp_path):
    diff = SparseDiff(torch.Size([16]), torch.tensor([1, 4, 9]), torch.tensor([0.5, 0.0, -1.0]))
    SFT(diffs={QUERY: diff}, config=SftConfig(kind="language", training_arguments={"language": "mt"})).save_pretrained(
        tmp_path
    )
    loaded = load_mask(tmp_path, label_key="language")
    assert loaded.label == "mt"
    assert loaded.indices[QUERY].tolist() == [1, 9]
    assert loaded.sizes[QUERY] == 16


def test_command_writes_table_and_figure(tmp_path):
    language = save_sft(tmp_path / "mt", {QUERY: [0, 1, 2, 3], FFN_OUT: [0, 1]}, "language", {"language": "mt"})
    english = save_sft(tmp_path / "en", {QUERY: [2, 3]}, "language", {"language": "en"})
    task = save_sft(tmp_path / "pos", {QUERY: [2, 3, 4], FFN_OUT: [5]}, "task", {"task": {"task": "pos"}})
    table, figure = tmp_path / "out" / "overlap.csv", tmp_path / "out" / "overlap.png"

    argv = ["--language_sfts", str(language), str(english), "--task_sfts", str(task)]
    assert main([*argv, "--csv", str(table), "--figure", str(figure)]) == 0

    records = list(csv.DictReader(table.open()))
    assert {(r["language_sft"], r["task_sft"]) for r in records} == {("mt", "pos"), ("en", "pos")}
    overall = {r["language_sft"]: r for r in records if r["grouping"] == "overall"}
    assert overall["mt"]["jaccard"] == f"{2 / 8:.6f}"  # 2 shared of 6 + 4 - 2 entries
    assert overall["en"]["jaccard"] == f"{2 / 4:.6f}"
    assert figure.read_bytes().startswith(b"\x89PNG")
    assert not [p for p in table.parent.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_command_rejects_duplicate_labels(tmp_path):
    first = save_sft(tmp_path / "a", {QUERY: [1]}, "language", {"language": "mt"})
    second = save_sft(tmp_path / "b", {QUERY: [2]}, "language", {"language": "mt"})
    task = save_sft(tmp_path / "pos", {QUERY: [1]}, "task", {"task": {"task": "pos"}})
    argv = ["--language_sfts", str(first), str(second), "--task_sfts", str(task), "--csv", str(tmp_path / "o.csv")]
    with pytest.raises(ValueError, match="share the label mt"):
        main(argv)
    assert main([*argv, "--language_sfts_labels", "mt-a", "mt-b"]) == 0
    assert not (tmp_path / "o.png").exists()


def test_command_checks_label_count(tmp_path):
    first = save_sft(tmp_path / "a", {QUERY: [1]}, "language", {"language": "mt"})
    argv = ["--language_sfts", str(first), "--task_sfts", str(first), "--csv", str(tmp_path / "o.csv")]
    with pytest.raises(ValueError, match="gives 2 labels for 1 SFTs"):
        main([*argv, "--task_sfts_labels", "x", "y"])
