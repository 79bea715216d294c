"""One training step of the embedded model: its time, where it goes by torch operation, and what torch.compile
gives it.

    uv run python benchmarks/train_step_profile.py [--batch 16] [--compile]

A language-modelling step as pretraining and the attacks run it (the tiny preset, 128-token blocks, AdamW with
weight decay, clipping), timed over 20 steps after 5 warm-up steps; then torch.profiler's table of the operations'
own time over 10 steps. With --compile the same step with the model compiled (its first step, the compilation,
timed apart).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import undo.runner.allocator  # noqa: F401  (freed memory kept for reuse, as in every job)
from undo.data.tokenizer import load_tokenizer
from undo.model.models import build_model
from undo.params import Optim
from undo.training.objectives import LanguageModeling
from undo.training.optimizer import make_optimizer


def stepper(batch_size: int, compiled: bool):
    tokenizer = load_tokenizer("embedded")
    model = build_model("tiny", tokenizer, seed=0)
    model.train()
    if compiled:
        model.compile()
    objective = LanguageModeling()
    ids = torch.randint(0, len(tokenizer), (batch_size, 128), generator=torch.Generator().manual_seed(0))
    batch = {"train": {"input_ids": ids, "loss_mask": torch.ones_like(ids, dtype=torch.bool)}}
    optimizer = make_optimizer(list(model.parameters()), Optim(lr=1e-3, steps=100, weight_decay=0.1))

    def step() -> float:
        loss, _ = objective(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def timed(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--compile", action="store_true", help="also time the step with the model compiled")
    args = p.parse_args(argv)
    step = stepper(args.batch, compiled=False)
    timed(step, 5)
    print(f"eager: {1000 * timed(step, 20):.1f} ms a step")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timed(step, 10)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    if args.compile:
        step = stepper(args.batch, compiled=True)
        print(f"compiled: first step (compilation) {timed(step, 1):.1f} s")
        timed(step, 4)
        print(f"compiled: {1000 * timed(step, 20):.1f} ms a step")


if __name__ == "__main__":
    main(sys.argv[1:])
