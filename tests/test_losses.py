"""The loss functions against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from undo import losses


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
