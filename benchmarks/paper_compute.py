"""Compute of the paper-scale grids on paper: distillation as % of the oracle's pretraining in two conventions, and
GPU-hours per stage and setting, from the grids (run_*.py) and measured throughputs.

    uv run python benchmarks/paper_compute.py [--setting language] [--throughput FILE]

Two conventions for a student's cost as % of the data-filtered oracle's pretraining:
- FLOPs, the teacher counted (this project's compute_pct, undo.training.loop.training_flops): 6N per trained student
  token plus 2N per teacher-forward token, over the oracle's 6N per pretraining token;
- student tokens (the public code's step ratio, also a third-party reproduction's): the student's trained tokens
  over the oracle's pretraining tokens, the teacher's forward not counted.
Teacher, student and oracle share one architecture, so N cancels and the first reads 8/6 of the second.

GPU-hours count, per job, its training tokens (SAM's second pass again), the forward tokens of a teacher or frozen
reference copy, and its evaluations' forward tokens, each at a throughput: seconds = trained / train rate +
(frozen + evaluated) / forward rate. Evaluations happen where undo.training.loop and the stages put them: step 0
(pretraining, distillation; an unlearning run or an attack reads its start model's summary instead, unless the
attacks evaluate a sample of their own, Scale.attack_eval_blocks), every `eval_every` steps, at `eval_at`, at the
last step, and once more on every metric after distillation, on the retain metric after an attack (unless its
`retain_after` is off). Every job runs the scale's model, on one GPU (data parallel jobs take the same GPU-hours at
the same MFU).

UNDO stops by its rule, so its cost is shown at its step cap and at an assumed stop: the student's tokens at
PAPER_UNDO_SHARE of the oracle's at the grid's largest alpha (the paper: UNDO at its strongest setting matches data
filtering "using only 60-80% of the compute", read as student tokens: docs/scales.md#compute-two-conventions), in
proportion to alpha below it (the paper: compute grows roughly linearly with alpha), rounded up to the next check
of the rule. Without an oracle (WMDP) the assumed stop is the cap: the public WMDP script ran all its steps.

--throughput FILE: JSON {model preset: {"train": tokens/s, "forward": tokens/s}}, e.g.
{"0.1B": {"train": 43516, "forward": 60742}}: "train" through a training step (forward and backward, losses
chunked as the paper grids do), "forward" through a forward-only pass. A model not in the file is scaled from the
file's first entry by its parameters (6N per token: the same MFU). Default: MEASURED.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the run_*.py grids next to this folder

import run_distill
import run_pretrain
import run_relearn
import run_unlearn
from undo.data import arithmetic
from undo.evaluate.arithmetic import MAX_NEW_TOKENS, ArithmeticAccuracy
from undo.evaluate.ce import DomainCE
from undo.evaluate.multiple_choice import MultipleChoice
from undo.evaluate.tasks import requested
from undo.runner.jobs import stage_module
from undo.runs.names import DISTILLED, ORACLE, UNDO
from undo.settings import SETTINGS
from undo.training.loop import Evaluation, training_flops
from undo.unlearning import METHODS

STAGES = {"pretrain": run_pretrain, "unlearn": run_unlearn, "distill": run_distill, "relearn": run_relearn}
# The first H200 check (docs/scales.md#the-first-check, commit 307063d): the 0.1B model at 256k entries, 4 x 2048
# tokens a step, losses in chunks of 1024. A distillation step is a teacher forward and a student step, so the
# teacher's forward rate is what the distillation step's time per token adds to a pretraining step's.
PRETRAIN_STEP, DISTILL_STEP = 43_516, 25_353  # tokens/s
MEASURED = {"0.1B": {"train": PRETRAIN_STEP, "forward": 1 / (1 / DISTILL_STEP - 1 / PRETRAIN_STEP)}}
PAPER_UNDO_SHARE = 0.7  # the middle of the paper's 60-80%, as student tokens
# lm-eval tasks: test questions and an assumed mean prompt length in Gemma tokens (instruction, shots, question, four
# choices; not measured: the data is on the hub). lm-eval scores the four one-letter answers of a question from one
# forward of its prompt (HFLM's logits cache), so a question costs one prompt.
LM_EVAL = {"wmdp_bio": (1273, 150), "wmdp_cyber": (1987, 400), "mmlu": (14042, 600)}


@dataclass
class Tokens:
    trained: float = 0  # through a trained model (forward and backward)
    frozen: float = 0  # through a forward-only model: a distillation teacher, a frozen reference copy
    evaluated: float = 0  # evaluation forwards

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.trained + other.trained, self.frozen + other.frozen, self.evaluated + other.evaluated)

    def hours(self, rate: dict) -> float:
        return (self.trained / rate["train"] + (self.frozen + self.evaluated) / rate["forward"]) / 3600


class Grid:
    """One setting's paper grids and what their cost needs: sequence length, evaluation sizes, the oracle."""

    def __init__(self, name: str):
        self.name, self.setting = name, SETTINGS[name].at("paper")
        self.scale = self.setting.scale("paper")
        self.seq = self.scale.seq_len
        self.jobs = {
            stage: [
                (job, stage_module(stage).Params.parse(job.params)) for job in module.GRIDS.get((name, "paper"), [])
            ]
            for stage, module in STAGES.items()
        }
        oracle = [params for job, params in self.jobs["pretrain"] if job.ref == ORACLE]
        self.oracle_tokens = self.step_tokens(oracle[0]) * oracle[0].optim.steps if oracle else None
        self.max_alpha = max((p.alpha for _, p in self.jobs["distill"] if p.role == UNDO), default=None)

    def step_tokens(self, params) -> int:
        """Tokens of one step of one stream."""
        return params.batch_size * params.optim.grad_accum * self.seq

    def undo_steps(self, params, assumed: bool) -> int:
        """Steps an UNDO student trains: its cap, or the assumed stop (see the module's docstring)."""
        cap = params.optim.steps
        if not assumed or self.oracle_tokens is None:
            return cap
        share = PAPER_UNDO_SHARE * params.alpha / self.max_alpha
        target = max(1, math.ceil(share * self.oracle_tokens / self.step_tokens(params)))
        due = Evaluation(every=params.eval_every, at=params.eval_at).due
        return next((s for s in range(target, cap + 1) if due(s, cap)), cap)

    def percent_of_oracle(self, params, steps: int) -> tuple[float, float]:
        """(FLOPs with the teacher's forward counted, student tokens) of a distillation as % of the oracle's."""
        n = self.step_tokens(params) * steps
        flops = training_flops(1, n, frozen_params=1, frozen_tokens=n)
        return 100 * flops / training_flops(1, self.oracle_tokens), 100 * n / self.oracle_tokens

    def evaluation(self, names: list[str] | None = None, attack: bool = False) -> float:
        """Forward tokens of one evaluation of the named metrics (default: all); `attack`: on the attacks' sample."""
        wanted = requested(self.setting, names)
        total = 0.0
        for task in self.setting.tasks:
            needed = {m.name for m in task.metrics} & wanted
            if isinstance(task, DomainCE) and needed:
                total += self.ce_tokens(task.domain, attack)
            elif isinstance(task, ArithmeticAccuracy) and needed:
                n = self.scale.eval_items or arithmetic.EVAL_ITEMS
                total += generation_tokens(tuple(task.ops), tuple(sorted(needed)), n, self.scale.eval_batch_size)
            elif isinstance(task, MultipleChoice) and needed:
                questions, prompt = LM_EVAL[task.task]
                limit = task.limit or questions  # lm-eval: a share below 1, else a count
                total += (round(questions * limit) if limit < 1 else min(int(limit), questions)) * prompt
        return total

    def ce_tokens(self, domain: str, attack: bool) -> int:
        """Validation blocks of a domain: the scale's cap (the attacks' own where they have one), else the split."""
        cap = self.scale.attack_eval_blocks if attack and self.sampled_attacks else self.scale.eval_blocks
        split = self.scale.corpora[domain].get("validation_tokens")
        sizes = [n for n in (cap, None if split is None else split // self.seq) if n is not None]
        if not sizes:
            raise SystemExit(f"{self.name}: {domain} has neither eval_blocks nor validation_tokens to size it by")
        return min(sizes) * self.seq

    @property
    def sampled_attacks(self) -> bool:
        """Whether attacks evaluate their own sample (then their step 0 is measured, not read from a summary)."""
        return getattr(self.scale, "attack_eval_blocks", None) is not None

    def job(self, stage: str, params, assumed_stop: bool = False) -> Tokens:
        """A job's tokens: trained, through a forward-only model, evaluated."""
        retain, forget = [self.setting.retain.name], [self.setting.forget.name]
        if (stage == "pretrain" and params.start is not None) or (stage == "distill" and params.optim is None):
            return Tokens(evaluated=self.evaluation())  # a start checkpoint scored, or the reset control
        steps = params.optim.steps
        if stage == "distill" and params.role == UNDO and params.tolerance is not None:
            steps = self.undo_steps(params, assumed_stop)
        n = self.step_tokens(params) * steps
        passes = 2 if params.optim.sam_rho > 0 else 1  # SAM's second forward and backward
        points = evaluations(params, steps)
        if stage == "pretrain":
            return Tokens(trained=n, evaluated=(points + 1) * self.evaluation())
        if stage == "unlearn":  # a forget and a retain batch per step
            frozen = n if frozen_copy(params) else 0
            return Tokens(trained=2 * n * passes, frozen=frozen * passes, evaluated=points * self.evaluation())
        if stage == "distill":  # the stop rule reads the retain metric from step 0 on; every metric at the end
            return Tokens(trained=n, frozen=n, evaluated=(points + 1) * self.evaluation(retain) + self.evaluation())
        start = params.reset_forget_rows or params.held_out is not None or self.sampled_attacks
        curve = (points + start) * self.evaluation(forget, attack=True)
        return Tokens(trained=n * passes, evaluated=curve + (self.evaluation(retain) if params.retain_after else 0))


def evaluations(params, steps: int) -> int:
    """Evaluations after step 0 in a run of `steps` steps (undo.training.loop.Evaluation.due)."""
    due = Evaluation(every=params.eval_every, at=params.eval_at).due
    return sum(due(s, params.optim.steps) for s in range(1, steps + 1))


def frozen_copy(params) -> bool:
    """Whether the unlearning method keeps a frozen copy that reads the retain batch (MaxEnt's KL retain term,
    RMU's retain term): as undo.unlearning.maxent and .rmu decide it."""
    args = METHODS[params.method].Args.parse(params.args)
    return getattr(args, "retain", None) == "kl" or (params.method == "rmu" and args.retain_weight > 0)


@cache
def generation_tokens(ops: tuple[str, ...], metrics: tuple[str, ...], n: int, batch: int) -> int:
    """Forward tokens of greedy answers (undo.evaluate.arithmetic): each batch left-padded to its longest prompt,
    then one token a step with the KV cache. Prompt lengths are estimated as Gemma splits text: one token per digit,
    word and punctuation mark, plus the end-of-text token before the prompt (Gemma's tokenizer is gated)."""
    items = [i for i in arithmetic.evaluation_items(list(ops), n) if i.metric in metrics]
    lengths = [1 + len(re.findall(r"\d|[^\W\d_]+|[^\w\s]", i.qa.prompt)) for i in items]
    batches = [lengths[s : s + batch] for s in range(0, len(lengths), batch)]
    return sum(len(rows) * (max(rows) + MAX_NEW_TOKENS - 1) for rows in batches)


@cache
def parameters(model: str) -> int:
    """Unique parameters of a model preset (or of google/gemma-2-2b itself), built on the meta device."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from undo.model.models import GEMMA2_2B, PRESETS, count_parameters

    config = GEMMA2_2B if model == "gemma-2-2b" else {**GEMMA2_2B, **PRESETS[model]}
    with torch.device("meta"):
        return count_parameters(Gemma2ForCausalLM(Gemma2Config(**config)))


def rates(model: str, measured: dict) -> dict:
    """Tokens/s of `model`: measured, or the first measured model's scaled by parameters (the same MFU)."""
    if model in measured:
        return measured[model]
    reference, rate = next(iter(measured.items()))
    scale = parameters(reference) / parameters(model)
    return {kind: tokens_per_s * scale for kind, tokens_per_s in rate.items()}


def stage_tokens(grid: Grid, stage: str, assumed_stop: bool) -> Tokens:
    return sum((grid.job(stage, params, assumed_stop) for _, params in grid.jobs[stage]), Tokens())


def compute_table(grid: Grid) -> list[str]:
    """Full distillation and UNDO at the grid's largest alpha as % of the oracle, both conventions."""
    if grid.oracle_tokens is None:
        return [f"{grid.name}: no oracle in this setting, so no compute as % of one"]
    distill = [p for _, p in grid.jobs["distill"]]
    full = next((p for p in distill if p.role == DISTILLED), None)
    rows = [] if full is None else [(f"full distillation, {full.optim.steps} steps", full, full.optim.steps)]
    undo = next((p for p in distill if p.role == UNDO and p.alpha == grid.max_alpha), None)
    if undo is not None:
        stop = grid.undo_steps(undo, assumed=True)
        rows += [
            (f"UNDO alpha {undo.alpha:g}, per 100 steps", undo, 100),
            (f"UNDO alpha {undo.alpha:g}, at its cap of {undo.optim.steps} steps", undo, undo.optim.steps),
            (f"UNDO alpha {undo.alpha:g}, at the assumed stop ({stop} steps)", undo, stop),
        ]
    lines = [
        f"{grid.name}: % of the oracle's pretraining ({grid.oracle_tokens / 1e9:.3f}B tokens)",
        "| run | compute % (FLOPs, teacher counted) | student tokens % of oracle |",
        "|---|---|---|",
    ]
    for label, params, steps in rows:
        flops, student = grid.percent_of_oracle(params, steps)
        lines.append(f"| {label} | {flops:.1f} | {student:.1f} |")
    return lines


def hours_table(grids: list[Grid], measured: dict) -> list[str]:
    """GPU-hours per setting and stage, UNDO at its cap and at the assumed stop, the tokens behind them (at the cap),
    and the sums per setting, per stage and in all."""
    rows = {}  # (setting, stage): (jobs, tokens at the cap, hours at the cap, hours at the assumed stop)
    for grid in grids:
        rate = rates(grid.scale.model, measured)
        for stage in STAGES:
            cap = stage_tokens(grid, stage, False)
            rows[grid.name, stage] = (
                len(grid.jobs[stage]),
                cap,
                cap.hours(rate),
                stage_tokens(grid, stage, True).hours(rate),
            )
    lines = [
        "| setting | stage | jobs | trained (B tokens) | teacher/frozen forward (B) | evaluation forward (B) "
        "| GPU-h, UNDO at cap | GPU-h, UNDO at assumed stop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, stage), (jobs, t, at_cap, at_stop) in rows.items():
        lines.append(
            f"| {name} | {stage} | {jobs} | {t.trained / 1e9:.2f} | {t.frozen / 1e9:.2f} | {t.evaluated / 1e9:.2f} "
            f"| {at_cap:,.1f} | {at_stop:,.1f} |"
        )
    sums = {(g.name, "all"): [(g.name, stage) for stage in STAGES] for g in grids}
    sums |= {("all", stage): [(g.name, stage) for g in grids] for stage in STAGES}
    sums["all", "all"] = list(rows)
    for (name, stage), keys in sums.items():
        at_cap, at_stop = (sum(rows[key][i] for key in keys) for i in (2, 3))
        lines.append(f"| {name} | {stage} | | | | | {at_cap:,.1f} | {at_stop:,.1f} |")
    return lines


def paper_settings() -> list[str]:
    return [name for name, s in SETTINGS.items() if "paper" in s.scales and (name, "paper") in run_pretrain.GRIDS]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", action="append", help="one paper setting (repeatable); default: every one")
    parser.add_argument("--throughput", type=Path, help="measured tokens/s per model (JSON; see the docstring)")
    args = parser.parse_args(argv)
    measured = json.loads(args.throughput.read_text()) if args.throughput else MEASURED
    grids = [Grid(name) for name in args.setting or paper_settings()]
    print("## Compute of distillation, two conventions\n")
    for grid in grids:
        print("\n".join(compute_table(grid)) + "\n")
        if grid.max_alpha is not None:
            stops = {p.alpha: grid.undo_steps(p, True) for _, p in grid.jobs["distill"] if p.role == UNDO}
            print("assumed UNDO stops (steps): " + ", ".join(f"alpha {a:g}: {s}" for a, s in sorted(stops.items())))
            print()
    print(f"## GPU-hours on one GPU, throughputs {args.throughput or 'of the H200 check (docs/scales.md)'}\n")
    for grid in grids:
        model, rate = grid.scale.model, rates(grid.scale.model, measured)
        source = "measured" if model in measured else f"scaled from {next(iter(measured))} by parameters"
        print(
            f"- {grid.name}: {model} ({parameters(model) / 1e6:,.0f}M parameters), {rate['train']:,.0f} training / "
            f"{rate['forward']:,.0f} forward tokens/s ({source})"
        )
    print()
    print("\n".join(hours_table(grids, measured)) + "\n")
    for grid in grids:
        attacks = stage_tokens(grid, "relearn", False)
        print(
            f"- {grid.name} relearning: {attacks.evaluated / 1e9:.2f}B evaluation tokens against "
            f"{attacks.trained / 1e9:.2f}B training tokens ({attacks.evaluated / max(attacks.trained, 1):.2f}x)"
        )


if __name__ == "__main__":
    main()
