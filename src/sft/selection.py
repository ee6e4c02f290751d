"""Selection of the K entries an SFT may change, across all maskable parameters together.

The selection never sorts or concatenates the tensors. A non-negative float32 orders like
its int32 bit pattern, so a radix select over those patterns ("keys") finds the exact K-th
largest score:

1. One pass computes the keys chunk by chunk, keeps their high 16 bits (int16, 2 bytes
   per entry) and counts them in a histogram with torch.bincount. The histogram gives the
   high bits of the threshold.
2. The entries whose high bits equal the threshold's are the candidates. Their keys are
   computed again at those positions only, and a histogram of their low 16 bits gives
   the exact threshold.
3. The masks mark every entry with higher high bits, plus the candidates above the
   threshold, plus as many candidates equal to the threshold as needed for exactly K.

Ties at the threshold go to the earliest entries, in the order of the tensors and then of
their flat row-major indices, so the result is deterministic. Besides the masks, the
extra memory is 2 bytes per entry plus the candidates and per-chunk temporaries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import torch
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

# Key of an entry excluded from selection: below every non-negative score.
_EXCLUDED_KEY = -1
# Entries per chunk: large enough that per-call overhead stays small on a busy machine.
_CHUNK_SIZE = 1 << 22
# Bit pattern of +inf as float32. Larger patterns are NaNs.
_INF_KEY = 0x7F800000
# Random keys stay at or below the +inf pattern, so they never look like NaN scores.
_RANDOM_KEY_HIGH = _INF_KEY + 1
_NUM_HIGH_BINS = 1 << 16


def _chunk_bounds(numel: int) -> Iterator[tuple[int, int]]:
    for start in range(0, numel, _CHUNK_SIZE):
        yield start, min(start + _CHUNK_SIZE, numel)


def _threshold_bin(histogram: torch.Tensor, k: int) -> tuple[int, int]:
    """Return the bin holding the k-th largest key and the number of keys in higher bins."""
    at_or_above = torch.flip(torch.cumsum(torch.flip(histogram, [0]), 0), [0])
    bin_index = int(torch.nonzero(at_or_above >= k)[-1])
    return bin_index, int(at_or_above[bin_index] - histogram[bin_index])


def _progress(iterable, description: str, show_progress: bool):
    # disable=None hides the bar when stderr is not a terminal.
    return tqdm(iterable, desc=description, disable=None if show_progress else True, leave=False)


class _Scratch:
    """Chunk-sized buffers that the passes reuse instead of allocating temporaries per chunk."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.float32 = torch.empty(_CHUNK_SIZE, dtype=torch.float32, device=device)
        self.int32 = torch.empty(_CHUNK_SIZE, dtype=torch.int32, device=device)
        self.boolean = torch.empty(_CHUNK_SIZE, dtype=torch.bool, device=device)


class _KeySource:
    """Int32 keys of one tensor: flat, computed on demand for a chunk or at positions."""

    def __init__(self, numel: int, device: torch.device, exclude: torch.Tensor | None) -> None:
        self.numel = numel
        self.device = device
        self._exclude = None if exclude is None else exclude.reshape(-1).to(device)

    def _write_scores(self, start: int, end: int, out: torch.Tensor) -> None:
        """Write the float32 scores of entries [start, end) into `out`."""
        raise NotImplementedError

    def _scores_at(self, positions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def chunk(self, start: int, end: int, scratch: _Scratch) -> torch.Tensor:
        """Return the keys of entries [start, end), as a view of `scratch.float32`."""
        scores = scratch.float32[: end - start]
        self._write_scores(start, end, scores)
        keys = scores.view(torch.int32)
        if self._exclude is not None:
            keys.masked_fill_(self._exclude[start:end], _EXCLUDED_KEY)
        return keys

    def at(self, positions: torch.Tensor) -> torch.Tensor:
        keys = self._scores_at(positions).view(torch.int32)
        if self._exclude is not None:
            keys = keys.masked_fill(self._exclude[positions], _EXCLUDED_KEY)
        return keys


class _ScoreKeys(_KeySource):
    def __init__(self, score: torch.Tensor, exclude: torch.Tensor | None) -> None:
        super().__init__(score.numel(), score.device, exclude)
        self._flat = score.detach().reshape(-1)

    def _write_scores(self, start: int, end: int, out: torch.Tensor) -> None:
        out.copy_(self._flat[start:end])

    def _scores_at(self, positions: torch.Tensor) -> torch.Tensor:
        return self._flat[positions].to(torch.float32)


class _ChangeKeys(_KeySource):
    def __init__(
        self, current: torch.Tensor, reference: torch.Tensor, exclude: torch.Tensor | None
    ) -> None:
        if current.shape != reference.shape:
            raise ValueError(f"shape mismatch: {tuple(current.shape)} vs {tuple(reference.shape)}")
        super().__init__(current.numel(), current.device, exclude)
        self._current = current.detach().reshape(-1)
        self._reference = reference.detach().to(current.device).reshape(-1)

    def _write_scores(self, start: int, end: int, out: torch.Tensor) -> None:
        if self._current.dtype == torch.float32 and self._reference.dtype == torch.float32:
            torch.sub(self._current[start:end], self._reference[start:end], out=out)
        else:
            out.copy_(self._current[start:end])
            out.sub_(self._reference[start:end].to(torch.float32))
        out.abs_()

    def _scores_at(self, positions: torch.Tensor) -> torch.Tensor:
        change = self._current[positions].to(torch.float32) - self._reference[positions].to(
            torch.float32
        )
        return change.abs_()


class _StoredKeys(_KeySource):
    def __init__(self, keys: torch.Tensor, exclude: torch.Tensor | None) -> None:
        super().__init__(keys.numel(), keys.device, exclude)
        self._flat = keys

    def _write_scores(self, start: int, end: int, out: torch.Tensor) -> None:
        out.view(torch.int32).copy_(self._flat[start:end])

    def _scores_at(self, positions: torch.Tensor) -> torch.Tensor:
        return self._flat[positions].view(torch.float32)


class _HighHistogram:
    """Histogram of the high 16 bits of keys, shifted by one so excluded keys land in bin 0.

    The high bits of small chunks are staged in a buffer and counted together, because one
    bincount call over 65,537 bins costs about as much as counting a few hundred thousand
    keys.
    """

    def __init__(self) -> None:
        self._counts = torch.zeros(_NUM_HIGH_BINS + 1, dtype=torch.int64)
        self._staged: torch.Tensor | None = None
        self._num_staged = 0

    def add(self, high: torch.Tensor) -> None:
        """Count a chunk of high bits (keys shifted right by 16)."""
        if self._staged is not None and self._staged.device != high.device:
            self._flush()
            self._staged = None
        if self._num_staged + high.numel() > _CHUNK_SIZE:
            self._flush()
        if self._staged is None:
            self._staged = torch.empty(_CHUNK_SIZE, dtype=torch.int32, device=high.device)
        staged = self._staged[self._num_staged : self._num_staged + high.numel()]
        torch.add(high, 1, out=staged)
        self._num_staged += high.numel()

    def _flush(self) -> None:
        if self._staged is not None and self._num_staged:
            staged = self._staged[: self._num_staged]
            try:
                self._counts += torch.bincount(staged, minlength=_NUM_HIGH_BINS + 1).cpu()
            except RuntimeError as error:
                raise ValueError(f"scores must be non-negative ({error})") from error
        self._num_staged = 0

    @property
    def counts(self) -> torch.Tensor:
        self._flush()
        return self._counts


def _high_bits_pass(sources: Sequence[_KeySource], show_progress: bool):
    """Pass 1: store the high 16 bits of every key and count them."""
    histogram = _HighHistogram()
    scratch: _Scratch | None = None
    high_bits = []
    for source in _progress(sources, "Selecting entries (1/3)", show_progress):
        if scratch is None or scratch.device != source.device:
            scratch = _Scratch(source.device)
        high = torch.empty(source.numel, dtype=torch.int16, device=source.device)
        for start, end in _chunk_bounds(source.numel):
            chunk_high = scratch.int32[: end - start]
            torch.bitwise_right_shift(source.chunk(start, end, scratch), 16, out=chunk_high)
            high[start:end].copy_(chunk_high)
            histogram.add(chunk_high)
        high_bits.append(high)
    return high_bits, histogram.counts


def _candidates_pass(sources, high_bits, high_bin: int, show_progress: bool):
    """Pass 2: positions and low 16 bits of the keys whose high bits equal `high_bin`."""
    positions, low_bits = [], []
    scratch: _Scratch | None = None
    for source, high in _progress(
        list(zip(sources, high_bits)), "Selecting entries (2/3)", show_progress
    ):
        if scratch is None or scratch.device != source.device:
            scratch = _Scratch(source.device)
        tensor_positions = []
        for start, end in _chunk_bounds(source.numel):
            in_bin = scratch.boolean[: end - start]
            torch.eq(high[start:end], high_bin, out=in_bin)
            found = torch.nonzero(in_bin, as_tuple=True)[0]
            tensor_positions.append(found + start)
        tensor_positions = (
            torch.cat(tensor_positions)
            if tensor_positions
            else high.new_zeros(0, dtype=torch.int64)
        )
        positions.append(tensor_positions)
        low_bits.append(source.at(tensor_positions) & 0xFFFF)
    return positions, low_bits


def _select(sources: Sequence[_KeySource], k: int, show_progress: bool) -> list[torch.Tensor]:
    """Return flat boolean masks marking the k largest keys of `sources` together."""
    high_bits, counts = _high_bits_pass(sources, show_progress)
    if int(counts[(_INF_KEY >> 16) + 2 :].sum()) > 0:
        raise ValueError("scores contain NaN; check the model weights for NaN values")
    available = int(counts[1:].sum())
    if not 0 <= k <= available:
        raise ValueError(f"cannot select {k} entries: only {available} entries are selectable")
    if k == 0:
        return [torch.zeros_like(high, dtype=torch.bool) for high in high_bits]
    high_bin, count_above_high_bin = _threshold_bin(counts[1:], k)

    positions, low_bits = _candidates_pass(sources, high_bits, high_bin, show_progress)
    low_histogram = torch.bincount(
        torch.cat([low.cpu() for low in low_bits]), minlength=_NUM_HIGH_BINS
    )
    low_bin, count_above_low_bin = _threshold_bin(low_histogram, k - count_above_high_bin)
    ties_to_take = k - count_above_high_bin - count_above_low_bin
    logger.debug(
        "Selection threshold %.6g; %d of %d tied entries taken",
        torch.tensor((high_bin << 16) | low_bin, dtype=torch.int32).view(torch.float32).item(),
        ties_to_take,
        int(low_histogram[low_bin]),
    )

    # Pass 3: the masks.
    masks = []
    for high, tensor_positions, low in _progress(
        list(zip(high_bits, positions, low_bits)), "Selecting entries (3/3)", show_progress
    ):
        mask = high > high_bin
        mask[tensor_positions[low > low_bin]] = True
        if ties_to_take > 0:
            tie_positions = tensor_positions[low == low_bin][:ties_to_take]
            mask[tie_positions] = True
            ties_to_take -= tie_positions.numel()
        masks.append(mask)
    return masks


def _check_exclude(exclude, count: int) -> Sequence[torch.Tensor | None]:
    if exclude is None:
        return [None] * count
    if len(exclude) != count:
        raise ValueError(f"got {len(exclude)} exclude masks for {count} tensors")
    return exclude


def top_k_masks(
    scores: Sequence[torch.Tensor],
    k: int,
    exclude: Sequence[torch.Tensor | None] | None = None,
    show_progress: bool = True,
) -> list[torch.Tensor]:
    """Return boolean masks shaped like `scores`, marking the k highest scores overall.

    `scores` are non-negative floating-point tensors, compared as float32 and left
    unchanged. Entries whose `exclude` mask is True are never selected. Exactly k entries
    are marked. Ties at the threshold go to earlier tensors first, then to lower flat
    indices. Raises ValueError when k exceeds the number of selectable entries or a score
    is negative or NaN.
    """
    exclude = _check_exclude(exclude, len(scores))
    sources = [_ScoreKeys(score, excluded) for score, excluded in zip(scores, exclude)]
    masks = _select(sources, k, show_progress)
    return [mask.view(score.shape) for mask, score in zip(masks, scores)]


def largest_change_masks(
    current: Sequence[torch.Tensor],
    reference: Sequence[torch.Tensor],
    k: int,
    exclude: Sequence[torch.Tensor | None] | None = None,
    show_progress: bool = True,
) -> list[torch.Tensor]:
    """Return masks marking the k entries with the largest |current − reference| overall.

    This is the Lottery Ticket selection. The differences are computed chunk by chunk and
    never stored whole. See `top_k_masks` for the tie rule and errors.
    """
    if len(current) != len(reference):
        raise ValueError(
            f"got {len(current)} current tensors but {len(reference)} reference tensors"
        )
    exclude = _check_exclude(exclude, len(current))
    sources = [
        _ChangeKeys(tensor, base, excluded)
        for tensor, base, excluded in zip(current, reference, exclude)
    ]
    with torch.no_grad():
        masks = _select(sources, k, show_progress)
    return [mask.view(tensor.shape) for mask, tensor in zip(masks, current)]


def random_masks(
    shapes: Sequence[torch.Size],
    k: int,
    seed: int,
    exclude: Sequence[torch.Tensor | None] | None = None,
    show_progress: bool = True,
) -> list[torch.Tensor]:
    """Return CPU masks marking k entries drawn uniformly at random from the selectable ones.

    Every entry gets a random key below 2**31 from a CPU generator seeded with `seed`, and
    the k largest keys win, so the result depends only on the seed, the shapes and
    `exclude`. Equal keys are broken by position, which biases the draw only among those
    ties. The keys take 4 bytes per entry while the selection runs.
    """
    exclude = _check_exclude(exclude, len(shapes))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    sources = []
    for shape, excluded in zip(shapes, exclude):
        numel = torch.Size(shape).numel()
        keys = torch.randint(0, _RANDOM_KEY_HIGH, (numel,), generator=generator, dtype=torch.int32)
        sources.append(_StoredKeys(keys, None if excluded is None else excluded.cpu()))
    masks = _select(sources, k, show_progress)
    return [mask.view(shape) for mask, shape in zip(masks, shapes)]
