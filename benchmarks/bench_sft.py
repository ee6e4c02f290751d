"""Benchmarks of the sft library on an mBERT-sized model with random weights.

Measures, for K = 14,155,776 tunable entries of the 177,262,848 maskable entries of a BERT
with mBERT's sizes (vocabulary 119,547, hidden size 768, 12 layers):

- selection: time of the global top-K selection and peak resident memory of the whole
  process (VmHWM), in a fresh process;
- io: save, load and apply times, and bytes per stored entry, for the default and the
  legacy file formats;
- step: time of a sparse-phase (phase 2) training step over a plain Trainer step, on a
  small BERT.

Each part runs in its own subprocess. Timings are the fastest of --repeats runs (the step
part reports medians and minima), and the 1-minute load average before and after each part
is recorded, because other processes slow the measurements down. Results are printed as
JSON and, with --output, written to a JSON file. Run it on an otherwise idle machine:

    python benchmarks/bench_sft.py --output benchmarks/results/sft.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

MBERT_SIZES = {
    "vocab_size": 119_547,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
EXPECTED_MASKABLE = 177_262_848
NUM_TUNABLE = 14_155_776
PARTS = ("selection", "io", "step")


def read_status_kib(field: str) -> int:
    """Return a memory field of /proc/self/status (VmHWM, VmRSS) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def build_perturbed_mbert():
    """Build an mBERT-sized BertForMaskedLM and move its maskable weights by Gaussian noise.

    The noise (standard deviation 1e-3, drawn in chunks to keep memory low) stands in for a
    full fine-tuning phase. Returns the model, the maskable names, their parameters and a
    copy of their weights from before the noise.
    """
    from transformers import BertConfig, BertForMaskedLM

    from sft import maskable_parameter_names

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(**MBERT_SIZES))
    names = maskable_parameter_names(model)
    parameters = [model.get_parameter(name) for name in names]
    num_maskable = sum(p.numel() for p in parameters)
    if num_maskable != EXPECTED_MASKABLE:
        raise RuntimeError(f"expected {EXPECTED_MASKABLE} maskable entries, got {num_maskable}")
    with torch.no_grad():
        initial = [p.detach().clone() for p in parameters]
        generator = torch.Generator().manual_seed(1)
        for parameter in parameters:
            flat = parameter.view(-1)
            for start in range(0, flat.numel(), 1 << 22):
                chunk = flat[start : start + (1 << 22)]
                chunk.add_(torch.randn(chunk.numel(), generator=generator), alpha=1e-3)
    return model, names, parameters, initial


def run_selection(repeats: int) -> dict:
    from sft.selection import largest_change_masks

    _model, _names, parameters, initial = build_perturbed_mbert()
    resident_before = read_status_kib("VmRSS")
    peak_before = read_status_kib("VmHWM")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        masks = largest_change_masks(parameters, initial, NUM_TUNABLE, show_progress=False)
        times.append(time.perf_counter() - start)
        selected = sum(int(mask.count_nonzero()) for mask in masks)
        if selected != NUM_TUNABLE:
            raise RuntimeError(f"selected {selected} entries, expected {NUM_TUNABLE}")
        del masks
    return {
        "selection_seconds": min(times),
        "selection_seconds_median": statistics.median(times),
        "peak_rss_gb": read_status_kib("VmHWM") * 1024 / 1e9,
        "peak_rss_before_selection_gb": peak_before * 1024 / 1e9,
        "rss_before_selection_gb": resident_before * 1024 / 1e9,
        "num_maskable": sum(p.numel() for p in parameters),
        "num_selected": selected,
    }


def time_best_of(function, repeats: int) -> float:
    """Return the shortest of `repeats` timed calls, the one least disturbed by other load."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


def run_io(repeats: int) -> dict:
    from sft import SFT, SparseDiff
    from sft.selection import largest_change_masks

    model, names, parameters, initial = build_perturbed_mbert()
    masks = largest_change_masks(parameters, initial, NUM_TUNABLE, show_progress=False)
    diffs = {}
    with torch.no_grad():
        for name, parameter, base, mask in zip(names, parameters, initial, masks):
            indices = torch.nonzero(mask.view(-1), as_tuple=True)[0]
            diffs[name] = SparseDiff(
                parameter.shape, indices, (parameter.view(-1)[indices] - base.view(-1)[indices])
            )
            parameter.copy_(base)
    del masks, initial
    sft = SFT(diffs=diffs)
    results: dict = {"num_entries": sft.num_diff_entries}

    with tempfile.TemporaryDirectory() as workspace:
        for file_format in ("safetensors", "legacy"):
            folder = Path(workspace) / file_format
            results[f"{file_format}_save_seconds"] = time_best_of(
                lambda folder=folder, file_format=file_format: sft.save_pretrained(
                    folder, file_format=file_format
                ),
                repeats,
            )
            results[f"{file_format}_bytes_per_entry"] = folder_bytes(folder) / sft.num_diff_entries
            results[f"{file_format}_load_seconds"] = time_best_of(
                lambda folder=folder: SFT.from_pretrained(folder), repeats
            )

    def apply_and_revert():
        start = time.perf_counter()
        sft.apply(model, with_abs=False)
        apply_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        sft.revert(model)
        revert_times.append(time.perf_counter() - start)

    apply_times: list[float] = []
    revert_times: list[float] = []
    for _ in range(repeats):
        apply_and_revert()
    results["apply_seconds"] = min(apply_times)
    results["revert_seconds"] = min(revert_times)
    return results


def step_times(trainer, phase: str | None) -> tuple[list[float], list[float]]:
    """Train and return the wall and CPU durations of the optimizer steps taken in `phase`.

    CPU time (of all threads of the process) grows less than wall time when other
    processes compete for the cores.
    """
    from transformers import TrainerCallback

    wall: list[float] = []
    cpu: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = (time.perf_counter(), time.process_time())

        def on_step_end(self, args, state, control, **kwargs):
            if phase is None or getattr(trainer, "_sft_phase", None) == phase:
                wall.append(time.perf_counter() - self.start[0])
                cpu.append(time.process_time() - self.start[1])

    trainer.add_callback(StepTimer())
    trainer.train()
    return wall, cpu


def run_step(num_steps: int, rounds: int) -> dict:
    from transformers import BertConfig, BertForMaskedLM, Trainer, TrainingArguments

    from sft import LotteryTicketSparseFineTuner, SftArguments

    config = BertConfig(
        vocab_size=30_522,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
    )

    class RandomTokens(torch.utils.data.Dataset):
        def __init__(self):
            self.input_ids = torch.randint(
                5, config.vocab_size, (4096, 128), generator=torch.Generator().manual_seed(0)
            )

        def __len__(self):
            return len(self.input_ids)

        def __getitem__(self, index):
            return {"input_ids": self.input_ids[index], "labels": self.input_ids[index]}

    def arguments(output_dir, max_steps):
        return TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=16,
            max_steps=max_steps,
            learning_rate=1e-4,
            weight_decay=0.01,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
            seed=0,
        )

    warmup = 3
    plain: list[float] = []
    sparse: list[float] = []
    plain_cpu: list[float] = []
    sparse_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as output_dir:
        for _ in range(rounds):
            torch.manual_seed(0)
            trainer = Trainer(
                model=BertForMaskedLM(config),
                args=arguments(output_dir, warmup + num_steps),
                train_dataset=RandomTokens(),
            )
            wall, cpu = step_times(trainer, None)
            plain.extend(wall[warmup:])
            plain_cpu.extend(cpu[warmup:])

            torch.manual_seed(0)
            sft_args = SftArguments(
                ft_params_proportion=0.08,
                full_ft_max_steps_per_iteration=1,
                sparse_ft_max_steps_per_iteration=warmup + num_steps,
            )
            trainer = LotteryTicketSparseFineTuner(
                model=BertForMaskedLM(config),
                args=arguments(output_dir, -1),
                train_dataset=RandomTokens(),
                sft_args=sft_args,
            )
            wall, cpu = step_times(trainer, "sparse")
            sparse.extend(wall[warmup:])
            sparse_cpu.extend(cpu[warmup:])

    plain_median, sparse_median = statistics.median(plain), statistics.median(sparse)
    return {
        "plain_step_seconds": plain_median,
        "sparse_step_seconds": sparse_median,
        "sparse_over_plain": sparse_median / plain_median,
        "plain_step_seconds_min": min(plain),
        "sparse_step_seconds_min": min(sparse),
        "sparse_over_plain_min": min(sparse) / min(plain),
        "plain_step_cpu_seconds": statistics.median(plain_cpu),
        "sparse_step_cpu_seconds": statistics.median(sparse_cpu),
        "sparse_over_plain_cpu": statistics.median(sparse_cpu) / statistics.median(plain_cpu),
        "steps_per_kind": len(plain),
    }


def run_worker(part: str, arguments) -> dict:
    if part == "selection":
        return run_selection(arguments.repeats)
    if part == "io":
        return run_io(arguments.repeats)
    return run_step(arguments.steps, arguments.rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="repetitions of the selection, save, load and apply; the fastest is reported",
    )
    parser.add_argument(
        "--steps", type=int, default=20, help="timed training steps per trainer in the step part"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating plain/sparse rounds in the step part"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads in the workers (default: torch's default, one per core)",
    )
    parser.add_argument("--output", type=Path, help="JSON file to write the results to")
    parser.add_argument("--worker", choices=PARTS, help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    if arguments.worker:
        if arguments.threads:
            torch.set_num_threads(arguments.threads)
        print(json.dumps(run_worker(arguments.worker, arguments)))
        return

    results = {
        "torch_threads": arguments.threads or torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    for part in arguments.parts:
        load_before = os.getloadavg()[0]
        threads = ["--threads", str(arguments.threads)] if arguments.threads else []
        command = [
            sys.executable,
            __file__,
            "--worker",
            part,
            "--repeats",
            str(arguments.repeats),
            "--steps",
            str(arguments.steps),
            "--rounds",
            str(arguments.rounds),
            *threads,
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            sys.stderr.write(completed.stderr)
            raise SystemExit(
                f"benchmark part {part!r} failed with exit code {completed.returncode}"
            )
        results[part] = json.loads(completed.stdout.strip().splitlines()[-1])
        results[part]["load_average_before"] = load_before
        results[part]["load_average_after"] = os.getloadavg()[0]
        print(json.dumps({part: results[part]}, indent=2), flush=True)
    if arguments.output:
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
