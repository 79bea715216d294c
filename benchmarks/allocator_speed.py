"""Training-step and evaluation tokens/s of the embedded model with glibc's default allocator and with freed memory
kept for reuse (undo.runner.allocator), each measured in a fresh process, rounds alternating.

    uv run python benchmarks/allocator_speed.py [--rounds 3] [--steps 30] [--preset tiny]

A training step is forward, next-token CE, backward and AdamW at the embedded batch (16 x 128 tokens); an
evaluation batch is a forward of `eval_batch_size` blocks under inference mode, as `undo.evaluate.ce` runs it.
Target: the kept memory is no slower on either, on the machine that runs the embedded pipeline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def measure(preset: str, steps: int, keep: bool) -> dict[str, float]:
    if keep:
        from undo.runner.allocator import keep_freed_memory

        keep_freed_memory()
    import torch
    import torch.nn.functional as F

    from undo.experiment import Experiment
    from undo.model.models import build_model

    exp = Experiment("language", "embedded")
    model = build_model(preset, exp.tokenizer, seed=0)
    generator = torch.Generator().manual_seed(0)
    train_ids = torch.randint(len(exp.tokenizer), (16, exp.scale.seq_len), generator=generator)
    eval_ids = torch.randint(len(exp.tokenizer), (exp.scale.eval_batch_size, exp.scale.seq_len), generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        logits = model(input_ids=train_ids).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), train_ids[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    train = steps * train_ids.numel() / (time.perf_counter() - start)
    with torch.inference_mode():
        model(input_ids=eval_ids)
        start = time.perf_counter()
        for _ in range(steps // 3):
            model(input_ids=eval_ids)
        evaluation = steps // 3 * eval_ids.numel() / (time.perf_counter() - start)
    return {"train": train, "eval": evaluation}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--child", choices=("default", "kept"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.preset, args.steps, args.child == "kept")))
        return
    results: dict[str, list[dict]] = {"default": [], "kept": []}
    for _ in range(args.rounds):
        for mode in results:
            command = [sys.executable, __file__, "--child", mode, "--steps", str(args.steps), "--preset", args.preset]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[mode].append(json.loads(out.strip().splitlines()[-1]))
    print(f"model {args.preset}, {args.rounds} rounds of fresh processes, median tokens/s (each round)")
    for mode, rounds in results.items():
        row = [f"{mode:8s}"]
        for kind in ("train", "eval"):
            values = [r[kind] for r in rounds]
            row.append(f"{kind} {statistics.median(values):7.0f} ({', '.join(f'{v:.0f}' for v in values)})")
        print("  ".join(row))
    for kind in ("train", "eval"):
        ratio = statistics.median(r[kind] for r in results["kept"]) / statistics.median(
            r[kind] for r in results["default"]
        )
        print(f"{kind}: kept / default = {ratio:.2f}")


if __name__ == "__main__":
    main()
