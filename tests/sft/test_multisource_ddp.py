import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from multisource_ddp_worker import NUM_TUNABLE
from sft_testing import assert_same_sft

from sft import SFT

WORKER = Path(__file__).with_name("multisource_ddp_worker.py")


@pytest.mark.ddp
@pytest.mark.slow
def test_multisource_lt_sft_under_ddp(tmp_path):
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

    reports = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    for report in reports:
        assert report["failures"] == []
        # Two iterations of two phases of two steps, each step two micro-batches.
        assert report["counts"]["optimizer"] == 8
        assert report["counts"]["forward"] == 16
        assert report["changed"] == NUM_TUNABLE
        assert report["applied_after_training"] == 0
    # The processes train on different batches, and at least once on different sources.
    first, second = (report["step_sources"] for report in reports)
    assert len(first) == len(second) == 8
    assert first != second
    first_sft = SFT.from_pretrained(tmp_path / "rank0")
    assert first_sft.num_diff_entries == NUM_TUNABLE
    assert_same_sft(first_sft, SFT.from_pretrained(tmp_path / "rank1"))
