"""Each fast path computes the eager model's function (undo.model.fast_paths); on a CPU none is taken."""

from __future__ import annotations

import copy

import pytest
import torch

from undo.model.fast_paths import FastPaths, accelerate, use_attention
from undo.model.heads import predictions
from undo.params import Optim
from undo.training.objectives import LanguageModeling
from undo.training.optimizer import make_optimizer


def batch(model, rows: int = 2, length: int = 48) -> dict:
    torch.manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (rows, length))
    return {"train": {"input_ids": ids, "loss_mask": torch.ones_like(ids, dtype=torch.bool)}}


def test_a_cpu_takes_no_fast_path():
    assert FastPaths.for_device(torch.device("cpu")) == FastPaths()


def test_flex_attention_gives_the_eager_logits(micro_model):
    """flex_attention has no backward pass on a CPU: its gradients are compared on a GPU (benchmarks/gpu_check.py)."""
    flex = copy.deepcopy(micro_model)
    use_attention(flex, "flex")
    ids = batch(micro_model)["train"]["input_ids"]
    with torch.no_grad():
        eager, fast = predictions(micro_model, ids), predictions(flex, ids)
    assert torch.allclose(fast, eager, atol=1e-5), (fast - eager).abs().max()
    assert flex.config._attn_implementation == "flex_attention"


def test_an_unknown_attention_path_is_one_line(micro_model):
    with pytest.raises(ValueError, match="unknown attention path 'sdpa': choose eager or flex"):
        use_attention(micro_model, "sdpa")


def test_fused_adamw_takes_the_same_steps(micro_model):
    models = [micro_model, copy.deepcopy(micro_model)]
    optimizers = [
        make_optimizer(list(m.parameters()), Optim(lr=1e-2, steps=3), fused=f)
        for m, f in zip(models, (False, True), strict=True)
    ]
    for _ in range(3):
        for model, optimizer in zip(models, optimizers, strict=True):
            LanguageModeling()(model, batch(model))[0].backward()
            optimizer.step()
            optimizer.zero_grad()
    assert optimizers[1].param_groups[0]["fused"]
    for plain, fused in zip(*(m.parameters() for m in models), strict=True):
        assert torch.allclose(plain, fused, atol=1e-6)


@pytest.mark.slow
def test_a_compiled_model_gives_the_eager_loss_and_gradients(micro_model):
    compiled = accelerate(copy.deepcopy(micro_model), FastPaths(compile=True))
    losses = [LanguageModeling(chunk_rows=16)(m, batch(m))[0] for m in (micro_model, compiled)]
    for loss in losses:
        loss.backward()
    assert torch.allclose(losses[0], losses[1], atol=1e-5)
    for eager, fast in zip(micro_model.parameters(), compiled.parameters(), strict=True):
        assert torch.allclose(eager.grad, fast.grad, atol=1e-5, rtol=1e-4), (eager.grad - fast.grad).abs().max()


def test_training_takes_the_paths_of_its_device(micro_model, monkeypatch):
    from accelerate import Accelerator

    from undo.training.loop import TrainState

    paths = FastPaths(attention="flex", fused_optimizer=True)
    monkeypatch.setattr(FastPaths, "for_device", classmethod(lambda cls, device: paths))
    state = TrainState.start(
        micro_model, LanguageModeling(), {"train": iter(())}, Optim(lr=1e-3, steps=1), Accelerator(cpu=True)
    )
    assert state.optimizer.param_groups[0]["fused"]
    assert state.model.config._attn_implementation == "flex_attention"
