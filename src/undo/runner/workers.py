"""Several jobs at once: a long-lived worker process per slot (a GPU, or a share of the CPU cores) runs job after
job, so it pays its start-up (torch, the tokenizer) once, not per job. Each job's output goes to
<stage>/.logs/<name>.log. A job that fails is reported and its worker goes on; a worker that dies (killed for
memory, a crash) fails its job and is replaced."""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

import torch

from undo.errors import UserError
from undo.experiment import Experiment
from undo.runner.jobs import Job, execute, experiment_from, experiment_spec, failure_message, validate

SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: the slot's threads and GPU apply


@dataclass(frozen=True)
class Slot:
    label: str  # "GPU 3 slot 1", "CPU worker 0"
    env: dict[str, str]  # threads and the visible GPU of the worker process


def visible_gpus() -> list[str]:
    if not torch.cuda.is_available():
        return []
    ids = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = torch.cuda.device_count()
    return [i.strip() for i in ids.split(",")][:count] if ids else [str(i) for i in range(count)]


def worker_slots(workers: int = 1) -> list[Slot]:
    """`workers` slots per visible GPU (small jobs share a GPU, each with an equal share of its memory), or without
    GPUs `workers` slots; either way each gets an equal share of the CPU cores (two torch processes that each take
    every core thrash). No slots: run in this process."""
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
        slots.append(Slot(label, env))
    return slots


@dataclass(eq=False)
class Worker:
    """A worker process of one slot and the job it runs (None: idle)."""

    slot: Slot
    process: multiprocessing.Process
    connection: Connection
    job: Job | None = None
    log: Path | None = None

    @classmethod
    def start(cls, slot: Slot, spec: dict) -> Worker:
        ours, theirs = SPAWN.Pipe()
        process = SPAWN.Process(target=_serve, args=(theirs, slot.env, spec), daemon=True)
        process.start()
        theirs.close()
        return cls(slot, process, ours)

    def assign(self, exp: Experiment, job: Job) -> None:
        self.log = exp.root / job.stage / ".logs" / f"{job.name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.connection.send((asdict(job), str(self.log)))
        self.job = job
        print(f"{self.slot.label}: {job.ref} (log {self.log})", flush=True)

    def outcome(self, exp: Experiment) -> tuple[bool, str | None]:
        """(whether the job ended, its failure message or None); a dead worker fails its job."""
        if self.connection.poll():
            try:
                return True, self.connection.recv()
            except EOFError:  # the worker died mid-job
                self.process.join()
        elif self.process.exitcode is None:
            return False, None
        reason = f"its worker died (exit code {self.process.exitcode}), see {self.log}"
        return True, failure_message(exp, self.job, reason)

    def stop(self) -> None:
        if self.process.is_alive():
            self.connection.send(None)
        self.process.join(timeout=30)


def run_in_workers(exp: Experiment, jobs: list[Job], slots: list[Slot], wandb: str) -> list[tuple[str, str]]:
    """(ref, message) of each failed job."""
    spec = experiment_spec(exp, wandb)
    pending, failures = list(jobs), []
    workers = [Worker.start(slot, spec) for slot in slots[: len(pending)]]
    for worker in workers:
        worker.assign(exp, pending.pop(0))
    while busy := [w for w in workers if w.job is not None]:
        wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
        for worker in busy:
            ended, failed = worker.outcome(exp)
            if not ended:
                continue
            job, worker.job = worker.job, None
            print(f"{worker.slot.label}: {job.ref} " + (f"FAILED: {failed}" if failed else "done"), flush=True)
            if failed:
                failures.append((job.ref, failed))
            if pending:
                if not worker.process.is_alive():  # replace a dead worker
                    at = workers.index(worker)
                    worker = workers[at] = Worker.start(worker.slot, spec)
                worker.assign(exp, pending.pop(0))
    for worker in workers:
        worker.stop()
    return failures


def _serve(connection: Connection, env: dict[str, str], spec: dict) -> None:
    """A worker's life: take the slot's threads (and GPU), build the experiment once, then run each job sent until
    None comes, answering None when it finished or its failure message."""
    os.environ.update(env)
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
