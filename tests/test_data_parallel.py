"""One job spread over two data-parallel processes trains as one process does: each process draws its rows of the
same global batches, and RMU's hooked layer is read through the wrapped model. The processes are started by
torchrun, as `accelerate launch --multi_gpu` starts them on GPUs (accelerate's CPU launcher needs MPI), and talk
over gloo."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-4  # float32 sums in another order: losses and weights agree to about 1e-6 here


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spread(out: Path, script: str, *args: str, processes: int) -> None:
    """The script's jobs, each data parallel over `processes` torchrun processes."""
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}"]
    launcher += [f"--master_port={free_port()}"]
    command = [*launcher, script, "--scale", "smoke", "--out", str(out), "--wandb", "off", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"each data parallel over {processes} processes" in done.stdout


def train_losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r.get("kind") == "train"]


@pytest.mark.parametrize("job", ["rmu-lr0.01", pytest.param("maxent-lr0.001", marks=pytest.mark.slow)])
def test_two_processes_give_the_losses_and_weights_of_one(tmp_path, job, block_cache):
    from transformers import AutoModelForCausalLM

    import run_pretrain
    import run_unlearn

    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    os.symlink(block_cache, one / "cache")
    here = ["--scale", "smoke", "--out", str(one), "--wandb", "off", "--only"]
    # The base model and the one-process reference run in this process; only the spread job is launched.
    assert run_pretrain.main([*here, "base"]) == 0
    shutil.copytree(one, two, symlinks=True)
    assert run_unlearn.main([*here, job]) == 0
    spread(two, "run_unlearn.py", "--only", job, processes=2)
    runs = [out / "language" / "smoke" / "unlearn" / job for out in (one, two)]
    assert not list(runs[1].parent.glob(".*rank*"))  # the second process's scratch run folder is gone
    losses = [train_losses(run) for run in runs]
    assert len(losses[0]) == len(losses[1]) >= 1
    assert losses[0] == pytest.approx(losses[1], rel=TOLERANCE)
    models = [AutoModelForCausalLM.from_pretrained(run / "model") for run in runs]
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
        assert torch.allclose(a, b, rtol=TOLERANCE, atol=TOLERANCE), name
