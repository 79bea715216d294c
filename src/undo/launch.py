"""Grid -> jobs -> devices: one job per visible GPU at a time; on a CPU one after another in this process, or
`workers` jobs at once in worker processes that share the cores.

Every job is validated before any runs; finished runs are skipped when current and stop the launch when stale
(see `launch`); jobs whose inputs are missing are reported once per missing input; a failed job does not stop
the others; a summary closes the launch and the exit code is non-zero when any job failed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from undo.errors import UserError
from undo.files import sweep_leftovers
from undo.rundir import RunDir, is_done


@dataclass
class Job:
    stage: str
    name: str
    params: dict = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.stage}/{self.name}"


def matches(job: Job, pattern: str) -> bool:
    """--only: a glob over the job's name or its stage/name."""
    return fnmatch.fnmatch(job.ref, pattern) or fnmatch.fnmatch(job.name, pattern)


def stage_module(stage: str):
    """`undo.stages.<stage>`: its `Params` schema and its `run(exp, rundir, tracker, params)`."""
    from importlib import import_module

    try:
        return import_module(f"undo.stages.{stage}")
    except ModuleNotFoundError:
        raise UserError(f"unknown stage {stage!r}") from None


def validate(exp, jobs: list[Job]) -> dict[str, object]:
    """Each job's typed params; a UserError lists every bad value of every job (job, key, problem) at once."""
    from undo.params import InvalidParams

    parsed, problems = {}, []
    for job in jobs:
        try:
            parsed[job.ref] = stage_module(job.stage).Params.parse(job.params, exp.domains)
        except InvalidParams as err:
            problems += [f"  {job.ref}: {line}" for line in err.problems]
    if problems:
        raise UserError(f"{len(problems)} bad grid value(s), nothing was run:\n" + "\n".join(problems))
    return parsed


def execute(exp, job: Job, params, wandb: str | None = None) -> dict:
    """Run one job in this process into its atomic run folder; returns the run's summary."""
    from undo.allocator import keep_freed_memory
    from undo.identity import job_config
    from undo.tracking import Tracker

    keep_freed_memory()  # once per process: every process that runs jobs comes through here

    config = job_config(exp, job)
    folder = exp.run_dir(job.ref)
    main = exp.accelerator.is_main_process
    if not main:  # another data-parallel process of the same job: its files are scratch, removed at the end
        folder = folder.with_name(f".{folder.name}.rank{exp.accelerator.process_index}")
        wandb = "off"
    run = RunDir(folder, config, exp.checkpoint_every, exp.keep_checkpoint)
    tracker = None
    try:
        tracker = Tracker(
            run.path / "metrics.jsonl",
            config,
            name=f"{exp.setting.name}/{exp.scale.name}/{job.ref}",
            group=f"{exp.setting.name}-{exp.scale.name}-{job.stage}",
            wandb_dir=exp.wandb_dir,
            mode=wandb,
        )
        summary = stage_module(job.stage).run(exp, run, tracker, params)
        run.write_json("summary.json", summary)
        tracker.summary({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        tracker.finish()
        run.complete()
        if not main:
            shutil.rmtree(folder, ignore_errors=True)
        exp.accelerator.wait_for_everyone()
        return summary
    except BaseException as err:
        message = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
        if not isinstance(err, (UserError, KeyboardInterrupt)):
            (run.path / "traceback.txt").write_text(traceback.format_exc())
        if tracker is not None:
            tracker.finish(failed=True)
        run.fail(message)
        raise


def worker_slots(workers: int = 1) -> list[tuple[str, dict[str, str]]]:
    """(label, environment) of each worker process: `workers` per visible GPU (small jobs share a GPU, each
    with an equal share of its memory), or without GPUs `workers` processes; either way each gets an equal
    share of the CPU cores (two torch processes that each take every core thrash)."""
    gpus = visible_gpus()
    if not gpus and workers < 2:
        return []
    per_gpu = [(gpu, k) for gpu in gpus for k in range(workers)] if gpus else [(None, k) for k in range(workers)]
    threads = str(max(1, (os.cpu_count() or 1) // len(per_gpu)))
    slots = []
    for gpu, k in per_gpu:
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "CUDA_VISIBLE_DEVICES": gpu or ""}
        if gpu is not None and workers > 1:
            env["UNDO_GPU_SHARE"] = str(workers)
        label = f"CPU worker {k}" if gpu is None else f"GPU {gpu}" + (f" slot {k}" if workers > 1 else "")
        slots.append((label, env))
    return slots


def visible_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    ids = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = torch.cuda.device_count()
    return [i.strip() for i in ids.split(",")][:count] if ids else [str(i) for i in range(count)]


def launch(
    exp,
    jobs: list[Job],
    *,
    force: bool = False,
    rerun_stale: bool = False,
    dry_run: bool = False,
    only: str | None = None,
    wandb: str | None = None,
    workers: int = 1,
    cluster=None,
) -> int:
    """Run the jobs; returns the number of failed jobs (jobs whose inputs are missing count as failed).

    A finished run is skipped when it is current (undo.identity); a stale one stops the launch before anything
    runs, unless `rerun_stale` (rerun just those) or `force` (rerun every job). `dry_run` reports the same plan
    and writes nothing. `cluster` (undo.cluster.Cluster) submits the jobs through submitit instead."""
    from undo.identity import stale_reasons
    from undo.tracking import resolve_wandb

    if only:
        matched = [j for j in jobs if matches(j, only)]
        if not matched:
            names = ", ".join(j.name for j in jobs)
            raise UserError(f"--only {only!r} matches no job of this stage; its jobs are: {names}")
        jobs = matched
    params = validate(exp, jobs)
    todo, stale, skipped = [], [], 0
    for job in jobs:
        if force or not is_done(exp.run_dir(job.ref)):
            todo.append(job)
        elif reasons := stale_reasons(exp, job, params[job.ref]):
            stale.append((job, reasons))
        else:
            skipped += 1
    blocked = _missing_inputs(exp, todo + [job for job, _ in stale], params)
    if dry_run:
        _print_plan(exp, jobs, todo, stale, blocked)
        return 0
    if stale and not rerun_stale:
        lines = "\n".join(f"  {job.ref}: {'; '.join(reasons)}" for job, reasons in stale)
        raise UserError(
            f"{len(stale)} finished run(s) no longer match what the grid asks for:\n{lines}\n"
            "rerun just those with --rerun-stale (each is replaced once its rerun finishes), "
            "or keep them and write the new runs to another --out"
        )
    todo += [job for job, _ in stale]
    wandb = resolve_wandb(wandb)
    sweep_leftovers(*exp.scratch_folders())
    world = exp.accelerator.num_processes
    if world > 1 and (workers > 1 or cluster is not None):
        raise UserError(
            "a data-parallel launch (accelerate launch, torchrun) runs its jobs one at a time: "
            "drop --workers and --launcher"
        )
    together = f", each data parallel over {world} processes" if world > 1 else ""
    print(f"{len(todo)} job(s) to run, {skipped} already finished (use --force to rerun){together}", flush=True)
    failures = []
    for message, waiting in blocked.items():
        print(f"not run, {len(waiting)} job(s) wait for it: {message}", flush=True)
        failures += [(job.ref, "not run: an input is missing (see above)") for job in waiting]
    waiting = {job.ref for jobs in blocked.values() for job in jobs}
    runnable = [job for job in todo if job.ref not in waiting]
    slots = worker_slots(workers)
    if cluster is not None and runnable:
        from undo.cluster import run_on_cluster
        from undo.stages.prepare import prepare

        prepare(exp)  # the block cache once, here, before the cluster jobs read it
        failures += run_on_cluster(exp, runnable, wandb, cluster)
    elif len(slots) > 1 and runnable:
        from undo.stages.prepare import prepare

        prepare(exp)  # build the block cache once, before workers could race to write it
        failures += _run_in_workers(exp, runnable, slots, wandb)
    else:
        failures += _run_here(exp, runnable, params, wandb)
    print(f"\n{len(todo) - len(failures)} finished, {len(failures)} failed, {skipped} skipped")
    for ref, message in failures:
        print(f"  FAILED {ref}: {message}")
    return len(failures)


def _missing_inputs(exp, jobs: list[Job], params: dict) -> dict[str, list[Job]]:
    """{why an input is not there: the jobs that need it}, for inputs that are not finished runs."""
    from undo.selection import resolve

    blocked: dict[str, list[Job]] = {}
    for job in jobs:
        for ref in params[job.ref].inputs().values():
            try:
                exp.finished(resolve(exp, ref, record=False))
            except UserError as err:
                blocked.setdefault(str(err), []).append(job)
                break
    return blocked


def _print_plan(exp, jobs, todo, stale, blocked) -> None:
    waiting = {job.ref: message for message, js in blocked.items() for job in js}
    why_stale = {job.ref: "; ".join(reasons) for job, reasons in stale}
    for job in jobs:
        if job.ref in waiting:
            state, note = "wait", f"  (input missing: {waiting[job.ref]})"
        elif job.ref in why_stale:
            state, note = "stale", f"  ({why_stale[job.ref]})"
        else:
            state, note = ("todo" if job in todo else "done"), ""
        print(f"{state:5} {exp.run_dir(job.ref)}  {json.dumps(job.params, sort_keys=True)}{note}")


def _run_here(exp, jobs: list[Job], params: dict, wandb) -> list[tuple[str, str]]:
    failures = []
    for i, job in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {job.ref}", flush=True)
        start = time.perf_counter()
        try:
            execute(exp, job, params[job.ref], wandb)
            print(f"[{i}/{len(jobs)}] {job.ref} done in {time.perf_counter() - start:.0f}s", flush=True)
        except KeyboardInterrupt:
            raise
        except Exception as err:
            message = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
            print(f"[{i}/{len(jobs)}] {job.ref} FAILED: {message}", flush=True)
            failures.append((job.ref, message))
    return failures


def _run_in_workers(exp, jobs: list[Job], slots: list[tuple[str, dict]], wandb) -> list[tuple[str, str]]:
    """A long-lived worker process per slot (a GPU, or a share of the CPU cores) runs job after job, so it pays its
    start-up (torch, the tokenizer) once, not per job; each job's output goes to <stage>/.logs/<name>.log. A job
    that fails is reported and its worker goes on; a worker that dies (killed for memory, a crash) fails its job
    and is replaced."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: the slot's threads and GPU apply
    spec = experiment_spec(exp, wandb)
    pending, failures = list(jobs), []
    workers: dict[int, list] = {}  # slot -> [process, connection, (job, log) or None]

    def start(slot: int) -> None:
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, slots[slot][1], spec), daemon=True)
        process.start()
        theirs.close()
        workers[slot] = [process, ours, None]

    def assign(slot: int) -> None:
        job = pending.pop(0)
        log = exp.root / job.stage / ".logs" / f"{job.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        workers[slot][1].send((asdict(job), str(log)))
        workers[slot][2] = (job, log)
        print(f"{slots[slot][0]}: {job.ref} (log {log})", flush=True)

    def died(slot: int, job: Job, log: Path) -> str:
        exit_code = workers[slot][0].exitcode
        if pending:
            start(slot)
        return failure_message(exp, job, f"its worker died (exit code {exit_code}), see {log}")

    for slot in range(min(len(slots), len(pending))):
        start(slot)
        assign(slot)
    while busy := [w for w in workers.values() if w[2] is not None]:
        wait([w[1] for w in busy] + [w[0].sentinel for w in busy])
        for slot, (process, connection, current) in list(workers.items()):
            if current is None:
                continue
            job, log = current
            if connection.poll():
                try:
                    failed = connection.recv()
                except EOFError:  # the worker died mid-job
                    process.join()
                    failed = died(slot, job, log)
            elif process.exitcode is not None:
                failed = died(slot, job, log)
            else:
                continue
            workers[slot][2] = None
            if failed:
                failures.append((job.ref, failed))
                print(f"{slots[slot][0]}: {job.ref} FAILED: {failed}", flush=True)
            else:
                print(f"{slots[slot][0]}: {job.ref} done", flush=True)
            if pending:
                assign(slot)
    for process, connection, _ in workers.values():
        if process.is_alive():
            connection.send(None)
        process.join(timeout=30)
    return failures


def _serve(connection, env: dict[str, str], spec: dict) -> None:
    """A worker's life: take the slot's threads (and GPU), build the experiment once, then run each job sent until
    None comes, answering None when it finished or its failure message."""
    os.environ.update(env)
    import torch

    torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    share = int(env.get("UNDO_GPU_SHARE", "1"))
    if share > 1:
        torch.cuda.set_per_process_memory_fraction(1 / share)  # several jobs on one GPU: none takes it all
    exp = experiment_from(spec)
    while (task := connection.recv()) is not None:
        fields, log = task
        job = Job(**fields)
        with _output_to(log):
            try:
                execute(exp, job, validate(exp, [job])[job.ref], spec["wandb"])
                failed = None
            except Exception as err:  # the job's own failure: its run folder says why, the worker goes on
                if not isinstance(err, UserError):
                    traceback.print_exc()
                failed = failure_message(exp, job, str(err) if isinstance(err, UserError) else repr(err))
        connection.send(failed)


@contextmanager
def _output_to(path: str):
    """Send this process's stdout and stderr, Python's and C's (file descriptors 1 and 2), to `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def failure_message(exp, job: Job, fallback: str) -> str:
    """What a job that ran in another process wrote to its ERROR file, else `fallback`."""
    error = exp.run_dir(job.ref).with_name(f".{job.name}.failed") / "ERROR"
    return error.read_text().strip() if error.is_file() else fallback


def experiment_spec(exp, wandb: str | None) -> dict:
    """Everything another process (a worker, a cluster job) needs to rebuild `exp`: plain JSON."""
    return {
        "setting": exp.setting.name,
        "scale": exp.scale.name,
        "out": str(exp.out.resolve()),
        "checkpoint_every": exp.checkpoint_every,
        "keep_checkpoint": exp.keep_checkpoint,
        "wandb": wandb,
    }


def experiment_from(spec: dict):
    from undo.experiment import Experiment

    return Experiment(
        spec["setting"], spec["scale"], Path(spec["out"]), spec["checkpoint_every"], spec["keep_checkpoint"]
    )


def job_spec(exp, job: Job, wandb: str | None) -> dict:
    """`experiment_spec` and the job: what a cluster job runs."""
    return {**experiment_spec(exp, wandb), "job": asdict(job)}


def run_spec(spec: dict) -> None:
    """Run a job described by `job_spec` in this process (raises when it fails)."""
    exp = experiment_from(spec)
    job = Job(**spec["job"])
    execute(exp, job, validate(exp, [job])[job.ref], spec["wandb"])
