"""Split a corpus into training and held-out lines for masked-LM validation.

`python -m xlt.workflow.split_corpus CORPUS --train TRAIN --dev DEV --every 20 --max-dev 500
[--max-train N --seed S]`

Every `every`-th line (the 1st, the 21st, ...) goes to the held-out file until it has `max_dev`
lines; all other lines are training lines. With `max_train`, a sample of that many training lines
drawn with `seed` is kept, in corpus order. The split depends only on the corpus and these
options, so it is the same on every machine.
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Sequence

from ..data.atomic import atomic_open

logger = logging.getLogger(__name__)


def split_lines(lines: Sequence[str], every: int, max_dev: int) -> tuple[list[str], list[str]]:
    """Return (train, dev): every `every`-th line goes to dev until it holds `max_dev` lines."""
    if every < 2:
        raise ValueError(f"every must be at least 2 (one held-out line per `every` lines), got {every}")
    if max_dev < 1:
        raise ValueError(f"max_dev must be a positive number of lines, got {max_dev}")
    train, dev = [], []
    for index, line in enumerate(lines):
        if index % every == 0 and len(dev) < max_dev:
            dev.append(line)
        else:
            train.append(line)
    return train, dev


def sample_lines(lines: Sequence[str], max_lines: int | None, seed: int) -> list[str]:
    """Return at most `max_lines` of `lines`, drawn with `seed` and kept in their original order."""
    if max_lines is None or len(lines) <= max_lines:
        return list(lines)
    if max_lines < 1:
        raise ValueError(f"max_lines must be a positive number of lines, got {max_lines}")
    kept = sorted(random.Random(seed).sample(range(len(lines)), max_lines))
    return [lines[index] for index in kept]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Split a one-sentence-a-line corpus into train and dev files.")
    parser.add_argument("corpus", help="corpus file, one sentence a line")
    parser.add_argument("--train", required=True, help="training lines to write")
    parser.add_argument("--dev", required=True, help="held-out lines to write")
    parser.add_argument("--every", type=int, default=20, help="hold out one line in this many (default: 20)")
    parser.add_argument("--max-dev", type=int, default=500, help="maximum held-out lines (default: 500)")
    parser.add_argument(
        "--max-train", type=int, default=None,
        help="keep a sample of at most this many training lines (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the training-line sample (default: 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    with open(args.corpus, encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle if line.strip()]
    train, dev = split_lines(lines, args.every, args.max_dev)
    train = sample_lines(train, args.max_train, args.seed)
    if not train or not dev:
        raise SystemExit(
            f"{args.corpus}: {len(lines)} non-empty lines are too few to split into training and "
            f"held-out lines with --every {args.every}"
        )
    for path, part in ((args.train, train), (args.dev, dev)):
        with atomic_open(path) as handle:
            handle.write("".join(line + "\n" for line in part))
    logger.info("%s: %d training and %d held-out lines", args.corpus, len(train), len(dev))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
