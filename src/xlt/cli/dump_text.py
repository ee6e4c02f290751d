"""Write the exact strings a task tokenises, for the vocabulary-trimming step.

Usage: `python -m xlt.cli.dump_text --task TASK --files FILE [FILE ...] --output OUT.txt`

Word-level tasks (pos, dp, ner) write one sentence per line with its words separated by TAB
characters. The trimming step must tokenise those lines with `is_split_into_words=True`, as the
tasks do. The other tasks (mlm, nli) write each text that goes to the tokenizer on its own line
(NLI premises and hypotheses as separate lines). The kind of the output ("words" or "text") is
logged and written to `OUT.txt.json` next to the output, with the input files and line count.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..data.atomic import atomic_open
from ..provenance import describe_file, write_json_atomic
from ..tasks import TASK_NAMES, get_task_class
from ..tasks.sources import AUTO_FORMAT
from .arguments import parse_type_map

logger = logging.getLogger(__name__)


def write_lines_atomic(path: Path, lines) -> int:
    """Write `lines` to `path` atomically and return their count. No line may contain a line break."""
    count = 0
    with atomic_open(path, "w") as handle:
        for line in lines:
            if "\n" in line or "\r" in line:
                raise ValueError(
                    f"line {count + 1} of the output contains a line break and cannot be "
                    f"written one per line: {line[:80]!r}"
                )
            handle.write(line + "\n")
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, choices=TASK_NAMES, help="Task whose input is dumped.")
    parser.add_argument("--files", required=True, nargs="+", help="Data files in the task's format.")
    parser.add_argument("--output", required=True, help="Text file to write.")
    parser.add_argument(
        "--ner_type_map", default=None, help="NER: entity type map as JSON (default: DATE, MISC to O)."
    )
    parser.add_argument("--nli_format", default=AUTO_FORMAT, help="NLI: file format, or auto.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    task_class = get_task_class(args.task)
    reader_options = {"ner_type_map": parse_type_map(args.ner_type_map), "nli_format": args.nli_format}

    def lines():
        for path in args.files:
            yield from task_class.vocabulary_lines(task_class.read(path, **reader_options))

    output = Path(args.output)
    count = write_lines_atomic(output, lines())
    write_json_atomic(
        output.with_name(output.name + ".json"),
        {
            "task": args.task,
            "kind": task_class.vocabulary_line_kind,
            "lines": count,
            "files": [describe_file(path) for path in args.files],
        },
    )
    logger.info("Wrote %d %s lines of task %s to %s", count, task_class.vocabulary_line_kind, args.task, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
