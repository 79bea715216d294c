"""Cluster sweeps through submitit, exercised with its local executor: jobs finish in their run folders, a
failing job is reported with its message, a rerun skips the finished ones; bad launcher options are one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from undo.errors import UserError
from undo.runner.cluster import Cluster
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
def test_bad_launcher_on_the_command_line_is_one_line(tmp_path, args, message):
    command = [sys.executable, "run_all.py", "--scale", "smoke", "--out", str(tmp_path / "out"), *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
