"""Pretrain the base model (retain + forget data) and the data-filtered oracle (retain data only).

python run_pretrain.py                                 # embedded language grid, CPU-sized
python run_pretrain.py --setting language --scale paper
"""

from __future__ import annotations

import sys

from undo.cli import guarded, run_stage
from undo.reporting.report import metrics_table
from undo.runner.jobs import Job
from undo.settings import PAPER_CHUNK_ROWS, PUBLIC_BETAS, WMDP_SETTINGS


def base_and_oracle(
    base_mix: dict[str, float], oracle_mix: dict[str, float], one_pass_oracle: bool = False, **recipe
) -> list[Job]:
    """The base model on every domain and the data-filtered oracle without the forget domain, one recipe.

    With `one_pass_oracle` (the paper's budget) the oracle sees its data once, as the base model does: it trains
    for the base's steps times the share of the base's mix that it keeps (half for language, 7/8 for
    arithmetic), instead of repeating its smaller data, which would inflate every compute percentage's
    denominator."""
    oracle = recipe
    if one_pass_oracle:
        kept = sum(w for d, w in base_mix.items() if d in oracle_mix) / sum(base_mix.values())
        oracle = {**recipe, "optim": {**recipe["optim"], "steps": round(recipe["optim"]["steps"] * kept)}}
    return [
        Job("pretrain", "base", {"role": "base", "mix": base_mix, **recipe}),
        Job("pretrain", "oracle", {"role": "oracle", "mix": oracle_mix, **oracle}),
    ]


LANGUAGE_MIXES = dict(base_mix={"en": 0.5, "ko": 0.5}, oracle_mix={"en": 1.0})
# The paper's arithmetic mixes: base English 0.75 / all arithmetic 0.25; the oracle keeps the add/sub share.
ARITHMETIC_PAPER_MIXES = dict(
    base_mix={"en": 0.75, "addsub": 0.125, "muldiv": 0.125}, oracle_mix={"en": 0.875, "addsub": 0.125}
)
# Embedded: arithmetic takes most of the mix and +/- most of that (+ and - are ~3,800 facts, x and / ~800), so a
# two-layer model answers both kinds of equations after 1500 steps; the oracle keeps the +/- share.
ARITHMETIC_EMBEDDED_MIXES = dict(
    base_mix={"en": 0.1, "addsub": 0.6, "muldiv": 0.3}, oracle_mix={"en": 0.4, "addsub": 0.6}
)

GRIDS = {
    # 400 steps of 16 x 128 tokens (0.8M tokens) per model, ~2 min each on a 2-core CPU.
    ("language", "embedded"): base_and_oracle(
        **LANGUAGE_MIXES,
        batch_size=16,
        eval_every=100,
        seed=0,
        optim={"lr": 2e-3, "min_lr": 2e-4, "warmup": 30, "steps": 400, "weight_decay": 0.1},
    ),
    # The paper's 0.1B recipe: 400 x 2048 tokens per step (4 x 100 accumulation: a 256k vocabulary makes
    # logits large), ~1 epoch of 2B tokens; the oracle one epoch of its 1B English tokens (1220 steps).
    ("language", "paper"): base_and_oracle(
        **LANGUAGE_MIXES,
        one_pass_oracle=True,
        batch_size=4,
        chunk_rows=PAPER_CHUNK_ROWS,
        eval_every=250,
        seed=0,
        optim={
            "lr": 4e-4,
            "min_lr": 4e-5,
            "warmup": 50,
            "steps": 2441,
            "weight_decay": 0.1,
            "grad_accum": 100,
            "betas": PUBLIC_BETAS,
        },
    ),
    # 1500 steps of 32 x 64 tokens at a high learning rate, ~4 min per model on a 2-core CPU.
    ("arithmetic", "embedded"): base_and_oracle(
        **ARITHMETIC_EMBEDDED_MIXES,
        batch_size=32,
        eval_every=500,
        seed=0,
        optim={"lr": 2e-2, "min_lr": 2e-3, "warmup": 30, "steps": 1500, "weight_decay": 0.1},
    ),
    # The public arithmetic recipe: 1000 steps of 360 x 256 tokens (24 x 15 accumulation), lr 4e-4 constant, no
    # weight decay, for base and oracle alike: 92M tokens, less than either model's data (100M English tokens
    # alone), so the language setting's one-pass budget for the oracle does not apply.
    ("arithmetic", "paper"): base_and_oracle(
        **ARITHMETIC_PAPER_MIXES,
        batch_size=24,
        chunk_rows=PAPER_CHUNK_ROWS,
        eval_every=100,
        seed=0,
        optim={
            "lr": 4e-4,
            "warmup": 50,
            "steps": 1000,
            "weight_decay": 0.0,
            "grad_accum": 15,
            "betas": PUBLIC_BETAS,
        },
    ),
    # WMDP's stand-in start: a tiny model pretrained on English help text and the quiz facts as QA text, each
    # fact seen about equally often (the forget category has 80 of the 469 items); no oracle, as the setting has
    # none. From here on it is treated exactly as google/gemma-2-2b is at paper scale.
    ("wmdp", "embedded"): [
        Job(
            "pretrain",
            "base",
            {
                "role": "base",
                "mix": {"en": 0.2, "retain": 0.66, "forget": 0.14},
                "batch_size": 16,
                "eval_every": 200,
                "seed": 0,
                "optim": {"lr": 3e-3, "min_lr": 3e-4, "warmup": 30, "steps": 800, "weight_decay": 0.1},
            },
        )
    ],
    # The paper's WMDP start, for each domain: the pretrained google/gemma-2-2b (gated: a token in
    # tokens/hf_token.txt).
    **{
        (setting, "paper"): [Job("pretrain", "base", {"role": "base", "start": "google/gemma-2-2b", "batch_size": 8})]
        for setting in WMDP_SETTINGS
    },
}


def print_table(exp) -> None:
    print(metrics_table(exp, exp.finished_runs("pretrain")))


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__.splitlines()[0], GRIDS, argv, after=print_table)


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
