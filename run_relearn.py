"""Relearning attacks: finetune every model of interest on forget data over a learning-rate grid.

    python run_relearn.py                                  # embedded language grid, CPU-sized
    python run_relearn.py --setting language --scale paper
    python run_relearn.py --attacks suite                  # and every attack family against the key models

The attacker is the strongest learning rate at each step budget (run_eval.py takes the best over the grid); with
the suite, the report also scores each model under each family's strongest attack (docs/attacks.md).
"""

from __future__ import annotations

import re
import sys

import run_distill
import run_pretrain
import run_unlearn
from undo.cli import guarded, run_stage
from undo.runner.jobs import Job
from undo.runs.names import BASE, ORACLE, selected
from undo.settings import PAPER_CHUNK_ROWS, PUBLIC_BETAS, SETTINGS, WMDP_SETTINGS
from undo.unlearning import METHODS


def targets(setting: str, scale: str) -> list[str]:
    """Base and oracle (where the setting has one), every run of the unlearn grid (the Pareto view has one point
    per unlearning hyperparameter; the selected teachers are among them) and every student of the distill grid."""
    return [
        *(job.ref for job in run_pretrain.GRIDS[(setting, scale)]),
        *(job.ref for job in run_unlearn.GRIDS[(setting, scale)]),
        *(job.ref for job in run_distill.GRIDS[(setting, scale)]),
    ]


def attack_grid(setting: str, scale: str, lrs: list[float], optim: dict, **attack) -> list[Job]:
    return attacks(targets(setting, scale), lrs, optim, **attack)


def attacks(
    refs: list[str], lrs: list[float], optim: dict, tag: str = "", seeds: list[int] | None = None, **attack
) -> list[Job]:
    """Each model attacked at each constant learning rate with the optimiser settings `optim`, once, or once per
    seed of `seeds` (the attack's data order; the report takes the strongest run)."""
    return [
        Job(
            "relearn",
            f"{run_label(ref)}{tag}-lr{lr:g}" + (f"-s{seed}" if seeds else ""),
            {"model": ref, "optim": {"lr": lr, **optim}, **attack, **({"seed": seed} if seeds else {})},
        )
        for ref in refs
        for lr in lrs
        for seed in seeds or [None]
    ]


def run_label(ref: str) -> str:
    """A run reference as part of a job name: "unlearn/selected:maxent" -> "unlearn-selected-maxent"."""
    return ref.replace("/", "-").replace(":", "-")


# The embedded attacks: 30 steps of 8 x 128 Korean tokens, or of 16 x 64 tokens of x/÷ problems, at two rates.
LANGUAGE_EMBEDDED = dict(lrs=[1e-3, 3e-3], optim={"steps": 30}, batch_size=8, eval_every=5)
ARITHMETIC_EMBEDDED = dict(lrs=[1e-3, 3e-3], optim={"steps": 30}, batch_size=16, eval_every=5)
# The stand-in's attack: forget and retain QA half and half; trained on half of the forget questions (a keyed
# split), scored on the other half, never shown.
WMDP_EMBEDDED = dict(
    lrs=[1e-3, 3e-3],
    optim={"steps": 30},
    batch_size=8,
    eval_every=5,
    mix={"forget": 0.5, "retain": 0.5},
    held_out={"key": 0},
)

# The paper scales evaluate an attack at the budgets the report and its figures read, not every 5 steps.
READ_BUDGETS = [5, 10, 25, 40, 50, 100, 150, 250, 500]
PAPER_LRS = [1e-3, 7e-4, 4e-4, 1e-4, 7e-5, 5e-5, 1e-5, 7e-6, 4e-6, 1e-6]
# The public language attack: 8 x 2048 Korean tokens a step.
LANGUAGE_PAPER = dict(
    lrs=PAPER_LRS,
    optim={"steps": 500, "grad_accum": 2, "betas": PUBLIC_BETAS},
    batch_size=4,
    eval_at=READ_BUDGETS,
    chunk_rows=PAPER_CHUNK_ROWS,
)
# The public arithmetic attack: batches of 15 x 256 tokens.
ARITHMETIC_PAPER = dict(
    lrs=PAPER_LRS,
    optim={"steps": 500, "betas": PUBLIC_BETAS},
    batch_size=15,
    eval_at=READ_BUDGETS,
    chunk_rows=PAPER_CHUNK_ROWS,
)
# The public WMDP attack: the raw corpora of the domain, forget and retain half and half, 20 x 256 tokens a step
# (5 x 1024 here), four seeds; the paper reads steps 10, 25, 50, 150, 500, of the domain's WMDP only (no MMLU).
WMDP_PAPER = dict(
    lrs=[2.15e-5, 1e-5, 4.62e-6],
    optim={"steps": 500, "betas": PUBLIC_BETAS},
    batch_size=5,
    eval_at=[10, 25, 50, 150, 500],
    mix={"forget-corpus": 0.5, "retain-corpus": 0.5},
    seeds=[42, 43, 44, 45],
    retain_after=False,
    chunk_rows=PAPER_CHUNK_ROWS,
)

GRIDS = {
    ("language", "embedded"): attack_grid("language", "embedded", **LANGUAGE_EMBEDDED),
    ("language", "paper"): attack_grid("language", "paper", **LANGUAGE_PAPER),
    ("arithmetic", "embedded"): attack_grid("arithmetic", "embedded", **ARITHMETIC_EMBEDDED),
    # On multiplication and division problems (our decision: the public scripts' selected attack trains on the
    # pretraining mix, which `--variants` adds).
    ("arithmetic", "paper"): attack_grid("arithmetic", "paper", **ARITHMETIC_PAPER),
    ("wmdp", "embedded"): attack_grid("wmdp", "embedded", **WMDP_EMBEDDED),
    **{(setting, "paper"): attack_grid(setting, "paper", **WMDP_PAPER) for setting in WMDP_SETTINGS},
}


def variant_attacks(setting: str, scale: str, lrs: list[float], optim: dict, search: dict, **attack) -> list[Job]:
    """`--variants`: the attacks of the distill stage's variant students and reset controls; the same attack of
    every model after its forget-vocabulary embedding rows are re-initialised (the report's robustness_after_reset);
    and the Optuna attacker (`search`) on the oracle, each method's selected teacher, every full-distillation
    student and every plain UNDO student."""
    variants = [job.ref for job in run_distill.VARIANTS[(setting, scale)]]
    every = [*targets(setting, scale), *variants]
    distilled = [job.ref for job in run_distill.GRIDS[(setting, scale)] + run_distill.VARIANTS[(setting, scale)]]
    searched = [
        ORACLE,
        *(selected(method) for method in METHODS),
        *(ref for ref in distilled if ref.startswith("distill/full-") or re.fullmatch(r"distill/undo-.*-s\d+", ref)),
    ]
    # a searched attack replaces the learning rate with each trial's: the grid's first stands in its optimiser
    searched_optim = {"lr": lrs[0], **optim}
    return [
        *attacks(variants, lrs, optim, **attack),
        *attacks(every, lrs, optim, tag="-reset", reset_forget_rows=True, **attack),
        *(
            Job(
                "relearn",
                f"{run_label(ref)}-optuna",
                {"model": ref, "optim": searched_optim, "search": search, **attack},
            )
            for ref in searched
        ),
    ]


def key_models(setting: str, scale: str) -> list[str]:
    """The models the attack suite tries every family on: the oracle (or the start model where there is none),
    each method's selected teacher, and every student of the distill grid (full distillation, UNDO at each alpha,
    oracle matching)."""
    start = ORACLE if any(job.name == "oracle" for job in run_pretrain.GRIDS[(setting, scale)]) else BASE
    methods = sorted({job.params["method"] for job in run_unlearn.GRIDS[(setting, scale)]})
    return [start, *(selected(method) for method in methods), *(job.ref for job in run_distill.GRIDS[(setting, scale)])]


def masked_students(setting: str, scale: str) -> list[str]:
    """The variant grid's full-distillation students taught the teacher with its forget vocabulary masked."""
    return [
        job.ref
        for job in run_distill.VARIANTS[(setting, scale)]
        if job.name.startswith("full-") and job.params.get("teacher_view") == "mask-forget"
    ]


def attack_suite(
    models: list[str], setting: str, lrs: list[float], optim: dict, off_target: str | None, **attack
) -> list[Job]:
    """`--attacks suite`: every attack family (undo.attacks) against each of `models`, next to the grid attack.

    Searched full fine-tuning (Optuna, 8 trials: learning rate, steps up to 100, optimiser, schedule, batch size,
    share of retain data; a trial counts only if it keeps the retain metric within RETAIN_EPSILON); searched LoRA
    (4 trials: learning rate, rank); held-out facts (arithmetic); fine-tuning on retain data only and on unrelated
    text (`off_target`, where the setting has such a domain); 10 and 100 forget blocks repeated; the head and
    embeddings only (the probe); int8 and int4 weights, round-to-nearest and torchao's; a linear probe of the
    frozen hidden states for the answers of held-out facts (arithmetic). Where the grid's attack
    holds out facts (the WMDP stand-in's), every attack on forget data holds out the same ones."""
    steps, budgets = optim["steps"], [10, optim["steps"]]
    evals = {**attack, "eval_every": 0, "eval_at": budgets}
    plain = {k: v for k, v in evals.items() if k != "held_out"}  # attacks on other data than the forget data
    search = {"low": 1e-4, "high": 1e-2, "retain_epsilon": RETAIN_EPSILON}
    families = {
        "ft-search": {
            "optim": {"lr": lrs[0], **optim},
            "search": {**search, "trials": 8, "steps": [steps, 100], "optimizer": ["adamw", "sgd", "adagrad"],
                       "schedule": ["constant", "cosine"], "batch_size": [4, 8, 16], "retain_share": [0.0, 0.25]},
            **{**evals, "eval_at": [*budgets, 100]},
        },
        "lora-search": {
            "optim": {"lr": lrs[0], **optim},
            "search": {**search, "trials": 4, "high": 3e-2, "lora_rank": [4, 16]},
            "lora": {},
            **evals,
        },
        **{f"{name}-lr{lr:g}": {"optim": {"lr": lr, **optim}, **extra}
           for name, extra in [("retain-only", {**plain, "mix": SETTINGS[setting].retain_mix}),
                               *([("off-target", {**plain, "mix": {off_target: 1.0}})] if off_target else []),
                               *([("held-out", {**evals, "held_out": {"key": 0}})] if setting == "arithmetic" else []),
                               ("few10", {**evals, "shots": 10}), ("few100", {**evals, "shots": 100})]
           for lr in lrs},
        **{f"probe-lr{lr:g}": {"optim": {"lr": lr, **optim}, "probe": True, **evals} for lr in (lrs[0], 10 * lrs[0])},
        **{f"int{bits}-{method}": {"quantize": {"bits": bits, "method": method}}
           for bits in (8, 4) for method in ("rtn", "torchao")},
        **({"linear-probe": {"linear_probe": {}, "held_out": {"key": 0}}} if setting == "arithmetic" else {}),
    }  # fmt: skip
    return [
        Job("relearn", f"{run_label(ref)}-{family}", {"model": ref, **params})
        for ref in models
        for family, params in families.items()
    ]


RETAIN_EPSILON = 0.1  # the searched attacker's retain constraint: 10% relative CE, or 10 accuracy points
# Each setting's suite: the data of its off-target family (None: none) and its grid attack's shape.
SUITE_ATTACKS = {
    "language": (None, LANGUAGE_EMBEDDED),
    "arithmetic": ("en", ARITHMETIC_EMBEDDED),
    "wmdp": ("en", WMDP_EMBEDDED),
}
SUITES = {
    (setting, "embedded"): attack_suite(key_models(setting, "embedded"), setting, off_target=off_target, **attack)
    for setting, (off_target, attack) in SUITE_ATTACKS.items()
}
# With --variants too, the suite also attacks the masked-teacher students of the settings with a variant grid.
VARIANT_SUITES = {
    (setting, "embedded"): attack_suite(masked_students(setting, "embedded"), setting, off_target=off_target, **attack)
    for setting, (off_target, attack) in SUITE_ATTACKS.items()
    if (setting, "embedded") in run_distill.VARIANTS
}


def public_options(setting: str, **attack) -> list[Job]:
    """`--variants` at paper scale: the public scripts' settings where ours differ on purpose, as named options.
    The grid's attack on the unlearning variants (RMU without its retain term, run_unlearn.py)."""
    return attacks([job.ref for job in run_unlearn.VARIANTS[(setting, "paper")]], **attack)


VARIANTS = {
    ("language", "paper"): public_options("language", **LANGUAGE_PAPER),
    # and the public arithmetic attack: the same grid on the pretraining mix
    ("arithmetic", "paper"): [
        *public_options("arithmetic", **ARITHMETIC_PAPER),
        *attacks(
            targets("arithmetic", "paper"),
            tag="-public-mix",
            mix=run_pretrain.ARITHMETIC_PAPER_MIXES["base_mix"],
            **ARITHMETIC_PAPER,
        ),
    ],
    # Optuna: 6 trials of the same 30-step attack, learning rates from 1e-5 to 1e-2 (the grid's two lie inside).
    ("language", "embedded"): variant_attacks(
        "language", "embedded", search={"trials": 6, "low": 1e-5, "high": 1e-2}, **LANGUAGE_EMBEDDED
    ),
    ("arithmetic", "embedded"): variant_attacks(
        "arithmetic", "embedded", search={"trials": 6, "low": 1e-5, "high": 1e-2}, **ARITHMETIC_EMBEDDED
    ),
}


def main(argv: list[str] | None = None) -> int:
    return run_stage(
        __doc__.splitlines()[0], GRIDS, argv, variants=VARIANTS, suite=SUITES, variant_suite=VARIANT_SUITES
    )


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
