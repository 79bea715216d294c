"""A prepared check for a lent GPU (one run of a few minutes): speed, memory and agreement of each fast path.

    python benchmarks/gpu_check.py                   # the GPU: 0.1B and 0.3B, sequence 2048, vocabulary 256k, bf16
    python benchmarks/gpu_check.py --cpu-smoke       # the same code on the CPU with a micro model (the tests)
    python benchmarks/gpu_check.py --table out.md    # also write each row to out.md as it is measured

For each model and each fast path (undo.model.fast_paths: flex attention, fused AdamW, torch.compile; larger
micro-batches) it times four step kinds with the paper grids' chunked losses (chunks of 1024 positions):
pretraining (language modelling), unlearning (MaxEnt: a forget and a retain batch), distillation (a forward-only
teacher and a student step) and evaluation (forward and CE in inference mode). Each row gives tokens/s, model FLOPs
utilisation (MFU) and peak GPU memory. FLOPs count 6N per trained token and 2N per forward-only token, with N the
unique parameters, the tied embedding included (MFU) and left out (MFU w/o emb.); attention's own FLOPs are not
counted, so both are slight underestimates. It then compares each path against eager attention on the same
weights and batch: the largest difference of the loss, of the logits and of the gradients (relative to the
gradient's largest entry).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import torch

from undo.model.fast_paths import FastPaths, accelerate
from undo.settings import PAPER_CHUNK_ROWS

# Dense bf16 peak FLOP/s by device name, for MFU (None for other devices).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}

PATHS = {
    "eager": FastPaths(),
    "fused AdamW": FastPaths(fused_optimizer=True),
    "flex": FastPaths(attention="flex"),
    "flex + fused AdamW": FastPaths(attention="flex", fused_optimizer=True),
    "flex + fused AdamW + compile": FastPaths(attention="flex", fused_optimizer=True, compile=True),
}
KINDS = ("pretraining", "unlearning", "distillation", "evaluation")


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_BF16.items() if key in name), None)


def build(preset: str, vocab: int, device: torch.device, seed: int = 0):
    from transformers import Gemma2ForCausalLM

    from undo.model.models import preset_config

    torch.manual_seed(seed)
    return Gemma2ForCausalLM(preset_config(preset, vocab)).to(device)


def autocast(device: torch.device):
    """bf16 autocast on a GPU, as the pipeline trains there; fp32 on the CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def failure(err: Exception) -> str:
    return f"failed: {type(err).__name__}: {(str(err).strip() or '?').splitlines()[0]}"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Bench:
    """One model's measurements: a student and a teacher on `paths`, random token batches."""

    def __init__(self, args, preset: str, paths: FastPaths, batch: int, device: torch.device):
        from undo.model.models import count_parameters
        from undo.params import Optim
        from undo.training.objectives import Distillation, LanguageModeling
        from undo.training.optimizer import make_optimizer
        from undo.unlearning.registry import make_objective

        self.device, self.steps, self.chunk = device, args.steps, args.chunk_rows
        self.student = accelerate(build(preset, args.vocab, device), paths)
        self.teacher = accelerate(build(preset, args.vocab, device, seed=1).eval().requires_grad_(False), paths)
        self.n = count_parameters(self.student)
        self.n_body = self.n - self.student.get_input_embeddings().weight.numel()
        self.optimizer = make_optimizer(list(self.student.parameters()), Optim(lr=1e-4, steps=1), paths.fused_optimizer)
        ones = torch.ones(batch, args.seq, dtype=torch.bool, device=device)
        self.batches = {
            name: {"input_ids": torch.randint(0, args.vocab, (batch, args.seq), device=device), "loss_mask": ones}
            for name in ("train", "forget", "retain")
        }
        self.objectives = {
            "pretraining": LanguageModeling(self.chunk),
            "unlearning": make_objective("maxent", self.student, {}, chunk_rows=self.chunk),
            "distillation": Distillation(self.teacher, self.chunk),
        }
        self.tokens = batch * args.seq

    def train_step(self, kind: str) -> None:
        with autocast(self.device):
            loss, _ = self.objectives[kind](self.student, self.batches)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def eval_step(self) -> None:
        from undo.model import losses
        from undo.model.heads import predictions

        data = self.batches["train"]
        with torch.inference_mode(), autocast(self.device):
            losses.cross_entropy(
                predictions(self.student, data["input_ids"], self.chunk), data["input_ids"], data["loss_mask"]
            ).item()

    def measure(self, kind: str) -> tuple[float, float]:
        """Seconds per step after two warm-up steps (compilation happens there) and the peak GPU memory (GiB) over
        the timed steps."""
        run = self.eval_step if kind == "evaluation" else lambda: self.train_step(kind)
        run(), run()
        synchronize(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        for _ in range(self.steps):
            run()
        synchronize(self.device)
        seconds = (time.perf_counter() - start) / self.steps
        gib = torch.cuda.max_memory_allocated(self.device) / 2**30 if self.device.type == "cuda" else float("nan")
        return seconds, gib

    def flops(self, kind: str, n: int) -> float:
        """FLOPs of one step: 6N per trained token, 2N per forward-only token (the teacher, evaluation)."""
        trained = {"pretraining": 1, "unlearning": 2, "distillation": 1, "evaluation": 0}[kind]
        forward_only = {"pretraining": 0, "unlearning": 0, "distillation": 1, "evaluation": 1}[kind]
        return self.tokens * (6 * n * trained + 2 * n * forward_only)


def speed_rows(args, device: torch.device, table, compiled: bool) -> None:
    """Every step kind of each model on each path that compiles (`compiled`) or not."""
    peak = peak_flops(device)
    for preset in args.models if not compiled else args.compile_models:
        for name, paths in PATHS.items():
            if paths.compile != compiled:
                continue
            for batch in sorted({args.batch, *(args.large_batches if name == args.large_batch_path else ())}):
                try:
                    bench = Bench(args, preset, paths, batch, device)
                    for kind in KINDS:
                        seconds, gib = bench.measure(kind)
                        mfu = [
                            "–" if peak is None else f"{100 * bench.flops(kind, n) / seconds / peak:.1f}%"
                            for n in (bench.n, bench.n_body)
                        ]
                        table(preset, name, batch, kind, f"{bench.tokens / seconds:,.0f}", *mfu, f"{gib:.1f}")
                except torch.OutOfMemoryError:
                    table(preset, name, batch, "the rest", "out of memory", "", "", "")
                except Exception as err:  # e.g. flex attention has no backward pass on a CPU: the other paths go on
                    table(preset, name, batch, "the rest", failure(err), "", "", "")
                bench = None
                if device.type == "cuda":
                    torch.cuda.empty_cache()


def agreement_rows(args, device: torch.device, table, compiled: bool) -> None:
    """Each path that compiles (`compiled`) or not against eager attention, same weights and batch: loss, logits and
    gradients of a pretraining step."""
    from undo.model.heads import predictions
    from undo.training.objectives import LanguageModeling

    preset = args.models[0]
    if compiled and preset not in args.compile_models:
        return
    torch.manual_seed(2)
    ids = torch.randint(0, args.vocab, (2, args.seq), device=device)
    batch = {"train": {"input_ids": ids, "loss_mask": torch.ones_like(ids, dtype=torch.bool)}}

    def run(paths: FastPaths):
        model = accelerate(build(preset, args.vocab, device), paths)
        with autocast(device):
            loss, _ = LanguageModeling(args.chunk_rows)(model, batch)
        loss.backward()
        with torch.no_grad(), autocast(device):
            logits = predictions(model, ids).float()
        return loss.detach().float(), logits, [p.grad.float() for p in model.parameters()]

    loss0, logits0, grads0 = run(FastPaths())
    models = {replace(paths, fused_optimizer=False) for paths in PATHS.values() if paths.compile == compiled}
    for paths in sorted(models - {FastPaths()}, key=str):
        name = paths.attention + (" + compile" if paths.compile else "")
        try:
            loss, logits, grads = run(paths)
        except Exception as err:  # e.g. flex attention has no backward pass on a CPU: the other paths go on
            table(preset, f"{name} vs eager", 2, "agreement", failure(err), "", "", "")
            continue
        grad = max(((g - g0).abs().max() / g0.abs().max()).item() for g, g0 in zip(grads, grads0, strict=True))
        table(preset, f"{name} vs eager", 2, "agreement",
              f"loss {abs(loss - loss0).item():.1e} of {loss0.item():.3f}",
              f"logits {(logits - logits0).abs().max().item():.1e}", f"gradients {grad:.1e}", "")  # fmt: skip


def main(argv: list[str] | None = None) -> list[tuple]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["0.1B", "0.3B"])
    p.add_argument("--compile-models", nargs="*", default=["0.1B"], help="the models to try torch.compile on")
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=256000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--large-batches", type=int, nargs="*", default=[8, 16])
    p.add_argument("--large-batch-path", default="flex + fused AdamW", help="the path tried at the large batches")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--chunk-rows", type=int, default=PAPER_CHUNK_ROWS)
    p.add_argument("--table", help="also append each row to this markdown file as it is measured")
    p.add_argument("--cpu-smoke", action="store_true", help="a micro model on the CPU: checks the code path")
    args = p.parse_args(argv)
    if args.cpu_smoke:
        args.models, args.compile_models, args.seq, args.vocab = ["micro"], [], 64, 512
        args.batch, args.large_batches, args.steps, args.chunk_rows = 2, [4], 1, 16
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu_smoke else "cpu")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    header = (
        f"{where}, torch {torch.__version__}; sequence {args.seq}, vocabulary {args.vocab}, chunks of "
        f"{args.chunk_rows}, {args.steps} timed steps\n\n| model | path | batch | step | tokens/s | MFU | "
        "MFU w/o emb. | peak GiB |\n|---|---|---|---|---|---|---|---|"
    )
    rows = []

    def table(*row) -> None:
        rows.append(row)
        line = "| " + " | ".join(str(cell) for cell in row) + " |"
        print(line, flush=True)
        if args.table:
            with open(args.table, "a") as f:
                f.write(line + "\n")

    print(header, flush=True)
    if args.table:
        with open(args.table, "a") as f:
            f.write(header + "\n")
    for compiled in (False, True):  # compilation last: it takes the longest
        agreement_rows(args, device, table, compiled)
        speed_rows(args, device, table, compiled)
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
