"""Tokens/s of a training step whose loss reads the model's full logits against one that computes them from the
hidden states with their gradient in the same pass (`losses.Head` in one chunk), at the embedded scale.

    uv run python benchmarks/head_loss_speed.py [--rounds 8] [--steps 5] [--preset tiny] [--batch-size 16]

Both steps train the embedded-scale model (forward, loss, backward, AdamW) on the same batches, for language
modelling (cross-entropy) and for distillation (forward KL from a frozen teacher). Rounds of `--steps` steps
alternate between the two paths in one process, so this machine's drift hits both alike; the medians are printed.
At a 2,439-token vocabulary the two are about as fast (a 2-core CPU: 1.02x and 0.96x on an Intel VM; 0.99x and
0.99x on an AMD EPYC VM, head in chunks of 128-2048 rows no faster), so the embedded grids keep full logits
(`chunk_rows` unset) and the paper grids, at 256k, read the head.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from undo.experiment import Experiment
from undo.model import losses
from undo.model.heads import predictions
from undo.model.models import build_model
from undo.runner.allocator import keep_freed_memory


def head_logits(model, ids):
    return predictions(model, ids, chunk_rows=ids.numel())


def loss_fn(kind: str, logits_of, teacher):
    def loss(model, ids):
        mask = torch.ones_like(ids, dtype=torch.bool)
        if kind == "lm":
            return losses.cross_entropy(logits_of(model, ids), ids, mask)
        with torch.no_grad():
            reference = logits_of(teacher, ids)
        return losses.forward_kl(reference, logits_of(model, ids), mask)

    return loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args()
    keep_freed_memory()
    exp = Experiment("language", "embedded")
    blocks = exp.blocks("en", "train")
    generator = torch.Generator().manual_seed(0)
    picks = [torch.randint(len(blocks), (args.batch_size,), generator=generator) for _ in range(args.steps)]
    batches = [torch.from_numpy(blocks.ids[pick.numpy()].astype("int64")) for pick in picks]
    teacher = build_model(args.preset, exp.tokenizer, seed=1).eval()
    print(
        f"model {args.preset}, batch {args.batch_size} x {exp.scale.seq_len} tokens, {torch.get_num_threads()} threads"
    )
    for kind in ("lm", "kd"):
        paths = {"full logits": loss_fn(kind, predictions, teacher), "head": loss_fn(kind, head_logits, teacher)}
        models = {name: build_model(args.preset, exp.tokenizer, seed=0) for name in paths}
        optimizers = {name: torch.optim.AdamW(models[name].parameters(), lr=1e-3) for name in paths}
        speeds: dict[str, list[float]] = {name: [] for name in paths}
        for round_ in range(args.rounds + 1):  # the first round warms up
            for name, loss in paths.items():
                start = time.perf_counter()
                for ids in batches:
                    loss(models[name], ids).backward()
                    optimizers[name].step()
                    optimizers[name].zero_grad(set_to_none=True)
                if round_:
                    speeds[name].append(sum(ids.numel() for ids in batches) / (time.perf_counter() - start))
        full, head = (statistics.median(speeds[name]) for name in paths)
        print(f"{kind}: full logits {full:7.0f} tokens/s, head {head:7.0f} tokens/s, {head / full:.2f}x (medians)")


if __name__ == "__main__":
    main()
