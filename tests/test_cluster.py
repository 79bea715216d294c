"""Cluster sweeps through submitit, exercised with its local executor: jobs finish in their run folders, a
failing job is reported with its message, a rerun skips the finished ones; bad launcher options are one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from undo.errors import UserError
from undo.experiment import Experiment
from undo.runner.cluster import Cluster, ClusterJob
from undo.runner.jobs import Job
from undo.runner.launch import launch
from undo.runs.rundir import is_done

ROOT = Path(__file__).resolve().parents[1]
PRETRAIN = {"mix": {"en": 0.5, "ko": 0.5}, "batch_size": 2, "optim": {"lr": 1e-3, "steps": 2}}
UNLEARN = {"batch_size": 2, "optim": {"lr": 1e-3, "steps": 2}}


def test_submitit_local_sweep_finishes_reports_the_failure_and_skips_on_rerun(exp, capsys):
    assert launch(exp, [Job("pretrain", "base", PRETRAIN)]) == 0
    jobs = [
        Job("unlearn", "maxent", {**UNLEARN, "method": "maxent"}),
        Job("unlearn", "rmu-bad", {**UNLEARN, "method": "rmu", "args": {"layer": 7}}),  # fails when it runs
    ]
    cluster = Cluster("submitit-local", time_min=10)
    assert launch(exp, jobs, wandb="off", cluster=cluster) == 1
    out = capsys.readouterr().out
    print(out)  # the transcript, shown with -s
    assert "submitted 2 job(s) through submitit-local" in out
    assert "unlearn/maxent done (job " in out
    assert "unlearn/rmu-bad FAILED (job " in out and "RMU layer 7 is outside the model" in out
    assert is_done(exp.run_dir("unlearn/maxent")) and not exp.run_dir("unlearn/rmu-bad").exists()
    assert list((exp.root / "unlearn" / ".submitit").glob("*/*_log.out"))  # logs in the run tree
    assert launch(exp, jobs, wandb="off", cluster=cluster) == 1
    rerun = capsys.readouterr().out
    print(rerun)
    assert "1 job(s) to run, 1 already finished" in rerun and "submitted 1 job(s)" in rerun


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(launcher="slurm"), "--launcher slurm needs --partition NAME"),
        (dict(launcher="pbs"), "unknown launcher 'pbs': choose one of local, slurm, submitit-local"),
        (dict(launcher="slurm", partition="gpu", time_min=0), "--time-min must be >= 1, got 0"),
    ],
)
def test_bad_cluster_options_are_one_clear_error(options, message):
    with pytest.raises(UserError, match=message):
        Cluster(**options)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--launcher", "pbs"], "error: unknown launcher 'pbs'"),
        (["--launcher", "slurm"], "error: --launcher slurm needs --partition NAME"),
    ],
)
def test_bad_launcher_on_the_command_line_is_one_line(tmp_path, args, message, cli):
    code, _, err = cli("run_all.py", "--scale", "smoke", "--out", str(tmp_path / "out"), *args)
    assert code == 2
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


LONG = {"mix": {"en": 1.0}, "batch_size": 2, "eval_every": 4, "optim": {"lr": 1e-3, "steps": 8}}
SIGNALLED_AT = 5
# A launch whose training sends itself SIGTERM (what SLURM sends before preemption or at the time limit) after step 5.
TERMINATED = f"""
import json, os, signal, sys
from undo.cli import guarded
from undo.experiment import Experiment
from undo.runner.jobs import Job
from undo.runner.launch import launch
from undo.training import loop

stepped = loop.Progress.stepped
def stepped_then_signalled(self, state, *args):
    stepped(self, state, *args)
    if state.step == {SIGNALLED_AT}:
        os.kill(os.getpid(), signal.SIGTERM)
loop.Progress.stepped = stepped_then_signalled
exp = Experiment("language", "smoke", sys.argv[1])
guarded(lambda: launch(exp, [Job("pretrain", "long", json.loads(sys.argv[2]))], wandb="off"))
"""


def same_weights(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    x, y = load_file(a / "model" / "model.safetensors"), load_file(b / "model" / "model.safetensors")
    return x.keys() == y.keys() and all((x[k] == y[k]).all() for k in x)


def test_sigterm_saves_the_checkpoint_and_a_rerun_resumes_from_it(exp, tmp_path):
    import json

    import torch

    script = [sys.executable, "-c", TERMINATED, str(exp.out), json.dumps(LONG)]
    stopped = subprocess.run(script, cwd=ROOT, capture_output=True, text=True, timeout=300)
    print(stopped.stderr[-600:])  # the transcript, shown with -s
    assert stopped.returncode == 128 + 15, stopped.stderr[-2000:]
    assert f"stopped by SIGTERM after step {SIGNALLED_AT}; its checkpoint is saved: rerun it" in stopped.stderr
    run = exp.run_dir("pretrain/long")
    assert torch.load(run.with_name(".long.ckpt") / "state.pt")["step"] == SIGNALLED_AT and not is_done(run)
    assert launch(exp, [Job("pretrain", "long", LONG)], wandb="off") == 0
    reference = Experiment("language", "smoke", tmp_path / "reference")
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "cache").symlink_to((exp.out / "cache").resolve())
    assert launch(reference, [Job("pretrain", "long", LONG)], wandb="off") == 0
    assert same_weights(run, reference.run_dir("pretrain/long"))


class SignalledClusterJob(ClusterJob):
    """Its first attempt receives submitit's preemption signal (USR2) after step 5, as SLURM sends it."""

    def __call__(self, spec: dict, threads: int) -> None:
        import os
        import signal

        from undo.training import loop

        if not list(Path(spec["out"]).glob("language/smoke/pretrain/.long.ckpt/state.pt")):
            stepped = loop.Progress.stepped

            def stepped_then_signalled(progress, state, *args):
                stepped(progress, state, *args)
                if state.step == SIGNALLED_AT:
                    os.kill(os.getpid(), signal.SIGUSR2)

            loop.Progress.stepped = stepped_then_signalled
        super().__call__(spec, threads)


def test_a_preempted_cluster_job_is_requeued_and_resumes(exp, monkeypatch, capsys):
    import undo.runner.cluster as cluster

    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{ROOT / 'tests'}")  # the job unpickles this test's class
    monkeypatch.setattr(cluster, "ClusterJob", SignalledClusterJob)
    assert launch(exp, [Job("pretrain", "long", LONG)], wandb="off", cluster=Cluster("submitit-local")) == 0
    logs = "".join(p.read_text() for p in (exp.root / "pretrain" / ".submitit").glob("*/*_log.err"))
    print(logs[-1500:])  # the transcript: the signal, the requeue, the resumed run
    assert f"stopped by SIGUSR2 after step {SIGNALLED_AT}; its checkpoint is saved" in logs
    assert "this job is preempted" in logs and f"resumed from step {SIGNALLED_AT}" in logs  # submitit requeued it
    assert is_done(exp.run_dir("pretrain/long")) and "pretrain/long done" in capsys.readouterr().out
