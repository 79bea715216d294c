"""The loss functions against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from undo.model import losses


def capped(logits: torch.Tensor) -> torch.Tensor:
    """Gemma-2's final soft-cap as transformers writes it."""
    return torch.tanh(logits / 30.0) * 30.0


def test_cross_entropy_matches_hand_value_and_ignores_masked_targets():
    # vocabulary of 2; position 0 predicts token 1 with logits (0, ln 3): p(1) = 3/4.
    logits = torch.tensor([[[0.0, math.log(3)], [0.0, 0.0], [5.0, 5.0]]])
    ids = torch.tensor([[0, 1, 0]])
    mask = torch.tensor([[True, True, False]])  # the third token is not a target
    total, count = losses.nll_sum(logits, ids, mask)
    assert count == 1
    assert total.item() == pytest.approx(-math.log(0.75))
    assert losses.cross_entropy(logits, ids, torch.ones_like(mask)).item() == pytest.approx(
        (-math.log(0.75) + math.log(2)) / 2
    )


def test_forward_kl_hand_value_and_zero_for_identical():
    p, q = torch.tensor([0.5, 0.25, 0.25]), torch.tensor([0.25, 0.5, 0.25])
    teacher = p.log().view(1, 1, 3).expand(1, 2, 3)  # two positions, the first predicts a target
    student = q.log().view(1, 1, 3).expand(1, 2, 3)
    mask = torch.ones(1, 2, dtype=torch.bool)
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p.tolist(), q.tolist(), strict=False))
    assert losses.forward_kl(teacher, student, mask).item() == pytest.approx(expected)
    assert losses.forward_kl(teacher, teacher, mask).item() == pytest.approx(0.0, abs=1e-7)


def test_kl_uniform_hand_value():
    p = torch.tensor([0.7, 0.2, 0.1])
    logits = p.log().view(1, 1, 3).expand(1, 2, 3)
    mask = torch.ones(1, 2, dtype=torch.bool)
    expected = sum((1 / 3) * (math.log(1 / 3) - math.log(pi)) for pi in p.tolist())
    assert losses.kl_uniform(logits, mask).item() == pytest.approx(expected)
    assert losses.kl_uniform(torch.zeros(1, 2, 5), mask).item() == pytest.approx(0.0, abs=1e-7)


def test_masked_mse_averages_over_the_positions_that_predict_a_target():
    hidden = torch.tensor([[[1.0, 3.0], [100.0, 100.0], [7.0, 7.0]]])
    target = torch.zeros(1, 3, 2)
    mask = torch.tensor([[False, True, False]])  # token 1 is the target: position 0 predicts it
    assert losses.masked_mse(hidden, target, mask).item() == pytest.approx((1 + 9) / 2)


def test_gaussian_mmd_is_zero_for_identical_samples_and_positive_otherwise():
    x = torch.randn(64, 4)
    assert losses.gaussian_mmd(x, x).item() == pytest.approx(0.0, abs=1e-5)
    assert losses.gaussian_mmd(x, x + 3.0).item() > 0.1


def test_chunked_forward_kl_equals_the_plain_loss_and_its_gradients():
    """From hidden states and output heads, a few positions at a time (soft-capped like Gemma-2): the same
    value (1e-5, fp32) and the same gradients as the KL of the full logits."""
    from undo.model.losses import Head

    generator = torch.Generator().manual_seed(0)
    hidden_s = torch.randn(2, 9, 16, generator=generator, requires_grad=True)
    hidden_t = torch.randn(2, 9, 24, generator=generator)
    head_s = (torch.randn(301, 16, generator=generator) * 2).requires_grad_()
    head_t = torch.randn(301, 24, generator=generator) * 2
    mask = torch.rand(2, 9, generator=generator) > 0.3
    plain = losses.forward_kl(capped(hidden_t @ head_t.t()), capped(hidden_s @ head_s.t()), mask)
    grads_plain = torch.autograd.grad(plain, [hidden_s, head_s])
    for chunk_rows in (None, 1, 4, 1000):
        chunked = losses.forward_kl(
            Head(hidden_t, head_t, 30.0, chunk_rows), Head(hidden_s, head_s, 30.0, chunk_rows), mask
        )
        grads = torch.autograd.grad(chunked, [hidden_s, head_s])
        assert chunked.item() == pytest.approx(plain.item(), abs=1e-5)
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, grads_plain, strict=True))


def test_chunked_cross_entropy_and_kl_to_uniform_equal_the_plain_losses_and_their_gradients():
    """The language-modelling and unlearning losses from hidden states, a few target positions at a time: the same
    values (1e-5, fp32) and gradients as from the full soft-capped logits, masked targets skipped alike."""
    from undo.model.losses import Head

    generator = torch.Generator().manual_seed(3)
    hidden = torch.randn(2, 9, 16, generator=generator, requires_grad=True)
    weight = (torch.randn(301, 16, generator=generator) * 2).requires_grad_()
    ids = torch.randint(0, 301, (2, 9), generator=generator)
    mask = torch.rand(2, 9, generator=generator) > 0.3
    logits = capped(hidden @ weight.t())
    for loss in (lambda x: losses.cross_entropy(x, ids, mask), lambda x: losses.kl_uniform(x, mask)):
        plain = loss(logits)
        grads_plain = torch.autograd.grad(plain, [hidden, weight], retain_graph=True)
        for chunk_rows in (None, 1, 4, 1000):
            chunked = loss(Head(hidden, weight, 30.0, chunk_rows))
            grads = torch.autograd.grad(chunked, [hidden, weight])
            assert chunked.item() == pytest.approx(plain.item(), abs=1e-5)
            assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, grads_plain, strict=True))


def _grads(model, loss: torch.Tensor) -> list[torch.Tensor]:
    return torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])


def test_chunked_distillation_objective_matches_the_models_full_logits(micro_model, tokenizer):
    """With `chunk_rows` the objective reads the output head from hidden states (losses.Head); its value and every
    parameter's gradient equal those of the KL between the two models' full logits (their own head and soft-cap)."""
    from undo.model.models import build_model
    from undo.training.objectives import Distillation

    teacher = build_model("micro", tokenizer, seed=1)
    ids = torch.randint(0, len(tokenizer), (2, 12), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids, dtype=torch.bool)
    with torch.no_grad():
        reference = teacher(input_ids=ids).logits
    plain = losses.forward_kl(reference, micro_model(input_ids=ids).logits, mask)
    expected = _grads(micro_model, plain)
    loss, _ = Distillation(teacher, chunk_rows=5)(micro_model, {"train": {"input_ids": ids, "loss_mask": mask}})
    assert loss.item() == pytest.approx(plain.item(), abs=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_grads(micro_model, loss), expected, strict=True))


def test_chunked_language_modeling_objective_matches_the_models_full_logits(micro_model, tokenizer):
    from undo.training.objectives import LanguageModeling

    ids = torch.randint(0, len(tokenizer), (2, 12), generator=torch.Generator().manual_seed(4))
    mask = torch.rand(2, 12, generator=torch.Generator().manual_seed(0)) > 0.2
    plain = losses.cross_entropy(micro_model(input_ids=ids).logits, ids, mask)
    expected = _grads(micro_model, plain)
    loss, _ = LanguageModeling(chunk_rows=5)(micro_model, {"train": {"input_ids": ids, "loss_mask": mask}})
    assert loss.item() == pytest.approx(plain.item(), abs=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_grads(micro_model, loss), expected, strict=True))


def test_head_loss_gradient_follows_what_is_done_with_the_loss():
    """The head's gradient is taken in the forward pass; the backward pass must still scale it by whatever the loss
    went through (GradDiff negates the forget CE, RepNoise takes a log), and leave out what needs no gradient."""
    from undo.model.losses import Head

    generator = torch.Generator().manual_seed(6)
    hidden = torch.randn(2, 9, 16, generator=generator, requires_grad=True)
    weight = (torch.randn(301, 16, generator=generator) * 2).requires_grad_()
    ids = torch.randint(0, 301, (2, 9), generator=generator)
    mask = torch.ones(2, 9, dtype=torch.bool)
    plain = losses.cross_entropy(capped(hidden @ weight.t()), ids, mask)
    expected = torch.autograd.grad(-torch.log(plain + 1), [hidden, weight])
    chunked = losses.cross_entropy(Head(hidden, weight, 30.0, 4), ids, mask)
    grads = torch.autograd.grad(-torch.log(chunked + 1), [hidden, weight])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, expected, strict=True))
    frozen = losses.cross_entropy(Head(hidden, weight.detach(), 30.0, 4), ids, mask)
    (only,) = torch.autograd.grad(-torch.log(frozen + 1), [hidden])
    assert torch.allclose(only, expected[0], atol=1e-6)
    with torch.inference_mode():
        assert losses.cross_entropy(Head(hidden, weight, 30.0, 4), ids, mask).item() == pytest.approx(plain.item())


def test_chunked_logits_under_autocast_take_its_dtype_as_the_model_head_does():
    """Under autocast (bf16 on a GPU) each chunk's product runs in autocast's dtype, as the model's own head does;
    the soft-cap and the loss stay in fp32. An fp32 product (the old chunked path, twice as slow on a GPU) gives a
    loss that differs by far more than the tolerance here."""
    from undo.model.losses import Head

    generator = torch.Generator().manual_seed(5)
    hidden = torch.randn(2, 9, 64, generator=generator)
    weight = torch.randn(301, 64, generator=generator)
    ids = torch.randint(0, 301, (2, 9), generator=generator)
    mask = torch.ones(2, 9, dtype=torch.bool)
    fp32 = losses.cross_entropy(capped(hidden @ weight.t()), ids, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = losses.cross_entropy(capped((hidden @ weight.t()).float()), ids, mask)
        chunked = losses.cross_entropy(Head(hidden, weight, 30.0, 4), ids, mask)
    assert chunked.item() == pytest.approx(plain.item(), abs=1e-5)
    assert abs(chunked.item() - fp32.item()) > 1e-3
