"""The simplest backend: every job one after another in this process."""

from __future__ import annotations

import time

from undo.errors import UserError
from undo.experiment import Experiment
from undo.params import StageParams
from undo.runner.jobs import Job, execute


def run_here(exp: Experiment, jobs: list[Job], params: dict[str, StageParams], wandb: str) -> list[tuple[str, str]]:
    """(ref, message) of each failed job; a failed job does not stop the others."""
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
