"""Long runs resume: a run killed with SIGKILL after a checkpoint continues from it and ends with bit-identical
weights and the same records as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
STEPS = 60
SCRIPT = f"""
import sys
from undo.experiment import Experiment
from undo.runner.jobs import Job
from undo.runner.launch import launch

exp = Experiment("language", "smoke", sys.argv[1], checkpoint_every=5)
optim = {{"lr": 1e-3, "steps": {STEPS}, "warmup": 10, "min_lr": 1e-4}}
params = {{"mix": {{"en": 0.5, "ko": 0.5}}, "batch_size": 2, "eval_every": 20, "optim": optim}}
sys.exit(launch(exp, [Job("pretrain", "base", params)], wandb="off"))
"""


def start(out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def tree(block_cache: Path, path: Path) -> Path:
    path.mkdir()
    os.symlink(block_cache, path / "cache")
    return path


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def test_killed_checkpointing_run_resumes_to_bit_identical_weights(tmp_path, block_cache):
    reference, killed = tree(block_cache, tmp_path / "reference"), tree(block_cache, tmp_path / "killed")
    assert start(reference).wait(timeout=300) == 0
    proc = start(killed)
    stage = killed / "language" / "smoke" / "pretrain"
    state = stage / ".base.ckpt" / "state.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and torch.load(state, weights_only=True)["step"] >= 15:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (stage / "base" / "DONE").exists(), "the run finished before it could be killed"
    killed_at = torch.load(state, weights_only=True)["step"]
    assert 15 <= killed_at < STEPS

    resumed = start(killed)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resumed from step {killed_at}" in err
    a = load_file(reference / "language/smoke/pretrain/base/model/model.safetensors")
    b = load_file(stage / "base" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert records(stage / "base") == records(reference / "language/smoke/pretrain/base")
    assert not (stage / ".base.ckpt").exists()  # a finished run keeps only its final model
    assert not [p for p in stage.iterdir() if p.name.startswith(".base.tmp")]  # the killed run's folder swept


def test_a_finished_run_keeps_its_final_training_state_only_when_asked(tmp_path, block_cache):
    from undo.experiment import Experiment
    from undo.runner.jobs import Job
    from undo.runner.launch import launch

    params = {"mix": {"en": 1.0}, "batch_size": 2, "optim": {"lr": 1e-3, "steps": 3}}
    for keep in (False, True):
        out = tree(block_cache, tmp_path / f"keep-{keep}")
        exp = Experiment("language", "smoke", out, checkpoint_every=0, keep_checkpoint=keep)
        assert launch(exp, [Job("pretrain", "base", params)], wandb="off") == 0
        run = exp.run_dir("pretrain/base")
        assert (run / "training_state.pt").is_file() == keep
        assert not run.with_name(".base.ckpt").exists()
        if keep:
            state = torch.load(run / "training_state.pt", weights_only=True)
            assert state["step"] == 3 and state["optimizer"]["state"]
