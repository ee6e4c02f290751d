"""A small results folder in the workflow's formats, written without running the workflow.

Two tasks, four methods (two of them a sparsity sweep) and fixed scores, so that tests can check
the numbers that the analysis derives from them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SYNTHETIC_TARGETS = {"pos": ["mt", "fo"], "ner": ["hau", "yor"]}
# Method name -> (label, seeds, sweep proportion, tasks).
SYNTHETIC_METHODS = {
    "lt_sft": ("LT-SFT", [1, 2], None, ["pos", "ner"]),
    "madx": ("MAD-X", [1], None, ["pos", "ner"]),
    "lt_sft_k2pct": ("LT-SFT, task K = 2%", [1], 0.02, ["pos"]),
    "lt_sft_k20pct": ("LT-SFT, task K = 20%", [1], 0.2, ["pos"]),
}
# (task, method, language) -> score of seed 1. Seed 2 scores 0.02 (two points) more.
SYNTHETIC_SCORES = {
    ("pos", "lt_sft", "mt"): 0.60, ("pos", "lt_sft", "fo"): 0.70,
    ("pos", "madx", "mt"): 0.55, ("pos", "madx", "fo"): 0.74,
    ("pos", "lt_sft_k2pct", "mt"): 0.50, ("pos", "lt_sft_k2pct", "fo"): 0.52,
    ("pos", "lt_sft_k20pct", "mt"): 0.58, ("pos", "lt_sft_k20pct", "fo"): 0.66,
    ("ner", "lt_sft", "hau"): 0.40, ("ner", "lt_sft", "yor"): 0.30,
    ("ner", "madx", "hau"): 0.35, ("ner", "madx", "yor"): 0.30,
}
SYNTHETIC_EXPERIMENT = "synthetic"


def synthetic_plan() -> dict:
    """A plan in the layout of the workflow's plan.json, for two tasks and four methods."""
    methods = []
    for name, (label, seeds, proportion, tasks) in SYNTHETIC_METHODS.items():
        methods.append(
            {
                "name": name,
                "label": label,
                "seeds": seeds,
                "sweep_proportion": proportion,
                "tasks": tasks,
                "targets": {task: SYNTHETIC_TARGETS[task] for task in tasks},
                "note": None,
                "compose": True,
                "language_variant": "lt_sft",
                "task_variant": "lt_sft",
            }
        )
    return {
        "experiment": SYNTHETIC_EXPERIMENT,
        "methods": methods,
        "reference": None,
        "seeds": [1, 2],
        "source_language": "en",
        "tasks": {
            task: {"base_model": "tiny", "targets": targets, "test_datasets": {}}
            for task, targets in SYNTHETIC_TARGETS.items()
        },
        "without_language_module": [],
    }


def synthetic_masks():
    """Two language and two task masks over the tensors of a 2-layer BERT, with fixed seeds."""
    from xlt.analysis.overlap import Mask

    sizes = {
        "bert.embeddings.word_embeddings.weight": 2000,
        "bert.encoder.layer.0.attention.self.query.weight": 400,
        "bert.encoder.layer.1.intermediate.dense.weight": 800,
    }

    def mask(label: str, seed: int, share: float) -> Mask:
        generator = np.random.default_rng(seed)
        indices = {
            name: np.sort(generator.choice(size, int(size * share), replace=False)) for name, size in sizes.items()
        }
        return Mask(label=label, path=f"sfts/{label}", indices=indices, sizes=sizes)

    return [mask("mt", 1, 0.05), mask("fo", 2, 0.05)], [mask("pos", 3, 0.1), mask("ner", 4, 0.1)]


def write_synthetic_results(results_dir: Path) -> Path:
    """Write plan.json, the task tables and the mask-overlap table of a synthetic experiment.

    The files are written by the workflow's own table and overlap code, from fixed scores and
    random masks, so they have the workflow's formats. Returns the experiment's folder.
    """
    from xlt.analysis.overlap import mask_overlap
    from xlt.analysis.overlap import render_csv as render_overlap_csv
    from xlt.workflow.tables import Score, build_rows, render_csv, render_markdown

    folder = results_dir / SYNTHETIC_EXPERIMENT
    (folder / "tables").mkdir(parents=True)
    plan = synthetic_plan()
    (folder / "plan.json").write_text(json.dumps(plan, indent=2), encoding="utf-8")

    scores = []
    for (task, method, language), value in SYNTHETIC_SCORES.items():
        metric = "accuracy" if task == "pos" else "f1"
        for seed in SYNTHETIC_METHODS[method][1]:
            scores.append(Score(task, method, language, seed, {metric: value + 0.02 * (seed - 1)}))
    for task in SYNTHETIC_TARGETS:
        rows = build_rows(plan, task, scores, reference=[])
        (folder / "tables" / f"{task}.csv").write_text(render_csv(plan, task, rows), encoding="utf-8")
        (folder / "tables" / f"{task}.md").write_text(render_markdown(plan, task, rows), encoding="utf-8")

    language_masks, task_masks = synthetic_masks()
    overlap = render_overlap_csv(mask_overlap(language_masks, task_masks))
    (folder / "tables" / "mask_overlap.csv").write_text(overlap, encoding="utf-8")
    return folder
