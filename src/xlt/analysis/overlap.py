"""Overlap of the masks of language SFTs and task SFTs: Jaccard indices per layer, type and overall.

    python -m xlt.analysis.overlap --language_sfts SFT_DIR ... --task_sfts SFT_DIR ... \\
        --csv mask_overlap.csv --figure mask_overlap.png

The mask of an SFT is the set of entries whose stored difference is nonzero. For every pair of a
language SFT and a task SFT, the intersection and union of their masks are counted per parameter
tensor and summed per layer, per parameter type (see `xlt.analysis.parameter_groups`) and over the
whole model, giving the Jaccard index |A ∩ B| / |A ∪ B| of each group.

A Jaccard index is hard to judge on its own, because it grows with the density of the masks. So
each row also gives the overlap expected of random masks of the same sizes: two independent
uniformly random subsets of a tensor's n entries, of sizes a and b, share a·b/n entries on
average. Summing that over the tensors of a group gives the expected intersection E, and
E / (|A| + |B| − E) the corresponding Jaccard index. `jaccard_ratio` divides the observed index by
it: above 1, the masks overlap more than chance.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np

from sft import SFT

from ..data.atomic import atomic_write_text
from .parameter_groups import layer_group, layer_sort_key, parameter_type, type_sort_key

logger = logging.getLogger(__name__)

# Values of the `grouping` column, in output order.
GROUPINGS: tuple[str, ...] = ("overall", "layer", "type")
OVERALL_GROUP = "all"


@dataclass(frozen=True)
class Mask:
    """The nonzero entries of an SFT's diffs: per parameter, sorted flat indices and the tensor size."""

    label: str
    path: str
    indices: Mapping[str, np.ndarray]
    sizes: Mapping[str, int]

    @property
    def num_entries(self) -> int:
        return sum(len(indices) for indices in self.indices.values())


def load_mask(path: str | Path, label: str | None = None, label_key: str = "language") -> Mask:
    """Read the mask of the SFT at `path`: the entries whose stored difference is not zero.

    Without `label`, the mask is labelled with what the SFT config records under `label_key`
    ("language", or "task" for the task name), or with the path for SFTs not written by `xlt-train`.
    """
    sft = SFT.from_pretrained(str(path))
    indices, sizes = {}, {}
    for name, diff in sft.diffs.items():
        nonzero = diff.values != 0
        indices[name] = diff.indices[nonzero].cpu().numpy()
        sizes[name] = diff.numel
    mask = Mask(label=label or recorded_label(sft, label_key) or str(path), path=str(path), indices=indices, sizes=sizes)
    logger.info("Read the mask of %s (%s): %d entries in %d tensors", mask.label, path, mask.num_entries, len(sizes))
    return mask


def recorded_label(sft: SFT, key: str) -> str | None:
    """Return the language (key "language") or task (key "task") that an SFT config records."""
    value = sft.config.training_arguments.get(key) if sft.config is not None else None
    if isinstance(value, Mapping):
        value = value.get("task")
    return str(value) if value else None


@dataclass(frozen=True)
class OverlapRow:
    """Mask overlap of one language SFT and one task SFT within one group of parameters."""

    language_sft: str
    task_sft: str
    grouping: str
    group: str
    # Entries of the tensors in the group that at least one of the two SFTs has a diff for.
    entries: int
    language_entries: int
    task_entries: int
    intersection: int
    union: int
    jaccard: float | None
    expected_intersection: float
    expected_jaccard: float | None
    jaccard_ratio: float | None


CSV_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(OverlapRow))


@dataclass
class _Counts:
    entries: int = 0
    language_entries: int = 0
    task_entries: int = 0
    intersection: int = 0
    expected_intersection: float = 0.0

    def add(self, entries: int, language: int, task: int, intersection: int) -> None:
        self.entries += entries
        self.language_entries += language
        self.task_entries += task
        self.intersection += intersection
        self.expected_intersection += language * task / entries if entries else 0.0


def tensor_overlaps(language: Mask, task: Mask) -> Iterable[tuple[str, int, int, int, int]]:
    """Yield (parameter, entries, |A|, |B|, |A ∩ B|) for every tensor of either mask.

    Raises ValueError when the two SFTs give one parameter different sizes, because their masks
    then index different tensors (SFTs of different base models).
    """
    empty = np.empty(0, dtype=np.int64)
    for name in sorted(set(language.sizes) | set(task.sizes)):
        sizes = {mask.sizes[name] for mask in (language, task) if name in mask.sizes}
        if len(sizes) > 1:
            raise ValueError(
                f"parameter {name} has {language.sizes[name]} entries in {language.path} but "
                f"{task.sizes[name]} in {task.path}; compare SFTs of the same base model"
            )
        a = language.indices.get(name, empty)
        b = task.indices.get(name, empty)
        intersection = len(np.intersect1d(a, b, assume_unique=True))
        yield name, sizes.pop(), len(a), len(b), intersection


def overlap_rows(language: Mask, task: Mask) -> list[OverlapRow]:
    """Count the overlap of two masks overall, per layer and per parameter type."""
    counts: dict[tuple[str, str], _Counts] = defaultdict(_Counts)
    for name, entries, a, b, intersection in tensor_overlaps(language, task):
        for key in (("overall", OVERALL_GROUP), ("layer", layer_group(name)), ("type", parameter_type(name))):
            counts[key].add(entries, a, b, intersection)

    def order(key: tuple[str, str]) -> tuple:
        grouping, group = key
        within = layer_sort_key(group) if grouping == "layer" else (type_sort_key(group),)
        return (GROUPINGS.index(grouping), within)

    return [_row(language.label, task.label, key, counts[key]) for key in sorted(counts, key=order)]


def _row(language: str, task: str, key: tuple[str, str], counts: _Counts) -> OverlapRow:
    union = counts.language_entries + counts.task_entries - counts.intersection
    expected_union = counts.language_entries + counts.task_entries - counts.expected_intersection
    jaccard = counts.intersection / union if union else None
    expected_jaccard = counts.expected_intersection / expected_union if expected_union else None
    ratio = jaccard / expected_jaccard if jaccard is not None and expected_jaccard else None
    return OverlapRow(
        language_sft=language,
        task_sft=task,
        grouping=key[0],
        group=key[1],
        entries=counts.entries,
        language_entries=counts.language_entries,
        task_entries=counts.task_entries,
        intersection=counts.intersection,
        union=union,
        jaccard=jaccard,
        expected_intersection=counts.expected_intersection,
        expected_jaccard=expected_jaccard,
        jaccard_ratio=ratio,
    )


def mask_overlap(language_masks: Sequence[Mask], task_masks: Sequence[Mask]) -> list[OverlapRow]:
    """Return the rows of every (task SFT, language SFT) pair, task SFTs outermost."""
    rows = []
    for task in task_masks:
        for language in language_masks:
            rows.extend(overlap_rows(language, task))
    return rows


def render_csv(rows: Sequence[OverlapRow]) -> str:
    """Render rows as CSV with `CSV_COLUMNS`, floats to 6 decimals and empty cells for undefined values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(_format_cell(value) for value in astuple(row))
    return out.getvalue()


def _format_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return value


def load_masks(paths: Sequence[str], labels: Sequence[str] | None, label_key: str, option: str) -> list[Mask]:
    """Read the masks of `paths`, labelled by `labels` or by their configs, rejecting duplicate labels."""
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"--{option}_labels gives {len(labels)} labels for {len(paths)} SFTs; give one per SFT")
    masks = [
        load_mask(path, labels[index] if labels is not None else None, label_key)
        for index, path in enumerate(paths)
    ]
    resolved = [mask.label for mask in masks]
    duplicates = sorted({label for label in resolved if resolved.count(label) > 1})
    if duplicates:
        raise ValueError(
            f"several --{option} share the label {', '.join(duplicates)}; name them with --{option}_labels"
        )
    return masks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Jaccard overlap of language and task SFT masks.")
    parser.add_argument("--language_sfts", nargs="+", required=True, help="language SFT folders (rows)")
    parser.add_argument("--task_sfts", nargs="+", required=True, help="task SFT folders (one panel each)")
    parser.add_argument(
        "--language_sfts_labels", nargs="+",
        help="labels of the language SFTs; default: the language their configs record",
    )
    parser.add_argument(
        "--task_sfts_labels", nargs="+", help="labels of the task SFTs; default: the task their configs record"
    )
    parser.add_argument("--csv", required=True, help="CSV table to write")
    parser.add_argument("--figure", help="heat-map PNG to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    language_masks = load_masks(args.language_sfts, args.language_sfts_labels, "language", "language_sfts")
    task_masks = load_masks(args.task_sfts, args.task_sfts_labels, "task", "task_sfts")

    rows = mask_overlap(language_masks, task_masks)
    atomic_write_text(args.csv, render_csv(rows))
    logger.info("Wrote %s (%d rows)", args.csv, len(rows))
    if args.figure:
        from .heatmap import draw_overlap_heatmap

        draw_overlap_heatmap(rows, args.figure)
        logger.info("Wrote %s", args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
