"""A job: one run of one stage's grid. Validated against its stage's schema before anything runs, executed into
its atomic run folder, and described as plain JSON for another process (a worker, a cluster job) to run."""

from __future__ import annotations

import fnmatch
import shutil
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

from undo.errors import UserError
from undo.experiment import Experiment
from undo.params import InvalidParams, StageParams
from undo.runner.allocator import keep_freed_memory
from undo.runs.identity import job_config, stale_reasons
from undo.runs.lock import RunLock
from undo.runs.rundir import RunDir, is_done
from undo.runs.tracking import Tracker
from undo.stages import distill, pretrain, relearn, unlearn
from undo.training.loop import Interrupted

STAGES: dict[str, ModuleType] = {
    "pretrain": pretrain,
    "unlearn": unlearn,
    "distill": distill,
    "relearn": relearn,
}  # each with its `Params` schema and `run(exp, rundir, tracker, params)`


@dataclass
class Job:
    stage: str
    name: str
    params: dict = field(default_factory=dict)
    rerun: bool = False  # its run was finished when the launch planned it (a forced or stale rerun)

    @property
    def ref(self) -> str:
        return f"{self.stage}/{self.name}"


def matches(job: Job, pattern: str) -> bool:
    """--only: a glob over the job's name or its stage/name."""
    return fnmatch.fnmatch(job.ref, pattern) or fnmatch.fnmatch(job.name, pattern)


def stage_module(stage: str) -> ModuleType:
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}: choose one of {sorted(STAGES)}")
    return STAGES[stage]


def validate(exp: Experiment, jobs: list[Job]) -> dict[str, StageParams]:
    """Each job's typed params; a UserError lists every bad value of every job (job, key, problem) at once."""
    parsed, problems = {}, []
    for job in jobs:
        try:
            parsed[job.ref] = stage_module(job.stage).Params.parse(job.params, exp.domains)
        except InvalidParams as err:
            problems += [f"  {job.ref}: {line}" for line in err.problems]
    if problems:
        raise UserError(f"{len(problems)} bad grid value(s), nothing was run:\n" + "\n".join(problems))
    return parsed


def execute(exp: Experiment, job: Job, params: StageParams, wandb: str | None = None) -> dict:
    """Run one job in this process into its atomic run folder; returns the run's summary. While another process
    (another launch into the same tree) runs the same job, wait for it; a run that another launch finished since
    this one planned it is taken when it is current, not trained again."""
    keep_freed_memory()  # once per process: every process that runs jobs comes through here
    if exp.accelerator.num_processes > 1:  # data parallel: the processes run the job together
        return _run(exp, job, params, wandb)
    with RunLock(exp.run_dir(job.ref)):
        if not job.rerun and is_done(exp.run_dir(job.ref)) and not stale_reasons(exp, job, params):
            print(f"{job.ref}: finished by another launch; taking its run", flush=True)
            return exp.summary(job.ref)
        return _run(exp, job, params, wandb)


def _run(exp: Experiment, job: Job, params: StageParams, wandb: str | None) -> dict:
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
        message = str(err) if isinstance(err, UserError | Interrupted) else f"{type(err).__name__}: {err}"
        if not isinstance(err, UserError | KeyboardInterrupt | Interrupted | SystemExit):
            (run.path / "traceback.txt").write_text(traceback.format_exc())
        if tracker is not None:
            tracker.finish(failed=True)
        run.fail(message)
        raise


def failure_message(exp: Experiment, job: Job, fallback: str) -> str:
    """What a job that ran in another process wrote to its ERROR file, else `fallback`."""
    error = exp.run_dir(job.ref).with_name(f".{job.name}.failed") / "ERROR"
    return error.read_text().strip() if error.is_file() else fallback


def experiment_spec(exp: Experiment, wandb: str | None) -> dict:
    """Everything another process (a worker, a cluster job) needs to rebuild `exp`: plain JSON."""
    return {
        "setting": exp.setting.name,
        "scale": exp.scale.name,
        "out": str(exp.out.resolve()),
        "checkpoint_every": exp.checkpoint_every,
        "keep_checkpoint": exp.keep_checkpoint,
        "wandb": wandb,
    }


def experiment_from(spec: dict) -> Experiment:
    return Experiment(
        spec["setting"], spec["scale"], Path(spec["out"]), spec["checkpoint_every"], spec["keep_checkpoint"]
    )


def job_spec(exp: Experiment, job: Job, wandb: str | None) -> dict:
    """`experiment_spec` and the job: what a cluster job runs."""
    return {**experiment_spec(exp, wandb), "job": asdict(job)}


def run_spec(spec: dict) -> None:
    """Run a job described by `job_spec` in this process (raises when it fails)."""
    exp = experiment_from(spec)
    job = Job(**spec["job"])
    execute(exp, job, validate(exp, [job])[job.ref], spec["wandb"])
