"""Multi-source data: batches that each come from one source, for multi-source SFT training.

`MultiSourceDataset` joins several datasets, one per source (usually a source language), and
can repeat the examples of small sources (`upsampling`). `MultiSourceBatchSampler` cuts each
source's examples into batches, so that every batch comes from a single source, and orders
the batches randomly for training or in a fixed order for evaluation. `MultiSourceCollator`
collates such a batch with an ordinary collator and stores its source name under
`BATCH_SOURCE_KEY`, where `MultiSourceTrainingMixin` looks for it.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset, Sampler

logger = logging.getLogger(__name__)

# Key of a collated batch that contains the name of the batch's source.
BATCH_SOURCE_KEY = "sft_source"


class SourceExample(NamedTuple):
    """One example of a `MultiSourceDataset` and the name of its source."""

    source: str
    example: Any


def _check_source_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"source names must be non-empty strings, got {name!r}")


class MultiSourceDataset(Dataset):
    """The datasets of several sources, seen as one dataset of `SourceExample`s.

    `sources` maps source names to map-style datasets (with `__len__`); their order is the
    order of evaluation. `upsampling` maps source names to a positive integer factor: one
    epoch shows every example of that source that many times (default 1). The length is the
    number of examples in one epoch, repeats included.

    Indices run through the sources in order, each source taking a block of
    `len(dataset) * factor` indices. Index `start + j` of a source's block is that source's
    example `j % len(dataset)`.
    """

    def __init__(
        self, sources: Mapping[str, Dataset], upsampling: Mapping[str, int] | None = None
    ) -> None:
        if not isinstance(sources, Mapping) or not sources:
            raise ValueError(
                f"sources must be a non-empty mapping of source names to datasets, got {sources!r}"
            )
        upsampling = dict(upsampling or {})
        unknown = sorted(set(upsampling) - set(sources))
        if unknown:
            raise ValueError(
                f"upsampling names sources that are not in sources: {unknown}; "
                f"the sources are {list(sources)}"
            )
        self.sources: dict[str, Dataset] = {}
        self.upsampling: dict[str, int] = {}
        for name, dataset in sources.items():
            _check_source_name(name)
            try:
                size = len(dataset)
            except TypeError:
                raise TypeError(
                    f"source {name!r}: the dataset must have a length (a map-style dataset), got "
                    f"{type(dataset).__name__}"
                ) from None
            if size == 0:
                raise ValueError(f"source {name!r} has no examples; leave it out of sources")
            factor = upsampling.get(name, 1)
            if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
                raise ValueError(f"upsampling[{name!r}] must be a positive integer, got {factor!r}")
            self.sources[name] = dataset
            self.upsampling[name] = factor

        self._names = list(self.sources)
        self._sizes = [len(self.sources[name]) for name in self._names]
        self._starts = [0]
        for name, size in zip(self._names, self._sizes):
            self._starts.append(self._starts[-1] + size * self.upsampling[name])

    @property
    def source_names(self) -> list[str]:
        """Names of the sources, in order."""
        return list(self._names)

    def source_size(self, name: str) -> int:
        """Return the number of distinct examples of source `name`."""
        return self._sizes[self._position(name)]

    def source_range(self, name: str) -> range:
        """Return the block of indices of source `name`, repeats included."""
        position = self._position(name)
        return range(self._starts[position], self._starts[position + 1])

    def _position(self, name: str) -> int:
        try:
            return self._names.index(name)
        except ValueError:
            raise KeyError(f"unknown source {name!r}; the sources are {self._names}") from None

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index: int) -> SourceExample:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"index must be an integer, got {index!r}")
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} examples")
        position = bisect.bisect_right(self._starts, index) - 1
        name = self._names[position]
        offset = (index - self._starts[position]) % self._sizes[position]
        return SourceExample(name, self.sources[name][offset])

    def __repr__(self) -> str:
        parts = []
        for name, size in zip(self._names, self._sizes):
            factor = self.upsampling[name]
            parts.append(f"{name}: {size}" + (f" x{factor}" if factor > 1 else ""))
        return f"MultiSourceDataset({', '.join(parts)})"


class MultiSourceBatchSampler(Sampler[list[int]]):
    """Batches of indices of a `MultiSourceDataset`, each batch from a single source.

    Each source's block of indices, repeats included, is cut into batches of `batch_size`.
    Only the last batch of a source may be smaller, and `drop_last` drops it. With `shuffle`,
    the examples of each repetition of a source are permuted, and then the batches of all
    sources are permuted together, so that sources are interleaved. Both permutations come
    from a generator seeded with `seed + epoch`. Without `shuffle` the order is fixed: the
    sources in order, each source's examples in order.

    The epoch counts the completed iterations unless `set_epoch` sets it. Every process of a
    distributed run therefore draws the same order, and accelerate's `BatchSamplerShard`
    deals whole batches out to the processes.

    The `batch_size` attribute is None on purpose. Batches differ in size, and with None,
    accelerate (1.x) evens out the number of batches per process by repeating whole batches,
    never by moving indices from one batch to another. The size limit is `max_batch_size`.
    """

    def __init__(
        self,
        dataset: MultiSourceDataset,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not isinstance(dataset, MultiSourceDataset):
            raise TypeError(f"dataset must be a MultiSourceDataset, got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        self.dataset = dataset
        self.max_batch_size = batch_size
        self.batch_size = None
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch whose order the next iteration draws."""
        self.epoch = int(epoch)

    def _num_batches(self, num_indices: int) -> int:
        if self.drop_last:
            return num_indices // self.max_batch_size
        return math.ceil(num_indices / self.max_batch_size)

    def __len__(self) -> int:
        return sum(
            self._num_batches(len(self.dataset.source_range(name)))
            for name in self.dataset.source_names
        )

    def _source_indices(self, name: str, generator: torch.Generator | None) -> torch.Tensor:
        block = self.dataset.source_range(name)
        size = self.dataset.source_size(name)
        if generator is None:
            return torch.arange(block.start, block.stop)
        repetitions = [
            block.start + repetition * size + torch.randperm(size, generator=generator)
            for repetition in range(self.dataset.upsampling[name])
        ]
        return torch.cat(repetitions)

    def batches(self, epoch: int) -> list[list[int]]:
        """Return the batches of `epoch` in order (the same for every call)."""
        generator = None
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + epoch)
        batches: list[list[int]] = []
        for name in self.dataset.source_names:
            indices = self._source_indices(name, generator)
            source_batches = list(torch.split(indices, self.max_batch_size))
            if self.drop_last and len(source_batches[-1]) < self.max_batch_size:
                source_batches.pop()
            batches.extend(batch.tolist() for batch in source_batches)
        if generator is not None:
            order = torch.randperm(len(batches), generator=generator).tolist()
            batches = [batches[position] for position in order]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        epoch = self.epoch
        self.epoch += 1
        yield from self.batches(epoch)


class MultiSourceCollator:
    """Collates a single-source batch of `SourceExample`s and adds its source name.

    `collate_fn` (default `transformers.default_data_collator`) collates the examples and
    must return a mutable mapping, to which the source name is added under
    `BATCH_SOURCE_KEY`. A batch that mixes sources raises ValueError.
    """

    def __init__(self, collate_fn: Callable[[list[Any]], Any] | None = None) -> None:
        if collate_fn is None:
            from transformers import default_data_collator

            collate_fn = default_data_collator
        self.collate_fn = collate_fn

    def __call__(self, examples: Sequence[SourceExample]) -> MutableMapping[str, Any]:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        if not all(isinstance(example, SourceExample) for example in examples):
            raise TypeError(
                "MultiSourceCollator collates SourceExample items of a MultiSourceDataset, got "
                f"{type(examples[0]).__name__}"
            )
        sources = sorted({example.source for example in examples})
        if len(sources) != 1:
            raise ValueError(
                f"a multi-source batch must come from one source, got examples of {sources}; "
                "batch a MultiSourceDataset with MultiSourceBatchSampler"
            )
        batch = self.collate_fn([example.example for example in examples])
        if not isinstance(batch, MutableMapping):
            raise TypeError(
                "the collator of a multi-source batch must return a mutable mapping (a dict of "
                f"model inputs), got {type(batch).__name__}"
            )
        if BATCH_SOURCE_KEY in batch:
            raise ValueError(
                f"the collated batch already has a {BATCH_SOURCE_KEY!r} entry; rename that input"
            )
        batch[BATCH_SOURCE_KEY] = sources[0]
        return batch
