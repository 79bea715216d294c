"""Unlearn the base model: GradDiff, MaxEnt and RMU over learning-rate grids, plus SAM and RepNoise variants.

    python run_unlearn.py                                  # embedded language grid, CPU-sized
    python run_unlearn.py --setting language --scale paper

Afterwards each method's teacher is selected (strongest forgetting with the retain metric within 0.05 of the
base: relative for CE, absolute for accuracy) and recorded in outputs/<setting>/<scale>/unlearn/selected.json.
"""

from __future__ import annotations

import sys

from undo.cli import guarded, run_stage
from undo.errors import UserError
from undo.runner.jobs import Job
from undo.runs.names import selected
from undo.runs.selection import resolve
from undo.settings import PAPER_CHUNK_ROWS, PUBLIC_BETAS


def sweep(
    method: str,
    lrs: list[float],
    steps: int,
    args: dict | None = None,
    sam_rho: float = 0.0,
    repnoise: dict | None = None,
    tag: str = "",
    betas: tuple[float, float] | None = None,
    **common,
) -> list[Job]:
    jobs = []
    for lr in lrs:
        optim = {"lr": lr, "steps": steps, "sam_rho": sam_rho, **({"betas": betas} if betas else {})}
        params = {"method": method, "args": args or {}, **common, "optim": optim}
        if repnoise:
            params["repnoise"] = repnoise
        jobs.append(Job("unlearn", f"{method}{tag}-lr{lr:g}", params))
    return jobs


EMBEDDED = dict(batch_size=16, eval_every=10, seed=0)
# The tiny model's residual stream has a norm of ~20 at layer 2, so the steering target is scaled to match.
EMBEDDED_RMU = {"layer": 2, "trainable_layers": [0, 1, 2], "steering_coef": 30.0, "retain_weight": 1.0}

# The arithmetic model has two layers and 64-token blocks; RMU steers the last layer's output, and holds the
# retain stream 10x harder (with weight 1 it cost +/- accuracy 0.1-0.2 before x/÷ fell below 0.1).
ARITHMETIC_EMBEDDED = dict(batch_size=32, eval_every=20, seed=0)
ARITHMETIC_EMBEDDED_RMU = {"layer": 1, "trainable_layers": [0, 1], "steering_coef": 40.0, "retain_weight": 10.0}
PAPER = dict(batch_size=4, eval_every=25, seed=0, betas=PUBLIC_BETAS, chunk_rows=PAPER_CHUNK_ROWS)
PAPER_LRS = [1e-5, 2e-5, 3e-5, 4e-5, 5e-5, 6e-5, 7e-5, 8e-5]
PAPER_RMU = {"layer": 10, "trainable_layers": [5, 6, 7, 8, 9, 10], "steering_coef": 6.5, "retain_weight": 1.0}
ARITHMETIC_PAPER = dict(batch_size=40, eval_every=5, seed=0, betas=PUBLIC_BETAS, chunk_rows=PAPER_CHUNK_ROWS)
ARITHMETIC_LRS = [6e-5, 7e-5, 8e-5, 9e-5, 1e-4, 2e-4, 3e-4, 4e-4]  # MaxEnt's, in the public scripts
PUBLIC_SMALL_LRS = [6e-6, 7e-6, 8e-6, 9e-6, 1e-5, 2e-5, 3e-5, 4e-5]  # their GradDiff's and RMU's, a tenth of MaxEnt's
ARITHMETIC_PAPER_RMU = {**PAPER_RMU, "steering_coef": 6.0}
# WMDP: convex weights (1 - a) * forget + a * retain; the public scripts' a per method and domain below.
CONVEX = {"forget_weight": 0.5, "retain_weight": 0.5}
WMDP_MAXENT = {"retain": "kl", **CONVEX}
WMDP_PAPER = dict(batch_size=10, eval_every=30, seed=0, betas=PUBLIC_BETAS, chunk_rows=PAPER_CHUNK_ROWS)
# RMU steers the output of block 14 (0-based, as the language setting's block 10), the public scripts'
# hidden_states[15]; the block after it would get no gradient, so layers 10..14 train.
WMDP_PAPER_RMU = {"layer": 14, "trainable_layers": [10, 11, 12, 13, 14], "steering_coef": 80.0}
REPNOISE_GRID = [(0.1, 1e-4), (0.1, 1e-3), (0.5, 1e-2), (0.5, 0.1), (1, 0.1), (1, 1), (2, 2), (4, 4)]


def repnoise_grid(lr: float, steps: int, **common) -> list[Job]:
    """MaxEnt with RepNoise at one learning rate over the paper's (alpha, beta) grid."""
    return [
        job
        for alpha, beta in REPNOISE_GRID
        for job in sweep(
            "maxent",
            [lr],
            steps,
            repnoise={"alpha": alpha, "beta": beta},
            tag=f"-repnoise-a{alpha:g}-b{beta:g}",
            **common,
        )
    ]


def wmdp_paper_grid(maxent: list[float], rmu: list[float], baselines: list[float]) -> list[Job]:
    """One WMDP domain as the public scripts unlearned it, 90 steps of 40 x 256 tokens (10 x 1024 here) each:
    MaxEnt (KL retain term) at 2e-5, RMU at 5e-5, MaxEnt+SAM (rho 0.01) and MaxEnt+RepNoise (alpha = beta = 1) at
    2e-5, each at the retain weights a that the scripts give the domain."""

    def convex(a: float) -> dict:
        return {"forget_weight": 1 - a, "retain_weight": a}

    return [
        *(
            job
            for a in maxent
            for job in sweep("maxent", [2e-5], 90, {**WMDP_MAXENT, **convex(a)}, tag=f"-a{a:g}", **WMDP_PAPER)
        ),
        *(
            job
            for a in rmu
            for job in sweep("rmu", [5e-5], 90, {**WMDP_PAPER_RMU, **convex(a)}, tag=f"-a{a:g}", **WMDP_PAPER)
        ),
        *(
            job
            for a in baselines
            for extra in (
                {"sam_rho": 0.01, "tag": f"-sam-a{a:g}"},
                {"repnoise": {"alpha": 1.0, "beta": 1.0}, "tag": f"-repnoise-a{a:g}"},
            )
            for job in sweep("maxent", [2e-5], 90, {**WMDP_MAXENT, **convex(a)}, **extra, **WMDP_PAPER)
        ),
    ]


# The public scripts' retain weights a per domain: MaxEnt, RMU, and MaxEnt with SAM or RepNoise.
WMDP_RETAIN_WEIGHTS = {
    "wmdp-bio": dict(maxent=[0.3, 0.1], rmu=[0.5], baselines=[0.3, 0.1]),
    "wmdp-cyber": dict(maxent=[0.2], rmu=[0.5, 0.2, 0.1], baselines=[0.5]),
}

GRIDS = {
    ("language", "embedded"): [
        *sweep("graddiff", [1e-4, 2e-4], 20, **EMBEDDED),
        *sweep("maxent", [3e-4, 1e-3], 20, **EMBEDDED),
        *sweep("rmu", [3e-3, 1e-2], 40, EMBEDDED_RMU, **EMBEDDED),
        *sweep("maxent", [1e-3], 20, sam_rho=0.01, tag="-sam", **EMBEDDED),
        *sweep("maxent", [1e-3], 20, repnoise={"alpha": 0.5, "beta": 0.1}, tag="-repnoise", **EMBEDDED),
    ],
    ("language", "paper"): [
        *sweep("graddiff", PAPER_LRS, 100, **PAPER),
        *sweep("maxent", PAPER_LRS, 100, **PAPER),
        *sweep("rmu", PAPER_LRS, 500, PAPER_RMU, **PAPER),
        *sweep("maxent", [3e-5], 100, sam_rho=0.01, tag="-sam", **PAPER),
        *repnoise_grid(3e-5, 100, **PAPER),
    ],
    ("arithmetic", "embedded"): [
        *sweep("graddiff", [1e-3, 3e-3], 20, {"retain_weight": 15.0}, **ARITHMETIC_EMBEDDED),
        *sweep("maxent", [1e-3, 3e-3], 20, **ARITHMETIC_EMBEDDED),
        *sweep("rmu", [1e-2, 3e-2], 40, ARITHMETIC_EMBEDDED_RMU, **ARITHMETIC_EMBEDDED),
        *sweep("maxent", [1e-3], 20, sam_rho=0.01, tag="-sam", **ARITHMETIC_EMBEDDED),
        *sweep("maxent", [1e-3], 20, repnoise={"alpha": 0.5, "beta": 0.1}, tag="-repnoise", **ARITHMETIC_EMBEDDED),
    ],
    # The public arithmetic scripts: batches of 40; MaxEnt 10 steps, GradDiff 10 steps with lambda 15, RMU c = 6 for
    # 500 steps, GradDiff and RMU at a tenth of MaxEnt's rates; RMU+SAM (rho 0.01) at RMU's rates and RepNoise on
    # MaxEnt at 8e-5 over the (alpha, beta) grid, as their attack list names them.
    ("arithmetic", "paper"): [
        *sweep("graddiff", PUBLIC_SMALL_LRS, 10, {"retain_weight": 15.0}, **ARITHMETIC_PAPER),
        *sweep("maxent", ARITHMETIC_LRS, 10, **ARITHMETIC_PAPER),
        *sweep("rmu", PUBLIC_SMALL_LRS, 500, ARITHMETIC_PAPER_RMU, **ARITHMETIC_PAPER),
        *sweep("rmu", PUBLIC_SMALL_LRS, 500, ARITHMETIC_PAPER_RMU, sam_rho=0.01, tag="-sam", **ARITHMETIC_PAPER),
        *repnoise_grid(8e-5, 10, **ARITHMETIC_PAPER),
    ],
    # WMDP's stand-in (the quiz facts): MaxEnt with a KL retain term to a frozen copy and RMU, each with convex
    # weights (1 - a) * forget + a * retain; SAM and RepNoise on MaxEnt.
    ("wmdp", "embedded"): [
        *sweep("maxent", [5e-4, 1e-3], 20, WMDP_MAXENT, **EMBEDDED),
        *sweep("rmu", [3e-4, 1e-3], 40, {**EMBEDDED_RMU, **CONVEX}, **EMBEDDED),
        *sweep("maxent", [1e-3], 20, WMDP_MAXENT, sam_rho=0.01, tag="-sam", **EMBEDDED),
        *sweep("maxent", [5e-4], 20, WMDP_MAXENT, repnoise={"alpha": 0.5, "beta": 0.1}, tag="-repnoise", **EMBEDDED),
    ],
    **{(setting, "paper"): wmdp_paper_grid(**weights) for setting, weights in WMDP_RETAIN_WEIGHTS.items()},
}


# The public scripts' RMU, without its retain term, as a named option (`--variants`): selected apart, as
# "rmu+no-retain", and attacked by the relearning stage's variants.
VARIANTS = {
    ("language", "paper"): sweep("rmu", PAPER_LRS, 500, {**PAPER_RMU, "retain_weight": 0.0}, tag="-no-retain", **PAPER),
    ("arithmetic", "paper"): sweep(
        "rmu",
        PUBLIC_SMALL_LRS,
        500,
        {**ARITHMETIC_PAPER_RMU, "retain_weight": 0.0},
        tag="-no-retain",
        **ARITHMETIC_PAPER,
    ),
}


def select_teachers(exp) -> None:
    """Resolve and print each method's selected teacher (written to unlearn/selected.json)."""
    methods = sorted({exp.summary(ref)["method"] for ref in exp.finished_runs("unlearn")})
    for method in methods:
        try:
            print(f"selected {method}: {resolve(exp, selected(method))}")
        except UserError as err:
            print(f"no teacher for {method}: {err}")


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__.splitlines()[0], GRIDS, argv, after=select_teachers, variants=VARIANTS)


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
