"""Unlearning objectives: signs, which weights move, hooks, selection, and clear errors."""

from __future__ import annotations

import pytest
import torch

from tests.test_train import stream
from undo.errors import UserError
from undo.evaluate.metrics import Metric
from undo.model import losses
from undo.params import Optim
from undo.runs.selection import select
from undo.training.loop import Evaluation, train
from undo.unlearning import make_objective, variant
from undo.unlearning.joint import decoder_layers


def two_streams(exp, batch_size=4):
    return {"forget": stream(exp, "ko", batch_size), "retain": stream(exp, "en", batch_size)}


def forget_ce(model, batch):
    with torch.no_grad():
        return losses.cross_entropy(
            model(input_ids=batch["input_ids"]).logits, batch["input_ids"], batch["loss_mask"]
        ).item()


def test_graddiff_step_increases_forget_ce(exp, micro_model, accelerator):
    batch = next(stream(exp, "ko", 8))
    before = forget_ce(micro_model, batch)
    objective = make_objective("graddiff", micro_model, {"retain_weight": 0.0})
    fixed = {"forget": iter(lambda: batch, None), "retain": stream(exp, "en")}
    train(micro_model, objective, fixed, Optim(lr=1e-2, steps=1), accelerator=accelerator)
    assert forget_ce(micro_model, batch) > before


def test_maxent_moves_forget_predictions_towards_uniform(exp, micro_model, accelerator):
    batch = next(stream(exp, "ko", 8))
    kl = lambda m: losses.kl_uniform(m(input_ids=batch["input_ids"]).logits, batch["loss_mask"]).item()  # noqa: E731
    before = kl(micro_model)
    objective = make_objective("maxent", micro_model, {"retain_weight": 0.0})
    train(
        micro_model,
        objective,
        {"forget": iter(lambda: batch, None), "retain": stream(exp, "en")},
        Optim(lr=1e-2, steps=5),
        accelerator=accelerator,
    )
    assert kl(micro_model) < before


def test_rmu_trains_exactly_the_listed_down_projections_and_lowers_its_forget_loss(exp, micro_model, accelerator):
    before = {name: p.detach().clone() for name, p in micro_model.named_parameters()}
    objective = make_objective("rmu", micro_model, {"layer": 1, "trainable_layers": [0, 1], "steering_coef": 5.0})
    logged = []

    class Tracker:
        def log(self, record, step):
            logged.append(record)

    train(
        micro_model,
        objective,
        two_streams(exp),
        Optim(lr=1e-2, steps=20),
        accelerator=accelerator,
        tracker=Tracker(),
    )
    changed = {name for name, p in micro_model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {f"model.layers.{i}.mlp.down_proj.weight" for i in (0, 1)}
    forget = [r["forget_mse"] for r in logged if r["kind"] == "train"]
    assert forget[-1] < forget[0]
    # RMU's hook is removed at the end; what is left is transformers' own (it records hidden states)
    left = [hook.__module__ for layer in decoder_layers(micro_model) for hook in layer._forward_hooks.values()]
    assert all(module.startswith("transformers.") for module in left)


def test_rmu_target_is_a_seeded_scaled_unit_vector(micro_model):
    a = make_objective("rmu", micro_model, {"layer": 1, "steering_coef": 6.5}, seed=3)
    b = make_objective("rmu", micro_model, {"layer": 1, "steering_coef": 6.5}, seed=3)
    assert a.target.norm().item() == pytest.approx(6.5)
    assert torch.equal(a.target, b.target)
    a.close()
    b.close()


def test_repnoise_registers_its_hooks_once(exp, micro_model, accelerator):
    objective = make_objective("maxent", micro_model, {}, repnoise={"alpha": 0.5, "beta": 0.1})
    mlps = [layer.mlp for layer in decoder_layers(micro_model)]
    counts = []

    def evaluate(model):
        counts.append(sum(len(m._forward_hooks) for m in mlps))
        return {}

    train(
        micro_model,
        objective,
        two_streams(exp),
        Optim(lr=1e-3, steps=4),
        accelerator=accelerator,
        evaluation=Evaluation(evaluate, every=1),
    )
    assert counts == [len(mlps)] * 5  # one hook per MLP at every step 0..4
    assert sum(len(m._forward_hooks) for m in mlps) == 0


@pytest.mark.parametrize(
    "method, args, repnoise",
    [
        ("graddiff", {}, None),
        ("maxent", {}, None),
        ("maxent", {"retain": "kl"}, None),
        ("maxent", {}, {"alpha": 0.5, "beta": 0.1}),
    ],
)
def test_unlearning_losses_in_chunks_equal_the_full_logits_path(exp, tokenizer, method, args, repnoise):
    """With chunk_rows, every logit term (forget, retain, KL to a frozen copy, RepNoise's logit lens) is computed
    from hidden states in chunks: the same loss and gradients as from the full logits."""
    from undo.model.models import build_model

    batch = {name: next(s) for name, s in two_streams(exp, batch_size=2).items()}
    results = []
    for chunk_rows in (None, 7):
        model = build_model("micro", tokenizer, seed=0)
        objective = make_objective(method, model, args, repnoise=repnoise, chunk_rows=chunk_rows)
        loss, _ = objective(model, batch)
        loss.backward()
        results.append((loss.item(), [p.grad for p in model.parameters() if p.grad is not None]))
        objective.close()
    (plain, grads_plain), (chunked, grads) = results
    assert chunked == pytest.approx(plain, abs=1e-5)
    assert len(grads) == len(grads_plain) > 0
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, grads_plain, strict=True))


def test_selection_prefers_strongest_forgetting_within_retain_tolerance():
    base = {"en_ce": 4.0, "ko_ce": 4.0}
    records = [
        {"name": "a", "metrics": {"en_ce": 4.1, "ko_ce": 6.0}},  # +2.5% retain: eligible
        {"name": "b", "metrics": {"en_ce": 4.3, "ko_ce": 9.0}},  # +7.5%: too damaged
        {"name": "c", "metrics": {"en_ce": 4.19, "ko_ce": 7.0}},  # +4.75%: eligible, strongest
    ]
    en, ko = Metric("en_ce", False, relative=True), Metric("ko_ce", False, relative=True)
    assert select(records, base, en, ko)["name"] == "c"
    assert select(records, base, en, ko, tolerance=0.01) is None
    # accuracy: the retain tolerance is absolute and the strongest forgetting is the lowest accuracy
    add, mul = Metric("add", higher_is_better=True), Metric("mul", higher_is_better=True)
    accuracy = [
        {"name": "x", "metrics": {"add": 0.96, "mul": 0.3}},
        {"name": "y", "metrics": {"add": 0.97, "mul": 0.5}},
        {"name": "z", "metrics": {"add": 0.90, "mul": 0.0}},  # 0.1 below the base: too damaged
    ]
    assert select(accuracy, {"add": 1.0, "mul": 0.9}, add, mul)["name"] == "x"
    # flipping the direction of both metrics flips the choice
    add_down, mul_down = Metric("add", higher_is_better=False), Metric("mul", higher_is_better=False)
    assert select(accuracy, {"add": 0.97, "mul": 0.0}, add_down, mul_down)["name"] == "y"


def test_variant_names():
    assert variant({"method": "maxent", "optim": {"lr": 1, "sam_rho": 0.01}}) == "maxent+sam"
    assert variant({"method": "rmu", "optim": {"sam_rho": 0.0}, "repnoise": {"alpha": 1, "beta": 1}}) == "rmu+repnoise"
    # the public scripts' RMU without its retain term is selected apart from RMU with it
    assert variant({"method": "rmu", "args": {"retain_weight": 0.0}, "optim": {}}) == "rmu+no-retain"
    assert variant({"method": "rmu", "args": {"retain_weight": 1.0}, "optim": {}}) == "rmu"


def test_the_public_rmu_option_runs_without_its_retain_term_and_is_attacked():
    import run_relearn
    import run_unlearn

    for setting in ("language", "arithmetic"):
        public = run_unlearn.VARIANTS[(setting, "paper")]
        assert {variant(job.params) for job in public} == {"rmu+no-retain"}
        plain = [job for job in run_unlearn.GRIDS[(setting, "paper")] if job.name.startswith("rmu-lr")]
        assert [job.params["optim"]["lr"] for job in public] == [job.params["optim"]["lr"] for job in plain]
        attacked = {job.params["model"] for job in run_relearn.VARIANTS[(setting, "paper")]}
        assert {job.ref for job in public} <= attacked


def test_bad_unlearning_inputs_are_clear_errors(exp, micro_model, accelerator):
    with pytest.raises(UserError, match="unknown unlearning method 'forgetall'"):
        make_objective("forgetall", micro_model, {})
    with pytest.raises(UserError, match=r"RMU layer 7 is outside the model, whose layers are 0\.\.3"):
        make_objective("rmu", micro_model, {"layer": 7})
    objective = make_objective("maxent", micro_model, {})
    with pytest.raises(UserError, match=r"needs the data streams \['forget', 'retain'\], missing \['retain'\]"):
        train(
            micro_model,
            objective,
            {"forget": stream(exp, "ko")},
            Optim(lr=1e-3, steps=1),
            accelerator=accelerator,
        )
    with pytest.raises(UserError, match="lr: Input should be greater than 0"):
        Optim.parse({"lr": -1e-3, "steps": 1})


def hand_terms(model, batch) -> tuple[float, float]:
    """(CE, KL(uniform || p)) over the target positions of a batch, from transformers' own forward and head."""
    logits = model(input_ids=batch["input_ids"]).logits[:, :-1].double()
    targets, mask = batch["input_ids"][:, 1:], batch["loss_mask"][:, 1:]
    log_p = torch.log_softmax(logits, -1)
    nll = -log_p.gather(-1, targets[..., None]).squeeze(-1)
    kl = -torch.log(torch.tensor(float(logits.size(-1)), dtype=torch.double)) - log_p.mean(-1)
    return nll[mask].mean().item(), kl[mask].mean().item()


@pytest.mark.parametrize("method", ["graddiff", "maxent"])
def test_forget_and_retain_terms_read_their_own_streams_with_their_signs(exp, micro_model, method):
    """Korean forget rows and English retain rows, on a model whose predictions tell the two apart: each logged
    term equals the hand-computed one of its own stream (rows swapped between the streams fail), and the loss
    combines them with the method's signs and weights."""
    with torch.no_grad():
        micro_model.get_input_embeddings().weight.mul_(40)  # peaked predictions: the two streams' terms differ
    batch = {"forget": next(stream(exp, "ko", 2)), "retain": next(stream(exp, "en", 2))}
    ko_ce, ko_kl = hand_terms(micro_model, batch["forget"])
    en_ce, _ = hand_terms(micro_model, batch["retain"])
    assert abs(ko_ce - en_ce) > 0.1
    objective = make_objective(method, micro_model, {"forget_weight": 0.3, "retain_weight": 2.0})
    with torch.no_grad():
        loss, logs = objective(micro_model, batch)
    assert logs["retain_ce"] == pytest.approx(en_ce, rel=1e-4)
    if method == "graddiff":  # -0.3 CE(forget) + 2 CE(retain): ascend on forget, descend on retain
        assert logs["forget_ce"] == pytest.approx(ko_ce, rel=1e-4)
        assert loss.item() == pytest.approx(-0.3 * ko_ce + 2.0 * en_ce, rel=1e-4)
    else:  # 0.3 KL(U || p) on forget + 2 CE(retain): both descended
        assert logs["forget_kl_uniform"] == pytest.approx(ko_kl, rel=1e-4)
        assert loss.item() == pytest.approx(0.3 * ko_kl + 2.0 * en_ce, rel=1e-4)


def test_repnoise_adds_its_two_terms_to_the_base_loss_with_their_signs(exp, micro_model):
    """L = L_base + beta * MMD - alpha * log(lens CE + 1): the logit-lens CE by hand (every layer's residual
    stream through the final norm and the head, and the output itself, averaged), the base loss from the plain
    method on the same batch, and the MMD as logged."""
    batch = {"forget": next(stream(exp, "ko", 2)), "retain": next(stream(exp, "en", 2))}
    alpha, beta = 0.7, 0.3
    with torch.no_grad():
        base_loss, _ = make_objective("maxent", micro_model, {})(micro_model, batch)
        loss, logs = make_objective("maxent", micro_model, {}, repnoise={"alpha": alpha, "beta": beta})(
            micro_model, batch
        )
        forget = batch["forget"]
        out = micro_model(input_ids=forget["input_ids"], output_hidden_states=True)
        cap = micro_model.config.final_logit_softcapping
        lens = [
            losses.cross_entropy(
                cap * torch.tanh(micro_model.lm_head(micro_model.model.norm(h)) / cap),
                forget["input_ids"],
                forget["loss_mask"],
            )
            for h in out.hidden_states[1:-1]
        ]
        lens.append(losses.cross_entropy(out.logits, forget["input_ids"], forget["loss_mask"]))
        lens_ce = torch.stack(lens).mean().item()
    assert logs["lens_ce"] == pytest.approx(lens_ce, rel=1e-4) and logs["mmd"] > 0
    expected = base_loss.item() + beta * logs["mmd"] - alpha * torch.log(torch.tensor(lens_ce + 1)).item()
    assert loss.item() == pytest.approx(expected, rel=1e-4)
