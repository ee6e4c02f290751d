"""Sparse difference of one parameter tensor, stored as flat row-major indices and values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class SparseDiff:
    """Difference θ_ft − θ_base of one parameter at a sparse set of entries.

    `indices` are flat row-major (C-order) positions into a tensor of `shape`, as int64,
    strictly increasing and in `[0, numel)`. `values[i]` is the difference at `indices[i]`.
    The constructor checks these invariants and raises ValueError or TypeError otherwise.
    """

    shape: torch.Size
    indices: torch.Tensor
    values: torch.Tensor

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", torch.Size(self.shape))
        if not isinstance(self.indices, torch.Tensor) or not isinstance(self.values, torch.Tensor):
            raise TypeError(
                "SparseDiff indices and values must be torch tensors, got "
                f"{type(self.indices).__name__} and {type(self.values).__name__}"
            )
        if self.indices.dtype != torch.int64 or self.indices.dim() != 1:
            raise TypeError(
                "SparseDiff indices must be a 1-D int64 tensor, got "
                f"dtype {self.indices.dtype} with {self.indices.dim()} dimensions"
            )
        if self.values.dim() != 1 or not self.values.is_floating_point():
            raise TypeError(
                "SparseDiff values must be a 1-D floating-point tensor, got "
                f"dtype {self.values.dtype} with {self.values.dim()} dimensions"
            )
        if self.indices.numel() != self.values.numel():
            raise ValueError(
                f"SparseDiff has {self.indices.numel()} indices but {self.values.numel()} values; "
                "they must have the same length"
            )
        if self.indices.device != self.values.device:
            raise ValueError(
                f"SparseDiff indices are on {self.indices.device} but values are on "
                f"{self.values.device}; move both to the same device"
            )
        self._check_indices()

    def _check_indices(self) -> None:
        if self.indices.numel() == 0:
            return
        first = int(self.indices[0])
        last = int(self.indices[-1])
        if first < 0 or last >= self.numel:
            raise ValueError(
                f"SparseDiff indices must lie in [0, {self.numel}) for shape {tuple(self.shape)}, "
                f"got a range of [{first}, {last}]"
            )
        if self.indices.numel() > 1 and not bool(torch.all(self.indices[1:] > self.indices[:-1])):
            raise ValueError(
                "SparseDiff indices must be strictly increasing (sorted, no duplicates)"
            )

    @classmethod
    def _unchecked(
        cls, shape: torch.Size, indices: torch.Tensor, values: torch.Tensor
    ) -> SparseDiff:
        """Build a diff without the checks, for indices known to satisfy the invariants."""
        diff = object.__new__(cls)
        object.__setattr__(diff, "shape", torch.Size(shape))
        object.__setattr__(diff, "indices", indices)
        object.__setattr__(diff, "values", values)
        return diff

    @classmethod
    def empty(cls, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> SparseDiff:
        """Create a difference with no entries."""
        return cls(
            shape=torch.Size(shape),
            indices=torch.zeros(0, dtype=torch.int64),
            values=torch.zeros(0, dtype=dtype),
        )

    @classmethod
    def from_dense(cls, dense: torch.Tensor) -> SparseDiff:
        """Create a difference from a dense tensor, keeping its nonzero entries."""
        if not dense.is_floating_point():
            raise TypeError(
                f"SparseDiff.from_dense needs a floating-point tensor, got dtype {dense.dtype}"
            )
        flat = dense.detach().reshape(-1)
        indices = torch.nonzero(flat, as_tuple=True)[0]
        return cls._unchecked(dense.shape, indices, flat[indices].clone())

    @classmethod
    def between(cls, tuned: torch.Tensor, base: torch.Tensor) -> SparseDiff:
        """Create the difference `tuned − base` at the entries where the two tensors differ.

        Entries compare by value, so an entry that changed and came back to exactly its base
        value is not stored. Both tensors must have the same shape. Differences of float16
        or bfloat16 tensors are stored as float32, where they are exact, so applying them
        to the base reproduces `tuned`.
        """
        if tuned.shape != base.shape:
            raise ValueError(
                f"cannot take a difference of tensors with shapes {tuple(tuned.shape)} and "
                f"{tuple(base.shape)}"
            )
        tuned_flat = tuned.detach().reshape(-1)
        base_flat = base.detach().to(tuned.device).reshape(-1)
        indices = torch.nonzero(tuned_flat != base_flat, as_tuple=True)[0]
        dtype = torch.promote_types(tuned_flat.dtype, torch.float32)
        values = tuned_flat[indices].to(dtype) - base_flat[indices].to(dtype)
        return cls._unchecked(tuned.shape, indices, values)

    @property
    def numel(self) -> int:
        """Number of entries of the full parameter tensor."""
        return math.prod(self.shape)

    @property
    def nnz(self) -> int:
        """Number of stored entries."""
        return self.indices.numel()

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        return self.values.device

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> SparseDiff:
        """Return a copy on `device` with values cast to `dtype`, or self when nothing changes."""
        values = self.values.to(device=device, dtype=dtype)
        indices = self.indices.to(device=device)
        if values is self.values and indices is self.indices:
            return self
        return SparseDiff._unchecked(self.shape, indices, values)

    def to_dense(self) -> torch.Tensor:
        """Return the difference as a dense tensor of `shape`, zero outside the stored entries."""
        dense = torch.zeros(self.numel, dtype=self.values.dtype, device=self.values.device)
        dense[self.indices] = self.values
        return dense.view(self.shape)

    def scaled(self, factor: float) -> SparseDiff:
        """Return a copy with every value multiplied by `factor`."""
        return SparseDiff._unchecked(self.shape, self.indices, self.values * factor)

    def __repr__(self) -> str:
        return (
            f"SparseDiff(shape={tuple(self.shape)}, nnz={self.nnz}, dtype={self.dtype}, "
            f"device={self.device})"
        )
