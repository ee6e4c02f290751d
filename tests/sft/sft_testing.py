"""Helpers shared by the sft library tests: tiny datasets, training arguments, random SFTs."""

from __future__ import annotations

import torch
from transformers import TrainingArguments

from sft import SFT, SparseDiff


class RandomTokenDataset(torch.utils.data.Dataset):
    """Fixed random token sequences whose labels are the inputs (masked-LM style)."""

    def __init__(
        self,
        size: int = 32,
        length: int = 12,
        vocab_size: int = 128,
        seed: int = 0,
        num_labels: int | None = None,
    ):
        generator = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(5, vocab_size, (size, length), generator=generator)
        if num_labels is None:
            self.labels = self.input_ids.clone()
        else:
            self.labels = torch.randint(0, num_labels, (size, length), generator=generator)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[index], "labels": self.labels[index]}


def training_arguments(output_dir, **overrides) -> TrainingArguments:
    """Quiet CPU training arguments for tiny models; keyword arguments override them."""
    values = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 8,
        "learning_rate": 1e-2,
        "report_to": [],
        "save_strategy": "no",
        "logging_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 0,
        "data_seed": 0,
        "dataloader_num_workers": 0,
    }
    values.update(overrides)
    return TrainingArguments(**values)


def random_sft(
    model: torch.nn.Module,
    density: float,
    seed: int,
    scale: float = 1e-2,
    with_abs: tuple[str, ...] = (),
) -> SFT:
    """Build an SFT with random diffs on every parameter of `model` and copies of `with_abs`."""
    generator = torch.Generator().manual_seed(seed)
    diffs = {}
    for name, parameter in model.named_parameters():
        keep = torch.rand(parameter.shape, generator=generator) < density
        values = torch.randn(parameter.shape, generator=generator) * scale
        diffs[name] = SparseDiff.from_dense(values * keep)
    abs_values = {
        name: torch.randn(model.get_parameter(name).shape, generator=generator) for name in with_abs
    }
    return SFT(diffs=diffs, abs=abs_values)


def parameters_snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


def assert_same_sft(first: SFT, second: SFT) -> None:
    assert list(first.diffs) == list(second.diffs)
    for name, diff in first.diffs.items():
        assert diff.shape == second.diffs[name].shape, name
        assert torch.equal(diff.indices, second.diffs[name].indices), name
        assert torch.equal(diff.values, second.diffs[name].values), name
    assert sorted(first.abs) == sorted(second.abs)
    for name, value in first.abs.items():
        assert torch.equal(value, second.abs[name]), name
