"""Selection of the K entries an SFT may change, across all maskable parameters together.

The selection never sorts or concatenates the tensors. A non-negative float32 orders like
its int32 bit pattern, so a radix select over those patterns ("keys") finds the exact K-th
largest score. It takes two histogram passes with torch.bincount, over the high and then
the low 16 bits, one tensor at a time. A third pass builds the boolean masks.
Ties at the threshold go to the earliest entries, in the order of the tensors and then
of their flat row-major indices, so the result is deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

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


def _chunk_bounds(numel: int):
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


class _HighHistogram:
    """Histogram of the high 16 bits of keys, shifted by one so excluded keys land in bin 0.

    The high bits of small chunks are staged in a buffer and counted together, because one
    bincount call over 65,537 bins costs about as much as counting a few hundred thousand
    keys.
    """

    def __init__(self) -> None:
        self._counts = torch.zeros((1 << 16) + 1, dtype=torch.int64)
        self._staged: torch.Tensor | None = None
        self._num_staged = 0

    def add(self, key_chunk: torch.Tensor) -> None:
        if self._staged is not None and (
            self._staged.device != key_chunk.device
            or self._num_staged + key_chunk.numel() > _CHUNK_SIZE
        ):
            self._flush()
        if self._staged is None:
            self._staged = torch.empty(_CHUNK_SIZE, dtype=torch.int32, device=key_chunk.device)
        high = self._staged[self._num_staged : self._num_staged + key_chunk.numel()]
        torch.bitwise_right_shift(key_chunk, 16, out=high)
        high += 1
        self._num_staged += key_chunk.numel()

    def _flush(self) -> None:
        if self._staged is not None and self._num_staged:
            staged = self._staged[: self._num_staged]
            try:
                self._counts += torch.bincount(staged, minlength=(1 << 16) + 1).cpu()
            except RuntimeError as error:
                raise ValueError(f"scores must be non-negative ({error})") from error
        self._staged, self._num_staged = None, 0

    @property
    def counts(self) -> torch.Tensor:
        self._flush()
        return self._counts


def select_top_k_keys(
    keys: Sequence[torch.Tensor],
    k: int,
    show_progress: bool = True,
    high_histogram: _HighHistogram | None = None,
) -> list[torch.Tensor]:
    """Return flat boolean masks marking the k largest int32 keys over all `keys` together.

    `keys` are flat int32 tensors: bit patterns of non-negative float32 scores, or -1 for an
    entry that must not be selected. Exactly k entries are marked. Ties at the threshold
    go to earlier tensors first, then to lower flat indices. Raises ValueError when k
    exceeds the number of selectable entries or a score is negative or NaN.
    `high_histogram` lets a caller that built the keys chunk by chunk skip the first pass.
    """
    # Pass 1: histogram of the high 16 bits.
    if high_histogram is None:
        high_histogram = _HighHistogram()
        for key in _progress(keys, "Selecting entries (1/3)", show_progress):
            for start, end in _chunk_bounds(key.numel()):
                high_histogram.add(key[start:end])
    counts = high_histogram.counts
    if int(counts[(_INF_KEY >> 16) + 2 :].sum()) > 0:
        raise ValueError("scores contain NaN; check the model weights for NaN values")
    available = int(counts[1:].sum())
    if not 0 <= k <= available:
        raise ValueError(f"cannot select {k} entries: only {available} entries are selectable")
    if k == 0:
        return [torch.zeros_like(key, dtype=torch.bool) for key in keys]
    high_bin, count_above_high_bin = _threshold_bin(counts[1:], k)

    # Pass 2: histogram of the low 16 bits of the keys in the threshold's high bin.
    low_bits = []
    for key in _progress(keys, "Selecting entries (2/3)", show_progress):
        for start, end in _chunk_bounds(key.numel()):
            chunk = key[start:end]
            low_bits.append((chunk[(chunk >> 16) == high_bin] & 0xFFFF).cpu())
    low_histogram = torch.bincount(torch.cat(low_bits), minlength=1 << 16)
    del low_bits
    low_bin, count_above_low_bin = _threshold_bin(low_histogram, k - count_above_high_bin)
    threshold = (high_bin << 16) | low_bin
    ties_to_take = k - count_above_high_bin - count_above_low_bin
    take_all_ties = ties_to_take == int(low_histogram[low_bin])
    logger.debug(
        "Selection threshold %.6g; %d of %d tied entries taken",
        torch.tensor(threshold, dtype=torch.int32).view(torch.float32).item(),
        ties_to_take,
        int(low_histogram[low_bin]),
    )

    # Pass 3: the masks.
    masks = []
    for key in _progress(keys, "Selecting entries (3/3)", show_progress):
        if take_all_ties:
            mask = key >= threshold
        else:
            mask = key > threshold
            if ties_to_take > 0:
                tie_positions = torch.nonzero(key == threshold, as_tuple=True)[0][:ties_to_take]
                mask[tie_positions] = True
                ties_to_take -= tie_positions.numel()
        masks.append(mask)
    return masks


def _apply_exclusion(key: torch.Tensor, exclude: torch.Tensor | None) -> torch.Tensor:
    if exclude is not None:
        key.masked_fill_(exclude.reshape(-1), _EXCLUDED_KEY)
    return key


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

    `scores` are non-negative floating-point tensors; they are compared as float32 and
    left unchanged. Entries whose `exclude` mask is True are never selected. See
    `select_top_k_keys` for the tie rule and errors.
    """
    exclude = _check_exclude(exclude, len(scores))
    keys = []
    for score, excluded in zip(scores, exclude):
        key = score.detach().to(torch.float32).reshape(-1).view(torch.int32)
        if excluded is not None:
            key = _apply_exclusion(key.clone(), excluded)
        keys.append(key)
    masks = select_top_k_keys(keys, k, show_progress)
    return [mask.view(score.shape) for mask, score in zip(masks, scores)]


def largest_change_masks(
    current: Sequence[torch.Tensor],
    reference: Sequence[torch.Tensor],
    k: int,
    exclude: Sequence[torch.Tensor | None] | None = None,
    show_progress: bool = True,
) -> list[torch.Tensor]:
    """Return masks marking the k entries with the largest |current − reference| overall.

    This is the Lottery Ticket selection. Besides the masks, it allocates one float32 per
    entry at most (the keys), plus per-tensor temporaries. See `select_top_k_keys` for the
    tie rule and errors.
    """
    if len(current) != len(reference):
        raise ValueError(
            f"got {len(current)} current tensors but {len(reference)} reference tensors"
        )
    exclude = _check_exclude(exclude, len(current))
    keys = []
    high_histogram = _HighHistogram()
    with torch.no_grad():
        for tensor, base, excluded in zip(current, reference, exclude):
            if tensor.shape != base.shape:
                raise ValueError(f"shape mismatch: {tuple(tensor.shape)} vs {tuple(base.shape)}")
            key = torch.empty(tensor.numel(), dtype=torch.int32, device=tensor.device)
            change = key.view(torch.float32)
            flat_tensor, flat_base = tensor.reshape(-1), base.reshape(-1)
            flat_excluded = None if excluded is None else excluded.reshape(-1)
            # Chunks keep the subtraction, absolute value and histogram in cache.
            for start, end in _chunk_bounds(key.numel()):
                change_chunk = change[start:end]
                torch.sub(
                    flat_tensor[start:end], flat_base[start:end].to(tensor.device), out=change_chunk
                )
                change_chunk.abs_()
                if flat_excluded is not None:
                    key[start:end].masked_fill_(flat_excluded[start:end], _EXCLUDED_KEY)
                high_histogram.add(key[start:end])
            keys.append(key)
    masks = select_top_k_keys(keys, k, show_progress, high_histogram=high_histogram)
    return [mask.view(tensor.shape) for mask, tensor in zip(masks, current)]


def random_masks(
    shapes: Sequence[torch.Size],
    k: int,
    seed: int,
    exclude: Sequence[torch.Tensor | None] | None = None,
    show_progress: bool = True,
) -> list[torch.Tensor]:
    """Return CPU masks marking k entries drawn uniformly at random from the selectable ones.

    Every entry gets a random key below 2**31 from a CPU generator seeded with `seed`, and the k
    largest keys win, so the result depends only on the seed, the shapes and `exclude`.
    Equal keys are broken by position, which biases the draw only among those ties.
    """
    exclude = _check_exclude(exclude, len(shapes))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    keys = []
    for shape, excluded in zip(shapes, exclude):
        key = torch.randint(
            0,
            _RANDOM_KEY_HIGH,
            (int(torch.Size(shape).numel()),),
            generator=generator,
            dtype=torch.int32,
        )
        keys.append(_apply_exclusion(key, None if excluded is None else excluded.cpu()))
    masks = select_top_k_keys(keys, k, show_progress)
    return [mask.view(shape) for mask, shape in zip(masks, shapes)]
