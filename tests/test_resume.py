"""Long runs resume: a run of any stage killed with SIGKILL after a checkpoint continues from it and ends with
bit-identical weights and the same records as an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from undo.experiment import Experiment
from undo.runner.jobs import Job
from undo.runner.launch import launch
from undo.runs.rundir import is_done

ROOT = Path(__file__).resolve().parents[1]
STEPS, KILLED_AT = 6, 4
MIX = {"en": 0.5, "ko": 0.5}
TRAINING = {"batch_size": 2, "eval_every": 2, "optim": {"lr": 1e-3, "steps": STEPS, "warmup": 2, "min_lr": 1e-4}}
BASE = {"mix": MIX, "batch_size": 2, "optim": {"lr": 1e-3, "steps": 2}}
JOBS = {  # one job of each kind of stage that trains, every one reading pretrain/base
    "pretrain": {"stage": "pretrain", "name": "again", "params": {**TRAINING, "mix": MIX}},
    "unlearn with RepNoise": {  # RepNoise draws its MMD rows and noise from a generator of its own
        "stage": "unlearn",
        "name": "maxent-repnoise",
        "params": {**TRAINING, "method": "maxent", "repnoise": {"alpha": 0.5, "beta": 0.1, "max_rows": 16}},
    },
    "distill (UNDO)": {
        "stage": "distill",
        "name": "undo",
        "params": {**TRAINING, "role": "undo", "teacher": "pretrain/base", "alpha": 0.5, "beta": 0.1, "mix": MIX},
    },
    "relearn": {
        "stage": "relearn",
        "name": "attack",
        "params": {**TRAINING, "model": "pretrain/base", "save_model": True},
    },
}
# Run a job, dying by SIGKILL right after its checkpoint of step KILLED_AT is written: the kill point is fixed, not a
# race against the clock.
KILLED = f"""
import json, os, signal, sys
from undo.experiment import Experiment
from undo.runner.jobs import Job
from undo.runner.launch import launch
from undo.training.checkpoint import Checkpoint

save = Checkpoint.save
def save_then_die(self, state):
    save(self, state)
    if state["step"] == {KILLED_AT}:
        os.kill(os.getpid(), signal.SIGKILL)
Checkpoint.save = save_then_die
exp = Experiment("language", "smoke", sys.argv[1], checkpoint_every=2)
sys.exit(launch(exp, [Job(**json.loads(sys.argv[2]))], wandb="off"))
"""


def tree(block_cache: Path, path: Path, base: Path | None = None) -> Experiment:
    """An output tree sharing the block cache; with `base`, a copy of that finished pretrain/base run."""
    path.mkdir()
    os.symlink(block_cache, path / "cache")
    exp = Experiment("language", "smoke", path, checkpoint_every=2)
    if base is not None:
        shutil.copytree(base, exp.run_dir("pretrain/base"), symlinks=True)
    return exp


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


@pytest.mark.parametrize("kind", JOBS)
def test_a_run_killed_after_a_checkpoint_resumes_to_bit_identical_weights_and_records(kind, tmp_path, block_cache):
    first = tree(block_cache, tmp_path / "first")
    assert launch(first, [Job("pretrain", "base", BASE)], wandb="off") == 0
    job = Job(**JOBS[kind])
    reference = tree(block_cache, tmp_path / "reference", first.run_dir("pretrain/base"))
    assert launch(reference, [job], wandb="off") == 0

    killed = tree(block_cache, tmp_path / "killed", first.run_dir("pretrain/base"))
    script = [sys.executable, "-c", KILLED, str(killed.out), json.dumps(JOBS[kind])]
    died = subprocess.run(script, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    run = killed.run_dir(job.ref)
    assert not is_done(run) and torch.load(run.with_name(f".{run.name}.ckpt") / "state.pt")["step"] == KILLED_AT

    assert launch(killed, [job], wandb="off") == 0  # resumes from the checkpoint
    a = load_file(reference.run_dir(job.ref) / "model" / "model.safetensors")
    b = load_file(run / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert records(run) == records(reference.run_dir(job.ref))
    assert not run.with_name(f".{run.name}.ckpt").exists()  # a finished run keeps only its final model
    assert not [p for p in run.parent.iterdir() if p.name.startswith(f".{run.name}.tmp")]  # the killed run's folder


def test_a_finished_run_keeps_its_final_training_state_only_when_asked(tmp_path, block_cache):
    params = {"mix": {"en": 1.0}, "batch_size": 2, "optim": {"lr": 1e-3, "steps": 3}}
    for keep in (False, True):
        out = tree(block_cache, tmp_path / f"keep-{keep}").out
        exp = Experiment("language", "smoke", out, checkpoint_every=0, keep_checkpoint=keep)
        assert launch(exp, [Job("pretrain", "base", params)], wandb="off") == 0
        run = exp.run_dir("pretrain/base")
        assert (run / "training_state.pt").is_file() == keep
        assert not run.with_name(".base.ckpt").exists()
        if keep:
            state = torch.load(run / "training_state.pt", weights_only=True)
            assert state["step"] == 3 and state["optimizer"]["state"]
