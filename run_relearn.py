"""Relearning attacks: finetune every model of interest on forget data over a learning-rate grid.

    python run_relearn.py                                  # embedded language grid, CPU-sized
    python run_relearn.py --setting language --scale paper

The attacker is the strongest learning rate at each step budget (run_eval.py takes the best over the grid).
"""

from __future__ import annotations

import re
import sys

import run_distill
import run_pretrain
import run_unlearn
from undo.cli import guarded, run_stage
from undo.runner.jobs import Job
from undo.runs.names import ORACLE, selected
from undo.settings import PAPER_CHUNK_ROWS, PUBLIC_BETAS
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


def attacks(refs: list[str], lrs: list[float], optim: dict, tag: str = "", **attack) -> list[Job]:
    """Each model attacked at each constant learning rate with the optimiser settings `optim`."""
    return [
        Job("relearn", f"{run_label(ref)}{tag}-lr{lr:g}", {"model": ref, "optim": {"lr": lr, **optim}, **attack})
        for ref in refs
        for lr in lrs
    ]


def run_label(ref: str) -> str:
    """A run reference as part of a job name: "unlearn/selected:maxent" -> "unlearn-selected-maxent"."""
    return ref.replace("/", "-").replace(":", "-")


# The embedded attacks: 30 steps of 8 x 128 Korean tokens, or of 16 x 64 tokens of x/÷ problems, at two rates.
LANGUAGE_EMBEDDED = dict(lrs=[1e-3, 3e-3], optim={"steps": 30}, batch_size=8, eval_every=5)
ARITHMETIC_EMBEDDED = dict(lrs=[1e-3, 3e-3], optim={"steps": 30}, batch_size=16, eval_every=5)

GRIDS = {
    ("language", "embedded"): attack_grid("language", "embedded", **LANGUAGE_EMBEDDED),
    ("language", "paper"): attack_grid(
        "language",
        "paper",
        [1e-3, 7e-4, 4e-4, 1e-4, 7e-5, 5e-5, 1e-5, 7e-6, 4e-6, 1e-6],
        {"steps": 500, "grad_accum": 2, "betas": PUBLIC_BETAS},
        batch_size=4,
        eval_every=5,
        chunk_rows=PAPER_CHUNK_ROWS,
    ),
    ("arithmetic", "embedded"): attack_grid("arithmetic", "embedded", **ARITHMETIC_EMBEDDED),
    # The public arithmetic attack: batches of 15 x 256 tokens of multiplication and division problems.
    ("arithmetic", "paper"): attack_grid(
        "arithmetic",
        "paper",
        [1e-3, 7e-4, 4e-4, 1e-4, 7e-5, 5e-5, 1e-5, 7e-6, 4e-6, 1e-6],
        {"steps": 500, "betas": PUBLIC_BETAS},
        batch_size=15,
        eval_every=5,
        chunk_rows=PAPER_CHUNK_ROWS,
    ),
    # The WMDP attack: forget and retain text half and half, constant lr; the paper reads steps 10, 25, 50, 150, 500.
    ("wmdp", "embedded"): attack_grid(
        "wmdp", "embedded", [1e-3, 3e-3], {"steps": 30}, batch_size=8, eval_every=5, mix={"forget": 0.5, "retain": 0.5}
    ),
    ("wmdp", "paper"): attack_grid(
        "wmdp",
        "paper",
        [2.15e-5, 1e-5, 4.62e-6],
        {"steps": 500, "betas": PUBLIC_BETAS},
        batch_size=5,  # 20 x 256 tokens in the public scripts: 5 x 1024 here
        eval_at=[10, 25, 50, 150, 500],
        mix={"forget": 0.5, "retain": 0.5},
        chunk_rows=PAPER_CHUNK_ROWS,
    ),
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


VARIANTS = {
    # Optuna: 6 trials of the same 30-step attack, learning rates from 1e-5 to 1e-2 (the grid's two lie inside).
    ("language", "embedded"): variant_attacks(
        "language", "embedded", search={"trials": 6, "low": 1e-5, "high": 1e-2}, **LANGUAGE_EMBEDDED
    ),
    ("arithmetic", "embedded"): variant_attacks(
        "arithmetic", "embedded", search={"trials": 6, "low": 1e-5, "high": 1e-2}, **ARITHMETIC_EMBEDDED
    ),
}


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__.splitlines()[0], GRIDS, argv, variants=VARIANTS)


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
