"""Grid -> plan -> backend. The plan says, without running or writing anything, which jobs are to run, which
finished runs are stale (their config or inputs changed) and which wait for a missing input; a backend then runs
the jobs: here one after another, in worker processes that share the cores or GPUs, or on a cluster.

Every job is validated before any runs; a stale run stops the launch unless it is to be rerun; a failed job
does not stop the others; a summary closes the launch and the exit code is non-zero when any job failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from undo.errors import UserError
from undo.experiment import Experiment
from undo.io.files import sweep_leftovers
from undo.params import StageParams
from undo.runner.cluster import Cluster, run_on_cluster
from undo.runner.here import run_here
from undo.runner.jobs import Job, matches, validate
from undo.runner.workers import run_in_workers, worker_slots
from undo.runs.identity import stale_reasons
from undo.runs.rundir import is_done
from undo.runs.selection import resolve
from undo.runs.tracking import resolve_wandb
from undo.stages.prepare import prepare


@dataclass
class Plan:
    """What a launch would do with its jobs."""

    jobs: list[Job]
    params: dict[str, StageParams]
    todo: list[Job] = field(default_factory=list)  # not finished, or forced
    stale: list[tuple[Job, list[str]]] = field(default_factory=list)  # finished, but no longer what the grid asks
    skipped: int = 0  # finished and current
    blocked: dict[str, list[Job]] = field(default_factory=dict)  # why an input is missing: the jobs that need it

    def print(self, exp: Experiment) -> None:
        waiting = {job.ref: message for message, jobs in self.blocked.items() for job in jobs}
        why_stale = {job.ref: "; ".join(reasons) for job, reasons in self.stale}
        for job in self.jobs:
            if job.ref in waiting:
                state, note = "wait", f"  (input missing: {waiting[job.ref]})"
            elif job.ref in why_stale:
                state, note = "stale", f"  ({why_stale[job.ref]})"
            else:
                state, note = ("todo" if job in self.todo else "done"), ""
            print(f"{state:5} {exp.run_dir(job.ref)}  {json.dumps(job.params, sort_keys=True)}{note}")


def plan(exp: Experiment, jobs: list[Job], force: bool = False) -> Plan:
    """A finished run is skipped when it is current (undo.runs.identity), stale otherwise; `force` runs every job."""
    result = Plan(jobs, validate(exp, jobs))
    for job in jobs:
        if force or not is_done(exp.run_dir(job.ref)):
            result.todo.append(job)
        elif reasons := stale_reasons(exp, job, result.params[job.ref]):
            result.stale.append((job, reasons))
        else:
            result.skipped += 1
    for job in result.todo + [job for job, _ in result.stale]:
        for ref in result.params[job.ref].inputs().values():
            try:
                exp.finished(resolve(exp, ref, record=False))
            except UserError as err:
                result.blocked.setdefault(str(err), []).append(job)
                break
    return result


def launch(
    exp: Experiment,
    jobs: list[Job],
    *,
    force: bool = False,
    rerun_stale: bool = False,
    dry_run: bool = False,
    only: str | None = None,
    wandb: str | None = None,
    workers: int = 1,
    cluster: Cluster | None = None,
) -> int:
    """Run the jobs; returns the number of failed jobs (jobs whose inputs are missing count as failed).

    A stale run stops the launch before anything runs, unless `rerun_stale` (rerun just those) or `force` (rerun
    every job). `dry_run` prints the plan and writes nothing. `cluster` submits the jobs through submitit."""
    if only:
        matched = [j for j in jobs if matches(j, only)]
        if not matched:
            names = ", ".join(j.name for j in jobs)
            raise UserError(f"--only {only!r} matches no job of this stage; its jobs are: {names}")
        jobs = matched
    planned = plan(exp, jobs, force)
    if dry_run:
        planned.print(exp)
        return 0
    if planned.stale and not rerun_stale:
        lines = "\n".join(f"  {job.ref}: {'; '.join(reasons)}" for job, reasons in planned.stale)
        raise UserError(
            f"{len(planned.stale)} finished run(s) no longer match what the grid asks for:\n{lines}\n"
            "rerun just those with --rerun-stale (each is replaced once its rerun finishes), "
            "or keep them and write the new runs to another --out"
        )
    world = exp.accelerator.num_processes
    if world > 1 and (workers > 1 or cluster is not None):
        raise UserError(
            "a data-parallel launch (accelerate launch, torchrun) runs its jobs one at a time: "
            "drop --workers and --launcher"
        )
    wandb = resolve_wandb(wandb)
    sweep_leftovers(*exp.scratch_folders())
    todo = planned.todo + [job for job, _ in planned.stale]
    running = [replace(job, rerun=is_done(exp.run_dir(job.ref))) for job in todo]
    together = f", each data parallel over {world} processes" if world > 1 else ""
    finished = f"{planned.skipped} already finished (use --force to rerun)"
    print(f"{len(running)} job(s) to run, {finished}{together}", flush=True)
    failures = _run(exp, planned, running, wandb, workers, cluster)
    print(f"\n{len(running) - len(failures)} finished, {len(failures)} failed, {planned.skipped} skipped")
    for ref, message in failures:
        print(f"  FAILED {ref}: {message}")
    return len(failures)


def _run(exp: Experiment, planned: Plan, running: list[Job], wandb: str, workers: int, cluster: Cluster | None):
    """The jobs that can run through the chosen backend; (ref, message) of each failed or blocked job."""
    failures = []
    for message, waiting in planned.blocked.items():
        print(f"not run, {len(waiting)} job(s) wait for it: {message}", flush=True)
        failures += [(job.ref, "not run: an input is missing (see above)") for job in waiting]
    waiting = {job.ref for jobs in planned.blocked.values() for job in jobs}
    runnable = [job for job in running if job.ref not in waiting]
    slots = worker_slots(workers)
    if runnable and (cluster is not None or len(slots) > 1):
        prepare(exp)  # the block cache once, here, before other processes could race to write it
    if cluster is not None and runnable:
        return failures + run_on_cluster(exp, runnable, wandb, cluster)
    if len(slots) > 1 and runnable:
        return failures + run_in_workers(exp, runnable, slots, wandb)
    return failures + run_here(exp, runnable, planned.params, wandb)
