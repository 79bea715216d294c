"""Gemma-2's soft-cap through sigmoid on a CPU: the same function as transformers' tanh, to float rounding."""

from __future__ import annotations

import pytest
import torch

from undo.model.softcap import soft_cap, tanh_


def test_soft_cap_and_its_gradient_equal_the_tanh_formula():
    x = (torch.randn(4, 1000, generator=torch.Generator().manual_seed(0)) * 40).requires_grad_()
    reference = torch.tanh(x / 30.0) * 30.0
    capped = soft_cap(x, 30.0)
    assert torch.allclose(capped, reference, atol=1e-5, rtol=0)
    assert capped.abs().max() <= 30.0 and capped.abs().max() > 29.0  # large inputs saturate at the cap
    grad = torch.randn_like(x)
    (expected,) = torch.autograd.grad(reference, x, grad)
    (got,) = torch.autograd.grad(capped, x, grad)
    assert torch.allclose(got, expected, atol=1e-6)
    assert soft_cap(x, None) is x


def test_soft_cap_keeps_torchs_tanh_outside_fp32_on_a_cpu():
    """bf16 (autocast on a GPU) keeps torch's tanh: 2 sigmoid - 1 would lose the small values' precision there."""
    x = torch.randn(64, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16) * 20
    assert torch.equal(soft_cap(x, 50.0), torch.tanh(x / 50.0) * 50.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tanh_in_place_equals_torchs_tanh(dtype):
    x = torch.linspace(-12, 12, 2001, dtype=dtype)
    expected = torch.tanh(x)
    out = tanh_(x)
    assert out is x
    assert torch.allclose(out, expected, atol=2e-7, rtol=0)


def test_models_attention_and_logits_equal_transformers_eager_model(micro_model, tokenizer):
    """The registered attention (undo.model.softcap.attention) against transformers' own eager attention, masks and
    grouped key/value heads included, on the same weights; and the logits the objectives compute outside the
    model's forward (heads.predictions) against the model's own."""
    from undo.model.heads import predictions

    ids = torch.randint(0, len(tokenizer), (3, 40), generator=torch.Generator().manual_seed(2))
    micro_model.eval()
    with torch.no_grad():
        ours, computed_here = micro_model(input_ids=ids).logits, predictions(micro_model, ids)
        micro_model.config._attn_implementation = "eager"
        eager = micro_model(input_ids=ids).logits
    assert torch.allclose(ours, eager, atol=1e-5)
    assert not torch.equal(ours, eager)  # the soft-cap really went another way
    assert torch.allclose(computed_here, eager, atol=1e-5)
