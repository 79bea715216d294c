"""Relearning attack: finetune a model with plain next-token CE on forget data and record how fast the forget
metric comes back; or search the attack's learning rate and other knobs with Optuna (undo.stages.attack_search),
each trial an attack of the job's family. The attack's family (undo.attacks) varies what is trained (all weights, LoRA
adapters, the head only), on what (forget data, part of its facts, a few blocks, retain or unrelated text), or
replaces training by quantizing the weights."""

from __future__ import annotations

from pydantic import model_validator

from undo.attacks import linear_probe
from undo.attacks.heldout import HeldOut
from undo.attacks.linear_probe import LinearProbe, forget_operations, probe
from undo.attacks.lora import Lora, merged, with_lora
from undo.attacks.probe import HeadOnly
from undo.attacks.quantize import Quantize, quantize
from undo.experiment import Experiment
from undo.params import Bool, Count, Mix, Optim, RunRef, StageParams
from undo.runs.names import ATTACK
from undo.runs.rundir import RunDir
from undo.runs.selection import resolve
from undo.runs.tracking import Tracker
from undo.stages import attack_search
from undo.stages.attack_search import Search
from undo.stages.common import evaluator, fit, measured, mixture, save, summarize
from undo.stages.forget_vocab import forget_vocabulary, reset_rows
from undo.training.loop import TrainResult
from undo.training.objectives import LanguageModeling


class Params(StageParams):
    model: RunRef  # the attacked model
    optim: Optim | None = None  # with `search`, each trial replaces the lr with its own; None: quantize only
    batch_size: Count | None = None
    search: Search | None = None
    mix: Mix | None = None  # default: the forget domain only; the mixed-data attack adds the retain domain
    save_model: Bool = False
    # first re-initialise the model's forget-vocabulary embedding rows (the report's robustness_after_reset)
    reset_forget_rows: Bool = False
    held_out: HeldOut | None = None  # train on one part of the forget facts, score the forget metric on the rest
    shots: Count | None = None  # the forget data: its first `shots` token blocks, repeated
    lora: Lora | None = None  # train low-rank adapters instead of every weight
    probe: Bool = False  # train the output head and the embeddings only
    quantize: Quantize | None = None  # no training: quantize the weights and read both metrics
    linear_probe: LinearProbe | None = None  # no training: probe the frozen hidden states (needs held_out)
    # the retain metric after the attack (no report reads it; WMDP's MMLU costs more than a paper attack's training)
    retain_after: Bool = True

    @model_validator(mode="after")
    def _consistent(self):
        if self.search is not None and self.save_model:
            raise ValueError("a searched attack trains one model per trial: drop save_model")
        if self.lora is not None and self.probe:
            raise ValueError("lora and probe choose different weights to train: keep one")
        if self.search is not None and self.search.lora_rank and self.lora is None:
            raise ValueError("search.lora_rank searches a LoRA attack's rank: add lora")
        keys = ("optim", "batch_size", "search", "mix", "shots", "lora", "probe", "save_model", "reset_forget_rows")
        training = [key for key in keys if getattr(self, key)]
        untrained = [key for key in ("quantize", "linear_probe") if getattr(self, key) is not None]
        if untrained and training:
            raise ValueError(f"a {untrained[0]} attack does not train: drop {training[0]}")
        if len(untrained) > 1:
            raise ValueError("quantize and linear_probe are two attacks: keep one")
        if self.linear_probe is not None and self.held_out is None:
            raise ValueError("a linear probe is trained on one part of the facts and scored on the other: add held_out")
        if not untrained and (self.optim is None or self.batch_size is None):
            raise ValueError(
                "an attack that trains needs optim and batch_size (or quantize or linear_probe, which do not train)"
            )
        return self

    def inputs(self) -> dict[str, str]:
        return {"model": self.model}


def family(exp: Experiment, params: Params) -> str:
    """The attack family the report groups by: quantize, or what is trained (finetune, lora, probe) joined by
    "+" to its data where that holds no forget-domain text (few-shot-N, retain-only, off-target) and to held-out, e.g.
    "finetune", "probe+held-out", "finetune+retain-only"."""
    if params.quantize is not None:
        return f"quantize-int{params.quantize.bits}-{params.quantize.method}"
    if params.linear_probe is not None:
        return f"{linear_probe.ATTACKER}+held-out"
    parts = ["probe" if params.probe else "lora" if params.lora is not None else "finetune"]
    domains = set(params.mix or exp.setting.forget_mix)
    if params.shots is not None:
        parts.append(f"few-shot-{params.shots}")
    elif not domains & {*exp.setting.forget_mix, *exp.setting.forget_text}:
        parts.append("retain-only" if domains <= set(exp.setting.retain_mix) else "off-target")
    if params.held_out is not None:
        parts.append("held-out")
    return "+".join(parts)


def run(exp: Experiment, rundir: RunDir, tracker: Tracker, params: Params) -> dict:
    target = resolve(exp, params.model)
    rundir.record_inputs(exp, model=target)
    identity = dict(
        role=ATTACK,
        target=target,
        target_ref=params.model,
        reset_forget_rows=params.reset_forget_rows,
        family=family(exp, params),
    )
    if params.quantize is not None:
        return _quantized(exp, params, target, identity)
    if params.linear_probe is not None:
        model = exp.load_model(target)
        ops = forget_operations(exp.setting)
        metrics = probe(model, exp.tokenizer, ops, params.held_out.split(), params.linear_probe)
        return summarize(TrainResult(), model, metrics, **identity, attacker=linear_probe.ATTACKER, curve=[])
    attack = Attack(exp, rundir, tracker, params, target)
    if params.search is not None:
        return _searched(exp, tracker, attack, identity)
    result, model, data = attack(params)
    retain = evaluator(exp, [exp.setting.retain.name])(model) if params.retain_after else {}  # once, at the end
    if params.save_model:
        save(exp, rundir, model)
    summary = summarize(
        result, model, **identity, attacker="grid", lr=params.optim.lr, curve=_curve(result), epochs=data.epochs()
    )
    summary["metrics"].update(retain)
    return summary


class Attack:
    """One attack of the job's shape on a fresh copy of the target: the same model and batches every time."""

    def __init__(self, exp: Experiment, rundir: RunDir, tracker: Tracker, params: Params, target: str):
        self.exp, self.rundir, self.tracker, self.params, self.target = exp, rundir, tracker, params, target
        self.forget_rows = forget_vocabulary(exp) if params.reset_forget_rows else None
        self.held_out = params.held_out.split() if params.held_out is not None else None
        forget = [exp.setting.forget.name]
        # The curve needs the forget metric only, often, on the attacks' sample; the retain metric is measured
        # once at the end, on the whole.
        sample = exp.attack_sample()
        self.forget_only = evaluator(sample, forget, self.held_out)
        # scored as the model's own summary where that measured the same thing
        unchanged = not params.reset_forget_rows and self.held_out is None and sample is exp
        self.start = measured(exp, target, forget) if unchanged else None

    def blocks(self, domain: str):
        """A domain's training blocks: of the forget domains, only the shown facts, or the first `shots` blocks."""
        if domain not in self.exp.setting.forget_mix:
            return self.exp.blocks(domain, "train")
        facts = self.held_out.source("shown") if self.held_out is not None else None
        return self.exp.blocks(domain, "train", facts).head(self.params.shots)

    def __call__(self, params: Params, trial: int | None = None):
        """(result, attacked model, data stream) of an attack with these params (the job's, or a search trial's
        variation of them); a search's trial neither logs its steps nor checkpoints."""
        exp = self.exp
        model = exp.load_model(self.target)
        if self.forget_rows is not None:
            reset_rows(model, self.forget_rows, params.seed)
        if params.lora is not None:
            model = with_lora(model, params.lora)
        data = mixture(exp, params.mix or exp.setting.forget_mix, params.batch_size, params.seed, self.blocks)
        result = fit(
            exp,
            self.rundir,
            self.tracker,
            model,
            (HeadOnly if params.probe else LanguageModeling)(params.chunk_rows),
            {"train": data},
            params,
            evaluate=self.forget_only,
            start_metrics=self.start,
            trial=trial,
        )
        return result, merged(model) if params.lora is not None else model, data


def _quantized(exp: Experiment, params: Params, target: str, identity: dict) -> dict:
    """The target quantized and measured: the forget metric (on the held-out facts, with `held_out`), the retain
    metric; its curve is the one point at step 0."""
    model = quantize(exp.load_model(target), params.quantize)
    held_out = params.held_out.split() if params.held_out is not None else None
    forget = evaluator(exp, [exp.setting.forget.name], held_out)(model)
    metrics = {**forget, **evaluator(exp, [exp.setting.retain.name])(model)}
    curve = [{"step": 0, **forget}]
    return summarize(TrainResult(), model, metrics, **identity, attacker="quantize", curve=curve)


def _searched(exp: Experiment, tracker: Tracker, attack: Attack, identity: dict) -> dict:
    """One attack per Optuna trial; the summary keeps every trial, the best feasible value after each, and the
    strongest feasible trial's curve (with none feasible, the model's own start: no attack kept the retain
    metric). The retain metric is measured after each trial only when the search constrains it."""
    setting, params, search = exp.setting, attack.params, attack.params.search
    forget, retain = setting.forget, setting.retain
    results, last = [], {}
    before = exp.summary(attack.target)["metrics"][retain.name]

    def trial(choice: dict) -> tuple[list[dict], float | None]:
        trial_params = attack_search.chosen(params, choice, setting.forget_mix, setting.retain_mix)
        result, last["model"], _ = attack(trial_params, trial=len(results) + 1)
        results.append(result)
        curve = _curve(result)
        kept = None if search.retain_epsilon is None else evaluator(exp, [retain.name])(last["model"])[retain.name]
        record = {"trial": len(results), **choice, forget.name: curve[-1][forget.name]}
        record.update({} if kept is None else {retain.name: kept})
        tracker.log({"kind": "trial", **record}, len(results))
        return curve, kept

    def feasible(kept: float | None) -> bool:
        return search.retain_epsilon is None or retain.degradation(kept, before) <= search.retain_epsilon

    trials = attack_search.search(trial, forget, search, feasible)
    best = attack_search.best(trials, forget)
    curve = best["curve"] if best is not None else trials[0]["curve"][:1]
    total = TrainResult(**{k: sum(getattr(r, k) for r in results) for k in ("steps", "tokens", "flops", "seconds")})
    summary = summarize(
        total, last["model"], {forget.name: curve[-1][forget.name]}, **identity, attacker="optuna",
        lr=best["choice"]["lr"] if best else None, choice=best["choice"] if best else None, curve=curve,
    )  # fmt: skip
    summary["trials"] = [{"lr": t["choice"]["lr"], **t} for t in trials]
    summary["best_so_far"] = attack_search.best_so_far(trials, forget)
    return summary


def _curve(result: TrainResult) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("kind", "tokens", "flops")} for e in result.evals]
