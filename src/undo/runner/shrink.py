"""Grids cut to a few steps, to check every stage's wiring before the real runs: the smoke scale (the embedded
grids on a micro model, in seconds) and the rehearsal (the paper grids on a CPU before GPU time is spent, one job
of each shape: see docs/scales.md).

What a CPU cannot hold in a rehearsal is scaled down: one row per micro-batch, two micro-batches a step, logit
losses 256 positions at a time (measured in docs/performance.md), and a randomly
initialised stand-in for a pretrained start checkpoint (undo.data.local).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from copy import deepcopy
from dataclasses import dataclass

from undo.data.local import STAND_IN, write_local_data
from undo.data.tokenizer import GEMMA_SIZED, load_tokenizer
from undo.io.files import temporary
from undo.model.models import PRESETS, build_model
from undo.runner.jobs import Job
from undo.settings import Setting


@dataclass(frozen=True)
class Cut:
    """What a cut grid keeps of each job: its training steps (an attack runs to its scale's last budget instead),
    batch rows, evaluation period, and at most this many micro-batches and loss-chunk positions."""

    steps: int
    batch_size: int
    eval_every: int
    grad_accum: int
    chunk_rows: int | None = None
    start: str | None = None  # replaces a pretrained start checkpoint (WMDP: google/gemma-2-2b)


SMOKE = Cut(steps=3, batch_size=4, eval_every=2, grad_accum=1)
# A rehearsal step of two accumulated micro-batches: as short as a CPU allows at the paper's shapes.
REHEARSAL = Cut(steps=1, batch_size=1, eval_every=1, grad_accum=2, chunk_rows=256, start=str(STAND_IN))


def shrink(jobs: list[Job], cut: Cut, attack_steps: int) -> list[Job]:
    """Every job cut; an attack (relearn) runs for `attack_steps`, its scale's last budget."""
    return [
        Job(job.stage, job.name, _cut(job.params, cut, attack_steps if job.stage == "relearn" else cut.steps))
        for job in jobs
    ]


def _cut(params: dict, cut: Cut, steps: int) -> dict:
    params = deepcopy(params)
    if "start" in params and cut.start:
        params["start"] = cut.start
    for key, value in (("batch_size", cut.batch_size), ("eval_every", cut.eval_every), ("eval_at", [steps])):
        if key in params:
            params[key] = value
    if params.get("chunk_rows") and cut.chunk_rows:  # a loss is the same at any chunk size (tests); less memory
        params["chunk_rows"] = min(params["chunk_rows"], cut.chunk_rows)
    if "optim" in params:
        optim = params["optim"]
        optim.update(steps=steps, warmup=0, grad_accum=min(optim.get("grad_accum", 1), cut.grad_accum))
    search = params.get("search", {})
    for knob, value in (("steps", steps), ("batch_size", cut.batch_size)):  # a searched attack's choices too
        if search.get(knob):
            search[knob] = [value]
    return params


NUMBER = re.compile(r"\d+(\.\d+)?(e-?\d+)?")
READS = ("model", "teacher", "student")
FAMILY_KEYS = {"held_out", "shots", "lora", "probe", "quantize"}  # an attack's family (undo.stages.relearn.family)


def shape(job: Job) -> tuple:
    """What a job exercises: its name with the numbers blanked (`maxent-lr#`, `maxent-sam-lr#`); for distillation
    its role and student (full distillation of any teacher is one code path); for an attack the stage of its
    target and the keys of its family (every attack of a family runs the same way, whatever model it loads)."""
    if job.stage == "distill":
        return (job.stage, job.params.get("role"), job.params.get("student"))
    if job.stage == "relearn":
        return (job.stage, job.params["model"].split("/")[0], *sorted(set(job.params) & FAMILY_KEYS))
    return (job.stage, NUMBER.sub("#", job.name))


def one_of_each(jobs: list[Job]) -> list[Job]:
    """The first job of each shape; jobs that read a run left out are left out too."""
    kept, dropped, shapes = [], set(), set()
    for job in jobs:
        reads = {job.params.get(key) for key in READS}
        if shape(job) in shapes or reads & dropped:
            dropped.add(job.ref)
            continue
        shapes.add(shape(job))
        kept.append(job)
    return kept


def write_stand_in(preset: str) -> None:
    """The rehearsal's start checkpoint: a randomly initialised model of `preset` at Gemma-2's vocabulary size,
    saved once per preset (a start saved from another preset, an earlier stand-in, is replaced)."""
    config = STAND_IN / "config.json"
    if config.is_file() and PRESETS[preset].items() <= json.loads(config.read_text()).items():
        return
    tmp = temporary(STAND_IN)
    build_model(preset, load_tokenizer(GEMMA_SIZED), seed=0).save_pretrained(tmp)
    shutil.rmtree(STAND_IN, ignore_errors=True)
    os.replace(tmp, STAND_IN)


def write_rehearsal_inputs(setting: Setting) -> None:
    """The local files a setting's rehearsal reads, and its stand-in start checkpoint where it has one (WMDP)."""
    paper, rehearsal = setting.scale("paper"), setting.scale("rehearsal")
    write_local_data(paper.corpora)
    if rehearsal.model != paper.model:
        write_stand_in(rehearsal.model)
