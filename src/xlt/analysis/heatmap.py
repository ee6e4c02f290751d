"""Heat map of mask overlaps: one row of panels per task SFT, language SFTs as rows.

Each task SFT gets two panels side by side: Jaccard indices per layer (plus the whole model in
the last column) and per parameter type. All panels share one colour scale. Cells show the index
and, below it, the ratio to the index expected of random masks of the same sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..workflow.figures import save_figure
from .overlap import OVERALL_GROUP, OverlapRow
from .parameter_groups import layer_sort_key, type_sort_key

# Panels with more cells than this show colours only, because the labels would overlap.
MAX_ANNOTATED_CELLS = 300


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _columns(rows: Sequence[OverlapRow], grouping: str) -> list[str]:
    groups = {row.group for row in rows if row.grouping == grouping}
    if grouping == "layer":
        return sorted(groups, key=layer_sort_key) + [OVERALL_GROUP]
    return sorted(groups, key=type_sort_key)


def _lookup(rows: Sequence[OverlapRow], grouping: str) -> dict[tuple[str, str, str], OverlapRow]:
    """(task SFT, language SFT, group) -> row; the layer panel also shows the overall row."""
    groupings = {grouping, "overall"} if grouping == "layer" else {grouping}
    return {(row.task_sft, row.language_sft, row.group): row for row in rows if row.grouping in groupings}


def draw_overlap_heatmap(rows: Sequence[OverlapRow], path: str) -> None:
    """Draw the heat map of `rows` (from `mask_overlap`) and write it to `path` as PNG."""
    if not rows:
        raise ValueError("no overlap rows to draw; give at least one language SFT and one task SFT")
    plt = _pyplot()
    tasks = list(dict.fromkeys(row.task_sft for row in rows))
    languages = list(dict.fromkeys(row.language_sft for row in rows))
    panels = [("layer", "per layer"), ("type", "per parameter type")]
    columns = {grouping: _columns(rows, grouping) for grouping, _ in panels}
    maximum = max((row.jaccard for row in rows if row.jaccard is not None), default=0.0) or 1.0

    width_ratios = [len(columns[grouping]) for grouping, _ in panels]
    figure, axes = plt.subplots(
        len(tasks), len(panels), squeeze=False, gridspec_kw={"width_ratios": width_ratios}, layout="constrained",
        figsize=(1.0 + 0.75 * sum(width_ratios), 1.2 + len(tasks) * (0.9 + 0.4 * len(languages))),
    )
    image = None
    for task_index, task in enumerate(tasks):
        for panel_index, (grouping, title) in enumerate(panels):
            axis = axes[task_index, panel_index]
            image = _draw_panel(axis, rows, grouping, task, languages, columns[grouping], maximum)
            axis.set_title(f"task SFT {task}: {title}", fontsize=9)
            # Every panel of a column has the same columns, so only the bottom row names them.
            if task_index < len(tasks) - 1:
                axis.tick_params(labelbottom=False)
            if panel_index == 0:
                axis.set_ylabel("language SFT")
    figure.colorbar(image, ax=axes, shrink=0.8, label="Jaccard index of the masks")
    figure.suptitle("Mask overlap of language and task SFTs (cell: Jaccard index, ×ratio to random masks)", fontsize=10)
    save_figure(figure, path)
    plt.close(figure)


def _draw_panel(axis, rows, grouping, task, languages, columns, maximum):
    import numpy as np

    lookup = _lookup(rows, grouping)
    values = np.full((len(languages), len(columns)), np.nan)
    for i, language in enumerate(languages):
        for j, group in enumerate(columns):
            row = lookup.get((task, language, group))
            if row is not None and row.jaccard is not None:
                values[i, j] = row.jaccard
    image = axis.imshow(values, cmap="viridis", vmin=0.0, vmax=maximum, aspect="auto")
    axis.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(languages)), languages, fontsize=8)

    if values.size <= MAX_ANNOTATED_CELLS:
        for i, language in enumerate(languages):
            for j, group in enumerate(columns):
                row = lookup.get((task, language, group))
                if row is None or row.jaccard is None:
                    continue
                text = f"{row.jaccard:.2f}"
                if row.jaccard_ratio is not None:
                    text += f"\n×{row.jaccard_ratio:.1f}"
                colour = "black" if row.jaccard > 0.6 * maximum else "white"
                axis.text(j, i, text, ha="center", va="center", fontsize=6, color=colour)
    return image
