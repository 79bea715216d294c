"""Pretrain the base model (retain + forget data) and the data-filtered oracle (retain data only).

python run_pretrain.py                                 # embedded language grid, CPU-sized
python run_pretrain.py --setting language --scale paper
"""

from __future__ import annotations

import sys

from undo.cli import guarded, run_stage
from undo.launch import Job


def base_and_oracle(retain: str, forget: str, **recipe) -> list[Job]:
    return [
        Job("pretrain", "base", {"role": "base", "mix": {retain: 0.5, forget: 0.5}, **recipe}),
        Job("pretrain", "oracle", {"role": "oracle", "mix": {retain: 1.0}, **recipe}),
    ]


GRIDS = {
    # 400 steps of 16 x 128 tokens (0.8M tokens) per model, ~2 min each on a 2-core CPU.
    ("language", "embedded"): base_and_oracle(
        "en",
        "ko",
        batch_size=16,
        eval_every=100,
        seed=0,
        optim={"lr": 2e-3, "min_lr": 2e-4, "warmup": 30, "steps": 400, "weight_decay": 0.1},
    ),
    # The paper's 0.1B recipe: 400 x 2048 tokens per step (4 x 100 accumulation: a 256k vocabulary makes
    # logits large), ~1 epoch of 2B tokens.
    ("language", "paper"): base_and_oracle(
        "en",
        "ko",
        batch_size=4,
        eval_every=250,
        seed=0,
        optim={
            "lr": 4e-4,
            "min_lr": 4e-5,
            "warmup": 50,
            "steps": 2441,
            "weight_decay": 0.1,
            "grad_accum": 100,
        },
    ),
}


def print_table(exp) -> None:
    from undo.report import ce_table

    print(ce_table(exp, exp.finished_runs("pretrain")))


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__.splitlines()[0], GRIDS, argv, after=print_table)


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
