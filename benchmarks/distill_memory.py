"""Peak memory of one distillation step at Gemma's 256k vocabulary: logits in full against chunked from hidden
states (losses.Head with chunk_rows), on the CPU.

    uv run python benchmarks/distill_memory.py [--model 0.1B] [--seq 2048] [--vocab 256000] [--chunk-rows 256]

Each variant runs in a fresh process (peak RSS only grows): build teacher and student, then one step (forward,
backward, AdamW); and the loss alone from random hidden states, which isolates what chunking changes (the
transformer's activations, eager attention at 2048 included, are the same in both). It prints the peak resident
memory, what the step or loss added to it, the loss of both variants (they must agree) and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def step(preset: str, seq: int, vocab: int, chunk_rows: int | None) -> dict:
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from undo.model.models import GEMMA2_2B, PRESETS
    from undo.params import Optim
    from undo.training.objectives import Distillation
    from undo.training.optimizer import make_optimizer

    torch.manual_seed(0)
    config = Gemma2Config(
        **{**GEMMA2_2B, **PRESETS[preset], "vocab_size": vocab}, attn_implementation="eager", use_cache=False
    )
    teacher, student = Gemma2ForCausalLM(config).eval(), Gemma2ForCausalLM(config)
    ids = torch.randint(0, vocab, (1, seq), generator=torch.Generator().manual_seed(1))
    batch = {"train": {"input_ids": ids, "loss_mask": torch.ones_like(ids, dtype=torch.bool)}}
    optimizer = make_optimizer(list(student.parameters()), Optim(lr=1e-4, steps=1))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    loss, _ = Distillation(teacher, chunk_rows)(student, batch)
    loss.backward()
    optimizer.step()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"models_mib": before / 1024, "peak_mib": peak / 1024, "loss": loss.item(), "seconds": seconds}


def loss_only(preset: str, seq: int, vocab: int, chunk_rows: int | None) -> dict:
    """The loss alone, from random final hidden states and heads: what the chunking changes, without the
    transformer's activations (the same in both variants)."""
    import torch

    from undo.model import losses
    from undo.model.models import PRESETS
    from undo.model.softcap import soft_cap

    torch.manual_seed(0)
    hidden = PRESETS[preset]["hidden_size"]
    student_h = torch.randn(1, seq, hidden, requires_grad=True)
    teacher_h = torch.randn(1, seq, hidden)
    student_w = (torch.randn(vocab, hidden) * 0.02).requires_grad_()
    teacher_w = torch.randn(vocab, hidden) * 0.02
    mask = torch.ones(1, seq, dtype=torch.bool)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if chunk_rows:
        loss = losses.forward_kl(
            losses.Head(teacher_h, teacher_w, 30.0, chunk_rows),
            losses.Head(student_h, student_w, 30.0, chunk_rows),
            mask,
        )
    else:
        cap = lambda x: soft_cap(x, 30.0)  # noqa: E731
        loss = losses.forward_kl(cap(teacher_h @ teacher_w.t()), cap(student_h @ student_w.t()), mask)
    loss.backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "models_mib": before / 1024,
        "peak_mib": peak / 1024,
        "loss": loss.item(),
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="0.1B")
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=256000)
    p.add_argument("--chunk-rows", type=int, default=256)
    p.add_argument("--variant", help=argparse.SUPPRESS)  # internal: "<step|loss>:<chunk rows, 0 = none>"
    args = p.parse_args()
    if args.variant is not None:
        what, chunk = args.variant.split(":")
        measure = step if what == "step" else loss_only
        print(json.dumps(measure(args.model, args.seq, args.vocab, int(chunk) or None)))
        return
    print(f"{args.model} model, vocabulary {args.vocab}, sequence {args.seq}, batch 1, CPU")
    print("| measured | variant | before MiB | peak MiB | added MiB | loss | seconds |")
    print("|---|---|---|---|---|---|---|")
    for what, label in (("step", "one step (fwd, bwd, AdamW)"), ("loss", "the loss alone (+ bwd)")):
        rows = {}
        for variant, chunk in (("full logits", 0), (f"chunked, {args.chunk_rows} rows", args.chunk_rows)):
            command = [sys.executable, __file__, "--model", args.model, "--seq", str(args.seq)]
            command += ["--vocab", str(args.vocab), "--variant", f"{what}:{chunk}"]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows[variant] = r = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"| {label} | {variant} | {r['models_mib']:.0f} | {r['peak_mib']:.0f} |"
                f" {r['peak_mib'] - r['models_mib']:.0f} | {r['loss']:.6f} | {r['seconds']:.1f} |"
            )
        full, chunked = rows.values()
        added = (full["peak_mib"] - full["models_mib"]) / (chunked["peak_mib"] - chunked["models_mib"])
        print(
            f"| {label} | ratio full / chunked | | {full['peak_mib'] / chunked['peak_mib']:.2f}x | {added:.2f}x |"
            f" gap {abs(full['loss'] - chunked['loss']):.1e} | |"
        )


if __name__ == "__main__":
    main()
