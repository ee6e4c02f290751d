import os
import subprocess
import sys
from pathlib import Path

import pytest
from ddp_worker import NUM_TUNABLE
from sft_testing import assert_same_sft

from sft import SFT

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.ddp
@pytest.mark.slow
def test_lt_sft_under_ddp(tmp_path):
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        str(tmp_path),
    ]
    completed = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-4000:]

    for rank in (0, 1):
        assert int((tmp_path / f"rank{rank}.changed").read_text()) == NUM_TUNABLE
    first, second = SFT.from_pretrained(tmp_path / "rank0"), SFT.from_pretrained(tmp_path / "rank1")
    assert first.num_diff_entries == NUM_TUNABLE
    assert_same_sft(first, second)
