"""The training loop: learning, FLOP and token accounting, divergence, SAM, stop rules."""

from __future__ import annotations

import copy

import pytest
import torch

from undo.data.sampling import Mixture
from undo.errors import UserError
from undo.model.models import count_parameters
from undo.params import Optim
from undo.training.loop import Evaluation, train
from undo.training.objectives import Distillation, LanguageModeling, Objective
from undo.training.optimizer import make_optimizer, restore, sam_perturb


def stream(exp, domain="en", batch_size=4):
    return Mixture({domain: exp.blocks(domain, "train")}, {domain: 1.0}, batch_size, seed=0)


def test_thirty_step_pretrain_of_a_micro_model_lowers_the_loss(exp, micro_model, accelerator):
    validation = exp.blocks("en", "validation").head(8)
    from undo.evaluate.ce import domain_ce

    result = train(
        micro_model,
        LanguageModeling(),
        {"train": stream(exp)},
        Optim(lr=3e-3, steps=30),
        accelerator=accelerator,
        evaluation=Evaluation(lambda m: {"en_ce": domain_ce(m, validation, accelerator)}, every=10),
    )
    first, last = result.evals[0]["en_ce"], result.evals[-1]["en_ce"]
    assert [e["step"] for e in result.evals] == [0, 10, 20, 30]
    assert last < first - 0.3


def test_flops_and_tokens_follow_6n_and_2n(exp, micro_model, accelerator):
    teacher = copy.deepcopy(micro_model)
    result = train(
        micro_model,
        Distillation(teacher),
        {"train": stream(exp, batch_size=3)},
        Optim(lr=1e-3, steps=5, grad_accum=2),
        accelerator=accelerator,
    )
    n = count_parameters(micro_model)
    tokens = 5 * 2 * 3 * 128
    assert (result.tokens, result.frozen_tokens) == (tokens, tokens)
    assert result.flops == 6 * n * tokens + 2 * n * tokens


class Exploding(Objective):
    def __call__(self, model, batch):
        return model(input_ids=batch["train"]["input_ids"]).logits.mean() * float("nan"), {}


def test_nan_loss_stops_with_a_clear_error(exp, micro_model, accelerator):
    with pytest.raises(UserError, match=r"loss became nan at step 1 .*lower the learning rate"):
        train(micro_model, Exploding(), {"train": stream(exp)}, Optim(lr=1e-3, steps=3), accelerator=accelerator)


def test_bad_optimiser_settings_are_clear_errors():
    with pytest.raises(UserError, match=r"^lr: Input should be greater than 0 \(got 0.0\)$"):
        Optim.parse({"lr": 0.0, "steps": 10})
    with pytest.raises(UserError, match="grad_accum: Input should be greater than or equal to 1"):
        Optim.parse({"lr": 1e-3, "steps": 10, "grad_accum": 0})


def test_stop_rule_ends_training_at_the_eval_that_satisfies_it(exp, micro_model, accelerator):
    calls = []

    def evaluate(model):
        calls.append(len(calls))
        return {"score": float(len(calls))}

    result = train(
        micro_model,
        LanguageModeling(),
        {"train": stream(exp)},
        Optim(lr=1e-3, steps=50),
        accelerator=accelerator,
        evaluation=Evaluation(evaluate, every=5, stop=lambda m: m["score"] >= 3),
    )
    assert result.stop_rule_met and result.steps == 10


def test_sam_perturbation_has_norm_rho_and_is_undone_exactly(micro_model):
    params = list(micro_model.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    before = [p.detach().clone() for p in params]
    saved = sam_perturb(params, rho=0.05)
    moved = torch.sqrt(sum((p.detach() - b).pow(2).sum() for p, b in zip(params, before, strict=False)))
    assert moved.item() == pytest.approx(0.05, rel=1e-4)
    restore(params, saved)
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=False))


def test_sam_step_equals_adamw_on_the_gradient_at_the_perturbed_point(exp, micro_model, accelerator):
    """The loop's SAM step must equal: gradient at theta + rho g/|g|, then a plain AdamW step from theta."""
    rho = 0.05
    batch = next(stream(exp, batch_size=2))
    reference = copy.deepcopy(micro_model)

    class Fixed(Objective):
        def __call__(self, model, _):
            return LanguageModeling()(model, {"train": batch})

    train(
        micro_model,
        Fixed(),
        {"train": iter(lambda: batch, None)},
        Optim(lr=1e-2, steps=1, sam_rho=rho),
        accelerator=accelerator,
    )

    params = list(reference.parameters())
    loss, _ = Fixed()(reference, None)
    loss.backward()
    saved = sam_perturb(params, rho)
    reference.zero_grad()
    Fixed()(reference, None)[0].backward()
    restore(params, saved)
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer = make_optimizer(params, Optim(lr=1e-2, steps=1))
    optimizer.step()
    for trained, expected in zip(micro_model.parameters(), reference.parameters(), strict=False):
        assert torch.allclose(trained, expected, atol=1e-6)


def test_known_start_metrics_stand_for_the_step_0_evaluation(exp, micro_model, accelerator):
    evaluated_at = []

    def evaluate(model):
        evaluated_at.append(len(evaluated_at))
        return {"score": 1.0}

    def train_from(start_metrics: dict, stop=None):
        return train(
            micro_model,
            LanguageModeling(),
            {"train": stream(exp)},
            Optim(lr=1e-3, steps=4),
            accelerator=accelerator,
            evaluation=Evaluation(evaluate, every=2, stop=stop, start=start_metrics),
        )

    result = train_from({"score": 7.0}, stop=lambda m: m["score"] > 5)
    assert len(evaluated_at) == 0 and result.steps == 0 and result.stop_rule_met  # the known metrics met the rule
    result = train_from({"score": 0.5})
    assert len(evaluated_at) == 2  # steps 2 and 4, not 0
    assert [(e["step"], e["score"]) for e in result.evals] == [(0, 0.5), (2, 1.0), (4, 1.0)]


def test_sam_takes_the_gradient_uphill_of_the_weights(accelerator):
    """L(w) = |w|^2 / 2 near its minimum: the gradient at w + rho w/|w| (uphill) points like w, so AdamW's first
    step, lr * g / (|g| + eps), moves each weight towards 0; taken downhill (w - rho w/|w|) it would point away."""
    w0 = torch.tensor([[1e-3, -2e-3, 5e-4]])
    model = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(w0)

    class Bowl(Objective):
        def __call__(self, model, batch):
            return model.weight.pow(2).sum() / 2, {}

    rows = {"input_ids": torch.zeros(1, 1, dtype=torch.long), "loss_mask": torch.ones(1, 1, dtype=torch.bool)}
    lr, rho = 1e-4, 0.05
    train(
        model, Bowl(), {"train": iter(lambda: rows, None)}, Optim(lr=lr, steps=1, sam_rho=rho), accelerator=accelerator
    )
    uphill = w0 + rho * w0 / w0.norm()  # the gradient of |w|^2 / 2 is w itself
    expected = w0 - lr * uphill / (uphill.abs() + 1e-8)
    assert torch.allclose(model.weight.detach(), expected, rtol=0, atol=1e-9)
    assert (model.weight.detach().abs() < w0.abs()).all()
