"""One job spread over two data-parallel processes trains and evaluates as one process does: each process draws its
rows of the same global batches, and the evaluations shard their work and reduce it. The processes are started by
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


# (setting, stage script, job, runs made first in this process as `(script, --only glob)`); RMU reads its hooked
# layer through the wrapped model; distillation (a fixed-step student: at smoke scale the stop rule of full
# distillation is met before its first step) and the attacks shard their evaluations over the processes (the
# arithmetic attack's accuracy sums correct answers over them).
CASES = {
    "rmu": ("language", "run_unlearn.py", "rmu-lr0.01", []),
    "maxent": ("language", "run_unlearn.py", "maxent-lr0.001", []),
    "graddiff": ("language", "run_unlearn.py", "graddiff-lr0.0001", []),
    "distillation": ("language", "run_distill.py", "match-base", [("run_pretrain", "oracle")]),
    "attack": ("language", "run_relearn.py", "pretrain-base-lr0.001", []),
    "arithmetic attack": ("arithmetic", "run_relearn.py", "pretrain-base-lr0.001", []),
}


@pytest.mark.parametrize("case", [c if c == "rmu" else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_two_processes_give_the_losses_metrics_and_weights_of_one(tmp_path, case, block_cache):
    from importlib import import_module

    from transformers import AutoModelForCausalLM

    setting, script, job, first = CASES[case]
    stage = script.removeprefix("run_").removesuffix(".py")
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    os.symlink(block_cache, one / "cache")
    here = ["--setting", setting, "--scale", "smoke", "--out", str(one), "--wandb", "off", "--only"]
    # The inputs and the one-process reference run in this process; only the spread job is launched.
    for module, only in [("run_pretrain", "base"), *first]:
        assert import_module(module).main([*here, only]) == 0
    shutil.copytree(one, two, symlinks=True)
    assert import_module(f"run_{stage}").main([*here, job]) == 0
    spread(two, script, "--setting", setting, "--only", job, processes=2)
    runs = [out / setting / "smoke" / stage / job for out in (one, two)]
    assert not list(runs[1].parent.glob(".*rank*"))  # the second process's scratch run folder is gone
    losses = [train_losses(run) for run in runs]
    assert len(losses[0]) == len(losses[1]) >= 1
    assert losses[0] == pytest.approx(losses[1], rel=TOLERANCE)
    metrics = [json.loads((run / "summary.json").read_text())["metrics"] for run in runs]
    assert metrics[0].keys() == metrics[1].keys() and metrics[0] == pytest.approx(metrics[1], rel=TOLERANCE)
    if (runs[0] / "model").is_dir():  # an attack keeps no model
        models = [AutoModelForCausalLM.from_pretrained(run / "model") for run in runs]
        for (name, a), b in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
            assert torch.allclose(a, b, rtol=TOLERANCE, atol=TOLERANCE), name
