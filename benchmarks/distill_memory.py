"""Peak memory of one distillation step at Gemma's 256k vocabulary: logits in full against chunked from hidden
states (losses.chunked_forward_kl), on the CPU.

    uv run python benchmarks/distill_memory.py [--model 0.1B] [--seq 2048] [--vocab 256000] [--chunk-rows 1024]

Each variant runs in a fresh process (peak RSS only grows): build teacher and student, then one step (forward,
backward, AdamW). It prints the peak resident memory of each, what the step added over the models alone, the
loss of both (they must agree) and the ratio.
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

    from undo.models import GEMMA2_2B, PRESETS
    from undo.objectives import Distillation
    from undo.params import Optim
    from undo.train import make_optimizer

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="0.1B")
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=256000)
    p.add_argument("--chunk-rows", type=int, default=1024)
    p.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant in this process
    args = p.parse_args()
    if args.variant is not None:
        chunk = int(args.variant) or None
        print(json.dumps(step(args.model, args.seq, args.vocab, chunk)))
        return
    rows = {}
    for label, chunk in (("full logits", 0), (f"chunked ({args.chunk_rows} rows)", args.chunk_rows)):
        command = [sys.executable, __file__, "--model", args.model, "--seq", str(args.seq), "--vocab", str(args.vocab)]
        done = subprocess.run([*command, "--variant", str(chunk)], capture_output=True, text=True, check=True)
        rows[label] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{args.model} model, vocabulary {args.vocab}, sequence {args.seq}, batch 1, CPU, one step")
    print("| variant | models MiB | peak MiB | step adds MiB | loss | seconds |\n|---|---|---|---|---|---|")
    for label, r in rows.items():
        print(
            f"| {label} | {r['models_mib']:.0f} | {r['peak_mib']:.0f} | {r['peak_mib'] - r['models_mib']:.0f} |"
            f" {r['loss']:.6f} | {r['seconds']:.1f} |"
        )
    full, chunked = rows.values()
    ratio = (full["peak_mib"] - full["models_mib"]) / (chunked["peak_mib"] - chunked["models_mib"])
    print(
        f"the step's memory over the models: {ratio:.1f}x less with chunking; losses differ by "
        f"{abs(full['loss'] - chunked['loss']):.2e}"
    )


if __name__ == "__main__":
    main()
