"""Grid -> jobs -> devices: one job per visible GPU at a time; on a CPU one after another in this process, or
`workers` jobs at once in worker processes that share the cores.

Finished runs (DONE) are skipped unless forced; a failed job does not stop the others; a summary closes the
launch and the exit code is non-zero when any job failed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from undo.errors import UserError
from undo.rundir import RunDir, is_done


@dataclass
class Job:
    stage: str
    name: str
    params: dict = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.stage}/{self.name}"


def stage_function(stage: str):
    from importlib import import_module

    try:
        return import_module(f"undo.stages.{stage}").run
    except ModuleNotFoundError:
        raise UserError(f"unknown stage {stage!r}") from None


def execute(exp, job: Job, wandb: str | None = None) -> dict:
    """Run one job in this process into its atomic run folder; returns the run's summary."""
    from undo.tracking import Tracker

    config = {
        "setting": exp.setting.name,
        "scale": exp.scale.name,
        "stage": job.stage,
        "name": job.name,
        "params": job.params,
    }
    run = RunDir(exp.run_dir(job.ref), config)
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
        summary = stage_function(job.stage)(exp, run, tracker, job.params)
        run.write_json("summary.json", summary)
        tracker.summary({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        tracker.finish()
        run.complete()
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
    """(label, environment) of each worker process: one per visible GPU; without GPUs, `workers` processes
    with an equal share of the cores each (two torch processes that each take every core thrash)."""
    gpus = visible_gpus()
    if gpus:
        return [(f"GPU {gpu}", {"CUDA_VISIBLE_DEVICES": gpu}) for gpu in gpus]
    if workers < 2:
        return []
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    return [(f"CPU worker {i}", env) for i in range(workers)]


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
    dry_run: bool = False,
    only: str | None = None,
    wandb: str | None = None,
    workers: int = 1,
) -> int:
    """Run the jobs; returns the number of failed jobs."""
    if only:
        jobs = [j for j in jobs if fnmatch.fnmatch(j.ref, only) or fnmatch.fnmatch(j.name, only)]
    todo = [j for j in jobs if force or not is_done(exp.run_dir(j.ref))]
    skipped = len(jobs) - len(todo)
    if dry_run:
        for job in jobs:
            state = "done" if is_done(exp.run_dir(job.ref)) else "todo"
            print(f"{state:5} {exp.run_dir(job.ref)}  {json.dumps(job.params, sort_keys=True)}")
        return 0
    print(f"{len(todo)} job(s) to run, {skipped} already finished (use --force to rerun)", flush=True)
    slots = worker_slots(workers)
    if len(slots) > 1 and todo:
        from undo.stages.prepare import prepare

        prepare(exp)  # build the block cache once, before workers could race to write it
        failures = _run_in_workers(exp, todo, slots, wandb)
    else:
        failures = _run_here(exp, todo, wandb)
    print(f"\n{len(todo) - len(failures)} finished, {len(failures)} failed, {skipped} skipped")
    for ref, message in failures:
        print(f"  FAILED {ref}: {message}")
    return len(failures)


def _run_here(exp, jobs: list[Job], wandb) -> list[tuple[str, str]]:
    failures = []
    for i, job in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {job.ref}", flush=True)
        start = time.perf_counter()
        try:
            execute(exp, job, wandb)
            print(f"[{i}/{len(jobs)}] {job.ref} done in {time.perf_counter() - start:.0f}s", flush=True)
        except KeyboardInterrupt:
            raise
        except Exception as err:
            message = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
            print(f"[{i}/{len(jobs)}] {job.ref} FAILED: {message}", flush=True)
            failures.append((job.ref, message))
    return failures


def _run_in_workers(exp, jobs: list[Job], slots: list[tuple[str, dict]], wandb) -> list[tuple[str, str]]:
    """A worker process per slot (a GPU, or a share of the CPU cores); logs go to <stage>/.logs/<name>.log."""
    pending, running, failures = list(jobs), {}, []
    while pending or running:
        for slot, (label, env) in enumerate(slots):
            if slot not in running and pending:
                job = pending.pop(0)
                log = exp.root / job.stage / ".logs" / f"{job.name}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                spec = json.dumps(
                    {
                        "setting": exp.setting.name,
                        "scale": exp.scale.name,
                        "out": str(exp.out),
                        "wandb": wandb,
                        "job": asdict(job),
                    }
                )
                with open(log, "w") as handle:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "undo.launch", spec],
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, **env},
                    )
                running[slot] = (job, proc, log)
                print(f"{label}: {job.ref} (log {log})", flush=True)
        time.sleep(0.5)
        for slot, (job, proc, log) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[slot]
            if proc.returncode:
                error = exp.run_dir(job.ref).with_name(f".{job.name}.failed") / "ERROR"
                message = error.read_text().strip() if error.is_file() else f"exit code {proc.returncode}, see {log}"
                failures.append((job.ref, message))
                print(f"{slots[slot][0]}: {job.ref} FAILED: {message}", flush=True)
            else:
                print(f"{slots[slot][0]}: {job.ref} done", flush=True)
    return failures


def _worker(spec: str) -> int:
    from undo.experiment import Experiment

    spec = json.loads(spec)
    exp = Experiment(spec["setting"], spec["scale"], Path(spec["out"]))
    try:
        execute(exp, Job(**spec["job"]), spec["wandb"])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
