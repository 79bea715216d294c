"""A prepared check for a lent GPU (a few minutes on one): speed and memory of the paper's 0.1B model.

    uv run python benchmarks/gpu_check.py              # the GPU: 0.1B, sequence 2048, vocabulary 256k, bf16
    uv run python benchmarks/gpu_check.py --cpu-smoke  # the same code on the CPU with a micro model (the tests)

Prints one table: tokens/s and model FLOPs utilisation (MFU) of a pretraining step and of a distillation step
(a forward-only teacher and a student step), each on full logits and with the losses chunked as in the paper
grids; the peak GPU memory of the distillation step with and without chunking; and, where liger-kernel is
installed, its fused linear cross-entropy against the chunked one (differences, time, memory). FLOPs count 6N
per trained token and 2N per teacher token (N = unique parameters; attention's own FLOPs are left out, so MFU is
a slight underestimate). Short paper-scale jobs of every stage are the rehearsal's (`run_all.py --scale
rehearsal`), which runs on the GPU as it does on the CPU, with no hub access.
"""

from __future__ import annotations

import argparse
import time

import torch

from undo.settings import PAPER_CHUNK_ROWS

# Dense bf16 peak FLOP/s by device name, for MFU (None for other devices).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_BF16.items() if key in name), None)


def build(preset: str, vocab: int, device: torch.device):
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from undo.model.models import GEMMA2_2B, PRESETS

    config = Gemma2Config(
        **{**GEMMA2_2B, **PRESETS[preset], "vocab_size": vocab}, attn_implementation="eager", use_cache=False
    )
    return Gemma2ForCausalLM(config).to(device)


def timed_steps(step, steps: int, device: torch.device) -> float:
    """Seconds per step after one warm-up step."""
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def measure(args, device: torch.device) -> list[tuple[str, str, str, str]]:
    from undo.model.models import count_parameters
    from undo.params import Optim
    from undo.training.objectives import Distillation, LanguageModeling
    from undo.training.optimizer import make_optimizer

    torch.manual_seed(0)
    student, teacher = build(args.model, args.vocab, device), build(args.model, args.vocab, device).eval()
    teacher.requires_grad_(False)
    n = count_parameters(student)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq), device=device)
    batch = {"train": {"input_ids": ids, "loss_mask": torch.ones_like(ids, dtype=torch.bool)}}
    optimizer = make_optimizer(list(student.parameters()), Optim(lr=1e-4, steps=1))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step(objective):
        def run():
            with autocast:
                loss, _ = objective(student, batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return run

    tokens = args.batch * args.seq
    peak = peak_flops(device)
    rows = []
    for chunk_rows in (None, args.chunk_rows):
        chunks = "full logits" if chunk_rows is None else f"chunks of {chunk_rows}"
        for label, objective, flops_per_token in (
            ("pretraining step", LanguageModeling(chunk_rows), 6 * n),
            ("distillation step", Distillation(teacher, chunk_rows), 8 * n),
        ):
            seconds = timed_steps(step(objective), args.steps, device)
            mfu = "–" if peak is None else f"{100 * flops_per_token * tokens / seconds / peak:.1f}%"
            rows.append((f"{label} ({chunks})", f"{tokens / seconds:,.0f} tokens/s", mfu, ""))
    for chunk_rows in (None, args.chunk_rows):
        if device.type != "cuda":  # the CPU's peak resident memory only grows: see benchmarks/distill_memory.py
            rows.append((f"distillation peak memory, chunks {chunk_rows}", "–", "", "GPU only"))
            continue
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        step(Distillation(teacher, chunk_rows))()
        gib = torch.cuda.max_memory_allocated(device) / 2**30
        rows.append((f"distillation peak memory, chunks {chunk_rows}", f"{gib:.2f} GiB", "", ""))
    return rows + fused_cross_entropy(args, student, device)


def fused_cross_entropy(args, model, device: torch.device) -> list[tuple[str, str, str, str]]:
    """Liger-Kernel's fused linear cross-entropy (Gemma-2's soft-cap included) against the chunked CE of
    `undo.model.losses` on the same bf16 hidden states and output head: the largest differences of the loss and of its
    gradients (relative to the gradient's largest entry), and the time and peak memory of a forward and backward
    pass of each. Liger needs CUDA; elsewhere, or without the package, one row says why."""
    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
    except ImportError:
        return [("fused linear CE (Liger)", "–", "", "liger-kernel is not installed")]
    if device.type != "cuda":
        return [("fused linear CE (Liger)", "–", "", "CUDA only")]
    from undo.model.losses import Head, cross_entropy

    torch.manual_seed(0)
    cap = model.config.final_logit_softcapping
    ids = torch.randint(0, args.vocab, (args.batch, args.seq), device=device)
    mask = torch.ones_like(ids, dtype=torch.bool)
    hidden = torch.randn(args.batch, args.seq, model.config.hidden_size, device=device, dtype=torch.bfloat16)
    weight = model.get_output_embeddings().weight.detach().to(torch.bfloat16)
    liger = LigerFusedLinearCrossEntropyLoss(softcap=cap)

    def chunked(h, w):  # under autocast, as in training: each chunk's product in bf16
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return cross_entropy(Head(h, w, cap, args.chunk_rows), ids, mask)

    def fused(h, w):
        return liger(w, h[:, :-1].reshape(-1, h.size(-1)), ids[:, 1:].reshape(-1))

    results = {}
    for name, loss_fn in (("chunked", chunked), ("fused", fused)):
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        loss_fn(h, w).backward()  # warm-up (Triton compiles here)
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        start = time.perf_counter()
        loss = loss_fn(h, w)
        loss.backward()
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        gib = torch.cuda.max_memory_allocated(device) / 2**30
        results[name] = (loss.detach().float(), h.grad.float(), w.grad.float(), seconds, gib)
    (loss_c, gh_c, gw_c, *_), (loss_f, gh_f, gw_f, *_) = results["chunked"], results["fused"]
    differences = (
        f"loss {abs(loss_c - loss_f).item():.1e} (of {loss_c.item():.3f}); gradients "
        f"{((gh_c - gh_f).abs().max() / gh_c.abs().max()).item():.1e} (hidden), "
        f"{((gw_c - gw_f).abs().max() / gw_c.abs().max()).item():.1e} (head)"
    )
    rows = [("fused linear CE (Liger) against chunked CE", differences, "", "largest difference")]
    for name, (*_, seconds, gib) in results.items():
        rows.append((f"CE forward + backward, {name}", f"{1000 * seconds:.1f} ms, peak {gib:.2f} GiB", "", ""))
    return rows


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="0.1B")
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=256000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--chunk-rows", type=int, default=PAPER_CHUNK_ROWS)
    p.add_argument("--cpu-smoke", action="store_true", help="a micro model on the CPU: checks the code path")
    args = p.parse_args(argv)
    if args.cpu_smoke:
        args.model, args.seq, args.vocab, args.batch, args.steps, args.chunk_rows = "micro", 64, 512, 2, 1, 16
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu_smoke else "cpu")
    rows = measure(args, device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{args.model}, batch {args.batch} x {args.seq} tokens, vocabulary {args.vocab}, on {where}")
    print("| measured | value | MFU | note |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return rows


if __name__ == "__main__":
    main()
