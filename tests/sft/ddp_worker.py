"""Worker for test_ddp.py: a few LT-SFT steps under torchrun, one process per rank.

Each rank saves its SFT to <output>/rank<r> and writes the number of maskable entries
that differ from θ0 to <output>/rank<r>.changed.
"""

import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from tiny_models import tiny_bert_config
from sft_testing import RandomTokenDataset, training_arguments
from transformers import BertForMaskedLM

from sft import LotteryTicketSparseFineTuner, SftArguments

NUM_TUNABLE = 400


def main(output: Path) -> None:
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_bert_config())
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    sft_args = SftArguments(
        ft_params_num=NUM_TUNABLE,
        n_ft_iterations=2,
        full_ft_max_steps_per_iteration=2,
        sparse_ft_max_steps_per_iteration=2,
        sparse_l1_reg=0.1,
    )
    trainer = LotteryTicketSparseFineTuner(
        model=model,
        args=training_arguments(
            output / "trainer", per_device_train_batch_size=4, weight_decay=0.1, ddp_backend="gloo"
        ),
        train_dataset=RandomTokenDataset(size=32),
        sft_args=sft_args,
    )
    assert trainer.args.world_size == 2, trainer.args.world_size
    trainer.train()
    changed = sum(
        int((model.get_parameter(name) != initial[name]).sum()) for name in trainer.maskable_params
    )
    rank = trainer.args.process_index
    trainer.sft().save_pretrained(output / f"rank{rank}")
    (output / f"rank{rank}.changed").write_text(str(changed))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
