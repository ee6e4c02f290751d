"""Cost of swapping language SFTs in multi-source training, relative to a training step.

Multi-source training applies the language SFT of each batch's source before the forward
pass and reverts it after the backward pass. This script measures, on a token
classification model built from a local base model (default: multilingual-e5-small as
converted by the workflow):

- swap: the time of one apply (without abs values) plus one revert of a language SFT
  holding --language-density of the maskable entries at random positions, the fastest of
  --repeats;
- step: the median time of a sparse-phase optimizer step of `MultiSourceSparseFineTuner`
  (three sources, one swap per batch) and of `LotteryTicketSparseFineTuner` on the same
  batches without swaps. The two alternate for --rounds rounds; the first --warmup steps
  of each run are not timed. Both use a random mask, so no full fine-tuning phase runs.

The task setup follows configs/default.yaml: sequences of --seq-length tokens, batches of
--batch-size, 17 labels (UPOS), K = 8 % of the maskable entries, layer normalisation and
word embeddings frozen. Results are printed as JSON and, with --output, written to a file.
The 1-minute load average before and after is recorded, because other processes slow the
measurements down; run it on an otherwise idle machine:

    python benchmarks/bench_multisource.py --output benchmarks/results/multisource.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

DEFAULT_MODEL = "resources/models/multilingual-e5-small-mlm"
SOURCES = ("en", "mt", "fo")
NUM_LABELS = 17


class RandomTagging(torch.utils.data.Dataset):
    """Random token sequences with random tag labels."""

    def __init__(self, size: int, length: int, vocab_size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(5, vocab_size, (size, length), generator=generator)
        self.labels = torch.randint(0, NUM_LABELS, (size, length), generator=generator)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[index], "labels": self.labels[index]}


def random_language_sft(model, density: float, seed: int):
    """Return an SFT over the maskable parameters with `density` of their entries, at random."""
    from sft import SFT, SparseDiff, maskable_parameter_names

    generator = torch.Generator().manual_seed(seed)
    diffs = {}
    for name in maskable_parameter_names(model):
        parameter = model.get_parameter(name)
        count = max(1, round(density * parameter.numel()))
        indices = torch.randperm(parameter.numel(), generator=generator)[:count].sort().values
        values = torch.randn(count, generator=generator) * 1e-3
        diffs[name] = SparseDiff(parameter.shape, indices, values)
    return SFT(diffs=diffs)


def load_model(path: str):
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(0)
    return AutoModelForTokenClassification.from_pretrained(path, num_labels=NUM_LABELS)


def time_swaps(model, sfts, repeats: int) -> dict:
    apply_times, revert_times = [], []
    for _ in range(repeats):
        for sft in sfts:
            start = time.perf_counter()
            sft.apply(model, with_abs=False, on_mismatch="ignore")
            apply_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            sft.revert(model)
            revert_times.append(time.perf_counter() - start)
    return {
        "apply_seconds": min(apply_times),
        "revert_seconds": min(revert_times),
        "swap_seconds": min(a + r for a, r in zip(apply_times, revert_times)),
        "swap_seconds_median": statistics.median(a + r for a, r in zip(apply_times, revert_times)),
    }


def step_times(trainer) -> list[float]:
    """Train and return the wall-clock durations of the sparse-phase optimizer steps."""
    from transformers import TrainerCallback

    durations: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            durations.append(time.perf_counter() - self.start)

    trainer.add_callback(StepTimer())
    trainer.train()
    return durations


def build_trainer(model, arguments, output_dir: str, multi_source: bool, sfts):
    from transformers import TrainingArguments

    from sft import (
        LotteryTicketSparseFineTuner,
        MultiSourceDataset,
        MultiSourceSparseFineTuner,
        SftArguments,
    )

    vocab_size = model.config.vocab_size
    datasets = {
        source: RandomTagging(256, arguments.seq_length, vocab_size, seed=position)
        for position, source in enumerate(SOURCES)
    }
    training_args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=arguments.batch_size,
        learning_rate=1e-4,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    sft_args = SftArguments(
        sparse_ft_method="random",
        ft_params_proportion=0.08,
        sparse_ft_max_steps_per_iteration=arguments.warmup + arguments.steps,
        freeze_layer_norm=True,
        freeze_embeddings=True,
    )
    if multi_source:
        return MultiSourceSparseFineTuner(
            model=model,
            args=training_args,
            train_dataset=MultiSourceDataset(datasets),
            source_sfts=dict(zip(SOURCES, sfts)),
            on_mismatch="ignore",
            sft_args=sft_args,
        )
    return LotteryTicketSparseFineTuner(
        model=model,
        args=training_args,
        train_dataset=torch.utils.data.ConcatDataset(list(datasets.values())),
        sft_args=sft_args,
    )


def run(arguments) -> dict:
    from sft import maskable_parameter_names

    model = load_model(arguments.model)
    num_maskable = sum(model.get_parameter(n).numel() for n in maskable_parameter_names(model))
    sfts = [
        random_language_sft(model, arguments.language_density, seed=seed)
        for seed in range(len(SOURCES))
    ]
    results: dict = {
        "model": arguments.model,
        "num_maskable_entries": num_maskable,
        "language_sft_entries": sfts[0].num_diff_entries,
        **time_swaps(model, sfts, arguments.repeats),
    }
    del model

    single: list[float] = []
    multi: list[float] = []
    with tempfile.TemporaryDirectory() as output_dir:
        for _ in range(arguments.rounds):
            for multi_source, durations in ((False, single), (True, multi)):
                trainer = build_trainer(
                    load_model(arguments.model), arguments, output_dir, multi_source, sfts
                )
                durations.extend(step_times(trainer)[arguments.warmup :])
                del trainer

    single_median, multi_median = statistics.median(single), statistics.median(multi)
    results.update(
        {
            "single_source_step_seconds": single_median,
            "multi_source_step_seconds": multi_median,
            "single_source_step_seconds_min": min(single),
            "multi_source_step_seconds_min": min(multi),
            "swap_over_step": results["swap_seconds"] / single_median,
            "swap_median_over_step": results["swap_seconds_median"] / single_median,
            "multi_over_single_step": multi_median / single_median,
            "steps_per_trainer": len(single),
        }
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="local base model folder")
    parser.add_argument(
        "--language-density",
        type=float,
        default=0.043,
        help="share of the maskable entries in each language SFT (default: the paper's 4.3%%)",
    )
    parser.add_argument("--seq-length", type=int, default=128, help="tokens per sequence")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per batch")
    parser.add_argument("--repeats", type=int, default=10, help="timed swaps per language SFT")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per trainer and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps at the start of a run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the trainers")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--output", type=Path, help="JSON file to write the results to")
    arguments = parser.parse_args()
    if not Path(arguments.model).is_dir():
        raise SystemExit(
            f"model folder {arguments.model} not found; build it with the workflow "
            "(resources/models/multilingual-e5-small-mlm) or pass --model"
        )
    if arguments.threads:
        torch.set_num_threads(arguments.threads)

    load_before = os.getloadavg()[0]
    results = run(arguments)
    results.update(
        {
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0],
        }
    )
    print(json.dumps(results, indent=2, sort_keys=True))
    if arguments.output:
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
