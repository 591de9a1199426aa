"""``train`` under torchrun: 2 CPU processes (gloo) with DistributedDataParallel follow the loss curve
of one process with the same global batch (issue 17)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from fixtures import make_toy_dataset
from test_core_cli import cli

# Settings under which the loss depends on the batch alone (no random context noise, dropout or
# diffusion noise level): then the 2-process step must be the 1-process step, up to float rounding.
DETERMINISTIC = ("--objective", "regression", "--context-noise", 0, "--context-drop", 0, "--audio-drop", 0,
                 "--style-drop", 0)


def loss_curve(model) -> list[float]:
    card = json.loads(cli("info", model).stdout)
    return [row["loss"] for row in card["training"]["loss_log_tail"]]


@pytest.mark.slow
def test_two_processes_follow_the_single_process_loss_curve(tmp_path):
    data = make_toy_dataset(tmp_path / "ds", n_train=4, n_val=1, seconds=2.0)
    args = ["train", "--data", data, "--iters", 5, "--batch", 4, "--tgt-steps", 2, "--log-every", 1,
            "--warmup", 1, "--lr", 3e-3, "--threads", 1, "--quiet", "--device", "cpu", *DETERMINISTIC,
            "--arch", json.dumps({"layers": 1, "head_blocks": 1, "head_dim": 64, "model_dim": 64})]
    single = cli(*args, "--out", tmp_path / "one.safetensors")
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "inference_core", *map(str, args), "--out", str(tmp_path / "two.safetensors")],
                         capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = loss_curve(tmp_path / "one.safetensors"), loss_curve(tmp_path / "two.safetensors")
    assert len(one) == len(two) == 5
    assert one[0] > one[-1]  # it trains: the curve goes down
    np.testing.assert_allclose(two, one, rtol=1e-4)
