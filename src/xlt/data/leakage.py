"""Test-set leak filter for the masked-LM corpora.

Sentences are compared by a key: the sentence in Unicode NFC with all whitespace removed, so that
the tokenised test sets (`Hello , world .`) match the raw text they were made from
(`Hello, world.`). A corpus sentence leaks when its key

- equals the key of a test sentence ("exact"),
- contains the key of a test sentence of at least `MIN_SUBSTRING_CHARS` characters
  ("contains_test"), as when a text line contains several sentences, one of them from a test set, or
- is at least `MIN_SUBSTRING_CHARS` characters long and occurs inside the key of a test sentence
  ("inside_test"), as when the text was split at an abbreviation inside a test sentence.

The sentences taken from a test file depend on its task:

- UD (CoNLL-U): the `# text =` comment, the words joined by spaces and the surface tokens
  joined by spaces (these differ where multiword tokens are split into words);
- NER (CoNLL): the tokens joined by spaces;
- NLI: every premise and every hypothesis.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from xlt.data.catalogue import Dataset
from xlt.data.ner import iter_ner_conll
from xlt.data.nli import read_nli
from xlt.data.ud import iter_conllu

# Minimum length, in characters without whitespace (about four words in Latin script), of a key
# matched as a part of a longer one. Shorter test sentences ("Yes.", a name) occur inside
# unrelated text, so they are only matched whole.
MIN_SUBSTRING_CHARS = 20

LEAK_KINDS: tuple[str, ...] = ("exact", "contains_test", "inside_test")


def leak_key(text: str) -> str:
    """Return the comparison key of a sentence: Unicode NFC without any whitespace."""
    return "".join(unicodedata.normalize("NFC", text).split())


def test_sentences(dataset: Dataset, path: str | Path) -> Iterator[str]:
    """Yield the sentences of one test file of `dataset` that the leak filter compares against."""
    if dataset.task == "ud":
        for sentence in iter_conllu(path):
            if sentence.text:
                yield sentence.text
            yield " ".join(sentence.words)
            yield " ".join(sentence.tokens)
    elif dataset.task == "ner":
        for sentence in iter_ner_conll(path, dataset.type_map):
            yield " ".join(sentence.tokens)
    elif dataset.task == "nli":
        for example in read_nli(path, dataset.format):
            yield example.premise
            yield example.hypothesis
    else:
        raise ValueError(f"task={dataset.task!r} is not supported; use one of ud, ner, nli")


class LeakFilter:
    """The comparison keys of a set of test files, and a count of keys per file."""

    def __init__(self, min_substring_chars: int = MIN_SUBSTRING_CHARS) -> None:
        if min_substring_chars < 1:
            raise ValueError(
                f"min_substring_chars={min_substring_chars} is invalid; expected at least 1"
            )
        self.min_substring_chars = min_substring_chars
        self.keys: set[str] = set()
        self.files: list[dict[str, object]] = []

    @classmethod
    def from_test_files(cls, files: Iterable[tuple[Dataset, str]], root: str | Path) -> LeakFilter:
        """Collect the keys of `(dataset, path)` test files, with paths relative to `root`."""
        leak_filter = cls()
        for dataset, path in files:
            leak_filter.add(dataset, Path(root) / path, name=path)
        return leak_filter

    def add(self, dataset: Dataset, path: str | Path, name: str | None = None) -> None:
        """Add the sentences of one test file."""
        keys = {key for key in map(leak_key, test_sentences(dataset, path)) if key}
        self.keys.update(keys)
        self.files.append({"dataset": dataset.name, "path": name or str(path), "keys": len(keys)})

    def __len__(self) -> int:
        return len(self.keys)

    def find_leaks(self, sentences: Sequence[str]) -> dict[int, str]:
        """Return {index: kind} for every sentence that leaks, with the kind from `LEAK_KINDS`."""
        width = self.min_substring_chars
        keys = [leak_key(sentence) for sentence in sentences]
        leaks = {index: "exact" for index, key in enumerate(keys) if key in self.keys}

        # Test keys inside a sentence: look up every window of the sentence among the first
        # `width` characters of the long test keys, then compare the whole test key.
        test_by_prefix: dict[str, list[str]] = defaultdict(list)
        for key in self.keys:
            if len(key) >= width:
                test_by_prefix[key[:width]].append(key)
        # Every window of every corpus sentence is looked up, so this loop grows with the corpus.
        progress = tqdm(keys, desc="leak filter", unit="sentence", leave=False, disable=None)
        for index, key in enumerate(progress):
            if index not in leaks and _contains_any(key, test_by_prefix, width):
                leaks[index] = "contains_test"

        # Sentences inside a test key: the same lookup with the roles swapped.
        sentence_by_prefix: dict[str, list[int]] = defaultdict(list)
        for index, key in enumerate(keys):
            if index not in leaks and len(key) >= width:
                sentence_by_prefix[key[:width]].append(index)
        if sentence_by_prefix:
            for test_key in self.keys:
                for start in range(len(test_key) - width + 1):
                    for index in sentence_by_prefix.get(test_key[start : start + width], ()):
                        if index not in leaks and test_key.startswith(keys[index], start):
                            leaks[index] = "inside_test"
        return leaks


def _contains_any(text: str, by_prefix: dict[str, list[str]], width: int) -> bool:
    for start in range(len(text) - width + 1):
        candidates = by_prefix.get(text[start : start + width])
        if candidates and any(text.startswith(candidate, start) for candidate in candidates):
            return True
    return False
