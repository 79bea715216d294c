"""Tokens/s of the project's training loop against a bare PyTorch loop on the same model and batches.

    uv run python benchmarks/train_loop_speed.py [--steps 40] [--rounds 2] [--preset tiny] [--batch-size 16]

Both loops do forward, next-token CE, backward, gradient clipping and an AdamW step on the embedded-scale
model; the project's loop adds batch mixing, accelerate, token/FLOP counting and logging. Rounds alternate
between the two so that machine noise hits both alike. Target: the loop reaches >= 90% of the bare loop.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from undo.data.sampling import Mixture
from undo.experiment import Experiment
from undo.model.models import build_model
from undo.params import Optim
from undo.training.loop import train
from undo.training.objectives import LanguageModeling


def bare_loop(model, batches, lr: float) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95))
    start = time.perf_counter()
    for ids in batches:
        logits = model(input_ids=ids).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return sum(ids.numel() for ids in batches) / (time.perf_counter() - start)


def project_loop(model, exp, steps: int, batch_size: int, lr: float) -> float:
    data = Mixture({"en": exp.blocks("en", "train")}, {"en": 1.0}, batch_size, seed=0)
    result = train(
        model,
        LanguageModeling(),
        {"train": data},
        Optim(lr=lr, steps=steps),
        accelerator=exp.accelerator,
        desc="project loop",
    )
    return result.tokens / result.seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args()
    exp = Experiment("language", "embedded")
    blocks = exp.blocks("en", "train")
    generator = torch.Generator().manual_seed(0)
    batches = [
        torch.from_numpy(
            blocks.ids[torch.randint(len(blocks), (args.batch_size,), generator=generator).numpy()].astype("int64")
        )
        for _ in range(args.steps)
    ]
    warm = build_model(args.preset, exp.tokenizer, seed=0)
    bare_loop(warm, batches[:3], 1e-3)  # warm up kernels and allocator
    bare, loop = [], []
    for _ in range(args.rounds):
        bare.append(bare_loop(build_model(args.preset, exp.tokenizer, seed=0), batches, 1e-3))
        loop.append(
            project_loop(build_model(args.preset, exp.tokenizer, seed=0), exp, args.steps, args.batch_size, 1e-3)
        )
    print(
        f"model {args.preset}, batch {args.batch_size} x {exp.scale.seq_len} tokens, {args.steps} steps, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"bare PyTorch loop: {max(bare):8.0f} tokens/s (rounds: {', '.join(f'{x:.0f}' for x in bare)})")
    print(f"project loop:      {max(loop):8.0f} tokens/s (rounds: {', '.join(f'{x:.0f}' for x in loop)})")
    print(f"ratio (best/best): {max(loop) / max(bare):.1%}  target >= 90%")


if __name__ == "__main__":
    main()
