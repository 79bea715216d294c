"""Cluster sweeps through submitit: one cluster job per grid job, submitted as one SLURM job array, or run by
submitit's local executor (the same path as local subprocesses: how to try it, and how the tests exercise it).

The launcher keeps its contract: finished runs are skipped before submission, every job runs through
`undo.runner.jobs.run_spec` into its atomic run folder, and failures come back with the job's ERROR message.
"""

from __future__ import annotations

from dataclasses import dataclass

import submitit
import torch

from undo.errors import UserError
from undo.experiment import Experiment
from undo.runner.jobs import Job, failure_message, job_spec, run_spec

LAUNCHERS = ("local", "slurm", "submitit-local")


@dataclass(frozen=True)
class Cluster:
    launcher: str  # slurm | submitit-local
    partition: str | None = None
    time_min: int = 240  # wall-clock limit per job
    gpus_per_job: int = 1
    cpus_per_job: int = 8
    array_parallelism: int = 64  # jobs of the array running at once

    def __post_init__(self):
        if self.launcher not in LAUNCHERS[1:]:
            raise UserError(f"unknown launcher {self.launcher!r}: choose one of {', '.join(LAUNCHERS)}")
        if self.launcher == "slurm" and not self.partition:
            raise UserError("--launcher slurm needs --partition NAME (the SLURM partition to submit the jobs to)")
        for name in ("time_min", "cpus_per_job", "array_parallelism"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.gpus_per_job < 0:
            raise UserError(f"--gpus-per-job must be >= 0, got {self.gpus_per_job}")


def executor(cluster: Cluster, folder):

    if cluster.launcher == "slurm":
        ex = submitit.SlurmExecutor(folder=folder)
        ex.update_parameters(
            partition=cluster.partition,
            time=cluster.time_min,
            nodes=1,
            ntasks_per_node=1,
            gpus_per_node=cluster.gpus_per_job or None,
            cpus_per_task=cluster.cpus_per_job,
            array_parallelism=cluster.array_parallelism,
            job_name="undo",
        )
    else:
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=cluster.time_min)
    return ex


def run_on_cluster(exp: Experiment, jobs: list[Job], wandb: str | None, cluster: Cluster) -> list[tuple[str, str]]:
    """Submit the jobs, wait for them, and return (ref, message) per failed job; logs stay in the run tree
    under <stage>/.submitit/."""
    folder = exp.root / jobs[0].stage / ".submitit"
    ex = executor(cluster, folder / "%j")
    threads = cluster.cpus_per_job if cluster.launcher == "slurm" else 1  # local jobs share this machine's cores
    with ex.batch():
        submitted = [ex.submit(ClusterJob(), job_spec(exp, job, wandb), threads) for job in jobs]
    print(f"submitted {len(jobs)} job(s) through {cluster.launcher} (logs under {folder})", flush=True)
    failures = []
    for job, handle in zip(jobs, submitted, strict=True):
        try:
            handle.result()
            print(f"{job.ref} done (job {handle.job_id})", flush=True)
        except Exception:
            message = failure_message(exp, job, f"job {handle.job_id} failed, see {handle.paths.stderr}")
            failures.append((job.ref, message))
            print(f"{job.ref} FAILED (job {handle.job_id}): {message}", flush=True)
    return failures


class ClusterJob(submitit.helpers.Checkpointable):
    """One grid job on the cluster. On the preemption or time-limit signal the training loop saves its checkpoint
    and hands the signal to submitit, which submits this job again (`checkpoint`, inherited); it resumes."""

    def __call__(self, spec: dict, threads: int) -> None:
        torch.set_num_threads(threads)
        run_spec(spec)
