"""Compute of the paper-scale grids on paper: distillation as % of the oracle's pretraining, from the grids.

    uv run python benchmarks/paper_compute.py [--setting language]

Counts as the training loop does (undo.compute): 6N per trained token, 2N per teacher token, the oracle's
pretraining 6N per token; teacher, student and oracle share one architecture, so N cancels. UNDO stops by its
rule, so its cost is shown per 100 steps and at its step cap; full distillation runs its fixed steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the run_*.py grids

import run_distill
import run_pretrain
from undo.settings import get_setting
from undo.training.loop import training_flops


def tokens(params: dict, seq_len: int, steps: int | None = None) -> int:
    optim = params["optim"]
    return params["batch_size"] * optim.get("grad_accum", 1) * seq_len * (steps or optim["steps"])


def distillation_flops(params: dict, seq_len: int, steps: int | None = None) -> float:
    """Student forward and backward plus teacher forward on every token."""
    n = tokens(params, seq_len, steps)
    return training_flops(1, n, frozen_params=1, frozen_tokens=n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setting", default="language")
    args = p.parse_args()
    seq = get_setting(args.setting).scale("paper").seq_len
    pretrain = {j.name: j.params for j in run_pretrain.GRIDS[(args.setting, "paper")]}
    distill = {j.name: j.params for j in run_distill.GRIDS[(args.setting, "paper")]}
    oracle = training_flops(1, tokens(pretrain["oracle"], seq))
    base_steps, oracle_steps = pretrain["base"]["optim"]["steps"], pretrain["oracle"]["optim"]["steps"]
    oracle_tokens = tokens(pretrain["oracle"], seq) / 1e9
    print(f"{args.setting}, paper scale: oracle {oracle_steps} steps ({oracle_tokens:.2f}B tokens)")
    full = distill["full-maxent"]
    undo = next(params for name, params in distill.items() if name.startswith("undo-") and params["alpha"] == 0.8)
    rows = [
        (f"full distillation, {full['optim']['steps']} fixed steps", distillation_flops(full, seq)),
        ("UNDO alpha 0.8, per 100 steps", distillation_flops(undo, seq, 100)),
        (f"UNDO alpha 0.8, at its cap of {undo['optim']['steps']} steps", distillation_flops(undo, seq)),
    ]
    old = oracle * base_steps / oracle_steps  # the oracle trained as long as the base model (before the fix)
    print("| run | % of oracle | % with the oracle as long as the base |\n|---|---|---|")
    for label, flops in rows:
        print(f"| {label} | {100 * flops / oracle:.1f} | {100 * flops / old:.1f} |")


if __name__ == "__main__":
    main()
