"""Worker for test_multisource_ddp.py: multi-source LT-SFT under torchrun, one process per rank.

Each rank saves its SFT to <output>/rank<r> and writes <output>/rank<r>.json with the
failures of the swap checks, the event counts, the sources of each optimizer step's
micro-batches and the number of maskable entries that differ from θ0.
"""

import json
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from multisource_testing import SwapInspector, TaggedTokens, build_source_sfts, snapshot, tagger
from sft_testing import training_arguments

from sft import MultiSourceDataset, MultiSourceSparseFineTuner, SftArguments

NUM_TUNABLE = 400


def main(output: Path) -> None:
    model = tagger()
    source_sfts = build_source_sfts(model)
    initial = snapshot(model)
    train = MultiSourceDataset(
        {
            "en": TaggedTokens("en", 12, seed=1),
            "mt": TaggedTokens("mt", 7, seed=2),
            "fo": TaggedTokens("fo", 5, seed=3),
        },
        upsampling={"fo": 2},
    )
    inspector = SwapInspector(model, source_sfts)
    trainer = MultiSourceSparseFineTuner(
        model=model,
        args=training_arguments(
            output / "trainer",
            per_device_train_batch_size=4,
            gradient_accumulation_steps=2,
            weight_decay=0.1,
            ddp_backend="gloo",
        ),
        train_dataset=train,
        source_sfts=source_sfts,
        sft_args=SftArguments(
            ft_params_num=NUM_TUNABLE,
            n_ft_iterations=2,
            full_ft_max_steps_per_iteration=2,
            sparse_ft_max_steps_per_iteration=2,
            sparse_l1_reg=0.1,
        ),
        callbacks=[inspector],
    )
    assert trainer.args.world_size == 2, trainer.args.world_size
    trainer.train()

    changed = sum(
        int((model.get_parameter(name) != initial[name]).sum()) for name in trainer.maskable_params
    )
    rank = trainer.args.process_index
    trainer.sft().save_pretrained(output / f"rank{rank}")
    report = {
        "failures": inspector.failures,
        "counts": inspector.counts,
        "step_sources": [sources for sources in inspector.step_sources if sources],
        "changed": changed,
        "applied_after_training": len(getattr(model, "_sft_applied_stack", [])),
    }
    (output / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    torch.manual_seed(0)
    main(Path(sys.argv[1]))
