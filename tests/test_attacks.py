"""The attack families: each runs at smoke scale and is named for the report; the held-out split is keyed and
disjoint; quantization leaves every weight on its grid; a LoRA attack saves a plain transformers model."""

from __future__ import annotations

import json
import os

import pytest
import torch

from undo.attacks.quantize import Quantize, decoder_linears, quantize
from undo.data import arithmetic
from undo.data.corpora import iter_documents
from undo.data.facts import FactSplit
from undo.data.quiz import FORGET_CATEGORIES, load_quiz
from undo.errors import UserError
from undo.experiment import Experiment
from undo.params import InvalidParams
from undo.runner.jobs import Job
from undo.runner.launch import launch
from undo.stages.relearn import Params

PRETRAIN = {"batch_size": 2, "eval_every": 2, "optim": {"lr": 1e-3, "steps": 2}}
ATTACK = {"model": "pretrain/base", "optim": {"lr": 1e-3, "steps": 2}, "batch_size": 2, "eval_every": 1}


def experiment(setting: str, tmp_path, block_cache) -> Experiment:
    out = tmp_path / setting
    out.mkdir()
    os.symlink(block_cache, out / "cache")
    exp = Experiment(setting, "smoke", out)
    assert launch(exp, [Job("pretrain", "base", {**PRETRAIN, "mix": exp.setting.retain_mix})], wandb="off") == 0
    return exp


def attacked(exp: Experiment, attacks: dict[str, dict]) -> dict[str, dict]:
    """Each attack of the base model run; their summaries."""
    jobs = [Job("relearn", name, {"model": "pretrain/base", **params}) for name, params in attacks.items()]
    assert launch(exp, jobs, wandb="off") == 0
    return {name: json.loads((exp.run_dir(f"relearn/{name}") / "summary.json").read_text()) for name in attacks}


def test_every_family_runs_at_smoke_scale_and_is_named_for_the_report(exp):
    assert launch(exp, [Job("pretrain", "base", {**PRETRAIN, "mix": {"en": 1.0}})], wandb="off") == 0
    train = {k: v for k, v in ATTACK.items() if k != "model"}
    sgd = {**train, "optim": {"lr": 1e-2, "steps": 3, "optimizer": "sgd", "warmup": 1, "min_lr": 1e-3}}
    summaries = attacked(
        exp,
        {
            "finetune-sgd": sgd,
            "adagrad": {**train, "optim": {"lr": 1e-2, "steps": 2, "optimizer": "adagrad"}},
            "lora": {**train, "lora": {"rank": 2}},
            "probe": {**train, "probe": True},
            "retain-only": {**train, "mix": {"en": 1.0}},
            "few-shot": {**train, "shots": 1},
            "int4": {"quantize": {"bits": 4}},
            "int8-torchao": {"quantize": {"bits": 8, "method": "torchao"}},
        },
    )
    families = {name: s["family"] for name, s in summaries.items()}
    assert families == {
        "finetune-sgd": "finetune",
        "adagrad": "finetune",
        "lora": "lora",
        "probe": "probe",
        "retain-only": "finetune+retain-only",
        "few-shot": "finetune+few-shot-1",
        "int4": "quantize-int4-rtn",
        "int8-torchao": "quantize-int8-torchao",
    }
    for name, summary in summaries.items():
        assert {"ko_ce", "en_ce"} <= summary["metrics"].keys(), name
        assert summary["curve"][0]["step"] == 0
    assert [point["step"] for point in summaries["finetune-sgd"]["curve"]] == [0, 1, 2, 3]
    assert summaries["int4"]["steps"] == 0 and len(summaries["int4"]["curve"]) == 1
    # The probe trains the tied head and embeddings only: the attacked model's body is the base's.
    start = exp.summary("pretrain/base")["metrics"]["ko_ce"]
    assert summaries["probe"]["curve"][-1]["ko_ce"] != start


def test_a_probe_trains_only_the_head_and_embeddings(exp):
    assert launch(exp, [Job("pretrain", "base", {**PRETRAIN, "mix": {"en": 1.0}})], wandb="off") == 0
    attacked(exp, {"probe": {**ATTACK, "probe": True, "save_model": True}})
    base, probed = (exp.load_model(ref) for ref in ("pretrain/base", "relearn/probe"))
    changed = {n for (n, a), b in zip(base.named_parameters(), probed.parameters(), strict=True) if not a.equal(b)}
    assert changed == {"model.embed_tokens.weight"}  # the output head is tied to it


def test_a_lora_attack_merges_and_saves_a_plain_transformers_model(exp):
    from transformers import AutoModelForCausalLM, Gemma2ForCausalLM

    assert launch(exp, [Job("pretrain", "base", {**PRETRAIN, "mix": {"en": 1.0}})], wandb="off") == 0
    lora = {"rank": 2, "alpha": 4.0, "targets": ["q_proj", "down_proj"]}
    attacked(exp, {"lora": {**ATTACK, "optim": {"lr": 1e-2, "steps": 2}, "lora": lora, "save_model": True}})
    saved = AutoModelForCausalLM.from_pretrained(exp.run_dir("relearn/lora") / "model")
    base = exp.load_model("pretrain/base")
    assert type(saved) is Gemma2ForCausalLM
    assert saved.state_dict().keys() == base.state_dict().keys()  # merged: no adapter weights left
    changed = {n for (n, a), b in zip(base.named_parameters(), saved.parameters(), strict=True) if not a.equal(b)}
    assert changed and all(n.endswith(("q_proj.weight", "down_proj.weight")) for n in changed)


@pytest.mark.parametrize("bits", [8, 4])
def test_round_to_nearest_leaves_each_weight_on_its_grid(micro_model, bits):
    before = {n: p.detach().clone() for n, p in micro_model.named_parameters()}
    quantize(micro_model, Quantize(bits=bits, group_size=16))
    top = 2 ** (bits - 1) - 1
    for linear in decoder_linears(micro_model):
        for group in linear.weight.detach().reshape(-1, 16):
            step = group.abs().max() / top  # the group's scale, computed here by hand
            codes = group / step
            assert torch.allclose(codes, codes.round(), atol=1e-4) and codes.abs().max() <= top + 1e-4
            assert len(group.unique()) <= 2**bits
    embeddings = "model.embed_tokens.weight"
    assert micro_model.state_dict()[embeddings].equal(before[embeddings])  # and the tied head: full precision


def test_torchao_quantizes_the_decoder_to_a_grid_and_the_model_still_runs(micro_model):
    ids = torch.arange(12).reshape(2, 6)
    before = micro_model(input_ids=ids).logits
    quantize(micro_model, Quantize(bits=4, method="torchao", group_size=16))
    after = micro_model(input_ids=ids).logits
    assert after.shape == before.shape and not torch.equal(after, before)
    weight = decoder_linears(micro_model)[0].weight.dequantize()
    assert all(len(group.unique()) <= 16 for group in weight.reshape(-1, 16))


def test_a_group_that_does_not_divide_a_layer_is_one_line(micro_model):
    with pytest.raises(UserError, match="group_size 7 does not divide"):
        quantize(micro_model, Quantize(bits=4, group_size=7))


def test_the_held_out_split_is_keyed_and_disjoint():
    facts = [f"mul:{a},{b}" for a in range(1, 21) for b in range(a, 21)]
    split = FactSplit(key=3, held_out=0.5)
    parts = [split.part(f) for f in facts]
    assert parts == [FactSplit(3, 0.5).part(f) for f in facts]  # the same split every time
    assert parts != [FactSplit(4, 0.5).part(f) for f in facts]  # another key, another split
    assert 0.4 < parts.count("held_out") / len(facts) < 0.6
    # A fact is one fact in every form: 3 * 4, 4 * 3, 12 / 4 and 12 / 3.
    forms = [arithmetic.Item("mul", "eq", None, 12, 3, 4), arithmetic.Item("mul", "eq", None, 12, 4, 3)]
    forms += [arithmetic.Item("div", "eq", None, 3, 12, 4), arithmetic.Item("div", "eq", None, 4, 12, 3)]
    assert {item.fact for item in forms} == {"mul:3,4"}


def test_an_attack_on_shown_facts_never_trains_on_a_held_out_one():
    split = FactSplit(key=0, held_out=0.5)
    source = {"kind": "arithmetic", "ops": ["mul", "div"], "equations": 300, "word_problems": 30}
    items = list(arithmetic.training_items(["mul", "div"], 300, 30))
    fact_of = {item.qa: item.fact for item in items}
    shown = list(iter_documents({**source, "facts": split.source("shown")}, "train"))
    held = list(iter_documents({**source, "facts": split.source("held_out")}, "train"))
    assert len(shown) + len(held) == len(items) and shown and held
    assert {split.part(fact_of[qa]) for qa in shown} == {"shown"}
    assert {fact_of[qa] for qa in shown}.isdisjoint({fact_of[qa] for qa in held})
    quiz = {"kind": "quiz", "categories": list(FORGET_CATEGORIES)}
    questions = {d.prompt for d in iter_documents({**quiz, "facts": split.source("shown")}, "train")}
    forget_items = [i for i in load_quiz() if i.category in FORGET_CATEGORIES]
    held_questions = {i.question for i in forget_items if split.part(i.question) == "held_out"}
    assert held_questions and not any(q.startswith(h) for q in questions for h in held_questions)


@pytest.mark.parametrize("setting", ["arithmetic", "wmdp"])
def test_a_held_out_attack_scores_only_the_facts_it_never_showed(setting, tmp_path, block_cache):
    exp = experiment(setting, tmp_path, block_cache)
    forget = exp.setting.forget.name
    summaries = attacked(exp, {"held-out": {**ATTACK, "held_out": {"key": 1}}, "all": ATTACK})
    held, full = summaries["held-out"], summaries["all"]
    assert held["family"] == "finetune+held-out" and full["family"] == "finetune"
    # Step 0 is measured on the held-out facts, not taken from the base's summary (all facts).
    assert held["curve"][0]["step"] == 0 and forget in held["curve"][0]
    assert full["curve"][0][forget] == exp.summary("pretrain/base")["metrics"][forget]


def test_language_has_no_facts_to_hold_out(exp):
    assert launch(exp, [Job("pretrain", "base", {**PRETRAIN, "mix": {"en": 1.0}})], wandb="off") == 0
    assert launch(exp, [Job("relearn", "held-out", {**ATTACK, "held_out": {"key": 0}})], wandb="off") == 1


def test_attack_params_are_checked():
    for bad, problem in (
        ({**ATTACK, "quantize": {"bits": 4}}, "does not train: drop optim"),
        ({"model": "pretrain/base", "quantize": {"bits": 3}}, "quantize.bits"),
        ({"model": "pretrain/base"}, "needs optim and batch_size"),
        ({**ATTACK, "lora": {"rank": 2}, "probe": True}, "keep one"),
        ({**ATTACK, "lora": {"targets": ["lm_head"]}}, "targets"),
        ({**ATTACK, "optim": {"lr": 1e-3, "steps": 2, "optimizer": "lion"}}, "optim.optimizer"),
        ({**ATTACK, "held_out": {"share": 1.0}}, "held_out.share"),
        ({"model": "pretrain/base", "linear_probe": {}}, "add held_out"),
        ({**ATTACK, "linear_probe": {}, "held_out": {}}, "linear_probe attack does not train: drop optim"),
        ({"model": "pretrain/base", "linear_probe": {}, "quantize": {}, "held_out": {}}, "keep one"),
    ):
        with pytest.raises(InvalidParams, match=problem):
            Params.parse(bad)


def test_held_out_scoring_asks_exactly_the_held_out_items(exp, monkeypatch):
    from undo.evaluate import arithmetic as scoring
    from undo.evaluate.multiple_choice import MultipleChoice

    split = FactSplit(key=2, held_out=0.5)
    asked = []
    answer = lambda model, prompts, *args, **kwargs: asked.extend(prompts) or [""] * len(prompts)  # noqa: E731
    monkeypatch.setattr(scoring, "greedy_continuations", answer)
    monkeypatch.setattr(scoring, "prompt_ids", lambda tokenizer, prompt: prompt)
    scoring.ArithmeticAccuracy(("mul", "div")).evaluate(torch.nn.Linear(1, 1), exp, None, split)
    items = arithmetic.evaluation_items(["mul", "div"], exp.scale.eval_items or arithmetic.EVAL_ITEMS)
    assert asked == [i.qa.prompt for i in items if split.part(i.fact) == "held_out"] and 0 < len(asked) < len(items)
    rows = MultipleChoice("forget_acc", quiz=FORGET_CATEGORIES).rows(split)
    held = [i.question for i in load_quiz() if i.category in FORGET_CATEGORIES and split.part(i.question) == "held_out"]
    assert [r["question"] for r in rows] == held


def test_the_report_scores_each_family_against_the_oracle_and_teacher_under_the_same_family(exp):
    from planting import plant_run, plant_scored_models

    from undo.reporting.report import collect, markdown

    plant_scored_models(exp)
    # ko_ce after each family's attack (lower = more recovered): step 4 is the smoke scale's last budget
    after = {
        "pretrain/oracle": {"finetune": 7.0, "lora": 7.5, "quantize-int4-rtn": 8.0},
        "unlearn/maxent-lr1": {"finetune": 5.0, "lora": 5.5, "quantize-int4-rtn": 6.0},
        "distill/full-maxent": {"finetune": 6.0, "lora": 7.4, "quantize-int4-rtn": 6.5},
    }
    for i, (target, found) in enumerate(after.items()):
        for family, value in found.items():
            steps = [0] if family.startswith("quantize") else [0, 4]  # quantization: no training, one point
            curve = [{"step": step, "ko_ce": 8.0 if step < max(steps) else value} for step in steps]
            summary = {"metrics": {}, "steps": 4, "flops": 1.0, "role": "attack", "target": target, "lr": 1e-3}
            plant_run(exp, f"relearn/{i}-{family}", {**summary, "family": family, "curve": curve})
    # a searched attack's trial that broke the retain metric does not count
    trial = lambda value, ok: {"lr": 1e-2, "curve": [{"step": 4, "ko_ce": value}], "feasible": ok}  # noqa: E731
    searched = {"metrics": {}, "steps": 8, "flops": 1.0, "role": "attack", "target": "distill/full-maxent"}
    plant_run(exp, "relearn/2-search", {**searched, "family": "lora", "curve": [], "trials": [trial(5.2, False)]})
    view = collect(exp)["families"]
    student = view["models"]["distill/full-maxent"]
    assert view["families"] == ["finetune", "lora", "quantize-int4-rtn"]
    assert student["finetune"]["robustness"] == pytest.approx((6.0 - 5.0) / (7.0 - 5.0))
    assert student["lora"]["robustness"] == pytest.approx((7.4 - 5.5) / (7.5 - 5.5))  # not the broken trial's 5.2
    assert student["quantize-int4-rtn"]["robustness"] == pytest.approx((6.5 - 6.0) / (8.0 - 6.0))
    assert student["worst"] == {"robustness": pytest.approx(0.25), "family": "finetune"}
    assert "| distill/full-maxent | 6.000 (0.50) | 7.400 (0.95) | 6.500 (0.25) | 0.25 | finetune |" in markdown(
        collect(exp)
    )


def test_a_family_is_scored_only_where_it_moved_the_unlearned_model_beyond_noise():
    from undo.evaluate.metrics import Metric
    from undo.reporting.families import moved

    accuracy, ce = Metric("acc", higher_is_better=True), Metric("ce", higher_is_better=False, relative=True)
    assert not moved(accuracy, 0.057, 0.060)  # int4 on arithmetic's MaxEnt teacher: nothing came back
    assert moved(accuracy, 0.050, 0.476) and not moved(accuracy, 0.476, 0.050)
    assert not moved(ce, 8.973, 8.973) and moved(ce, 7.70, 5.40)  # CE: relative, MIN_GAP


def test_recovery_steps_and_area_against_the_base_by_hand():
    from undo.reporting.families import recovery

    # CE from 8.0 (unlearned) towards the base's 4.0: half the gap closed at step 10, 90% at step 30
    got = recovery({0: 8.0, 10: 6.0, 20: 5.0, 30: 4.3}, base=4.0)
    # closed share by hand, (8 - F) / (8 - 4): 0, 0.5, 0.75, 0.925; trapezoids of 10 steps over a span of 30
    area = (10 * (0 + 0.5) / 2 + 10 * (0.5 + 0.75) / 2 + 10 * (0.75 + 0.925) / 2) / 30
    assert got == {"steps_50": 10, "steps_90": 30, "area": pytest.approx(area)}
    assert recovery({0: 0.05, 10: 0.2, 30: 0.3}, base=0.45)["steps_50"] == 30  # accuracy: up is recovery
    assert recovery({0: 0.05, 10: 0.1}, base=0.45)["steps_90"] is None and recovery({0: 0.05}, base=0.45) is None


@pytest.mark.parametrize("variants", [False, True])
def test_the_suite_attacks_each_key_model_and_the_masked_students_only_with_variants(variants):
    import run_relearn
    from undo.cli import grid_for, parser

    argv = ["--attacks", "suite", *(["--variants"] if variants else [])]
    args = parser("relearn").parse_args(argv)
    grids = (run_relearn.GRIDS, args, run_relearn.VARIANTS, run_relearn.SUITES, run_relearn.VARIANT_SUITES)
    attacked = {job.params["model"] for job in grid_for(*grids) if job.name.endswith("-few10-lr0.001")}
    masked = {"distill/full-maxent-mask", "distill/full-maxent-mask-retain-text"}
    assert set(run_relearn.key_models("language", "embedded")) <= attacked
    assert attacked & masked == (masked if variants else set())


def test_an_attack_scores_on_the_attacks_sample_and_may_skip_the_retain_metric(exp, monkeypatch):
    """A paper-scale attack evaluates a fixed sample of fewer blocks (its step 0 too, not the model's summary,
    which measured more), and the WMDP grid's attacks leave out the retain metric that no report reads."""
    from dataclasses import replace

    from undo.stages.common import evaluator

    assert launch(exp, [Job("pretrain", "base", {**PRETRAIN, "mix": {"en": 1.0}})], wandb="off") == 0
    monkeypatch.setattr(exp, "scale", replace(exp.scale, attack_eval_blocks=2))
    summaries = attacked(exp, {"sampled": {**ATTACK, "retain_after": False}, "whole": ATTACK})
    sample = exp.attack_sample()
    assert (sample.scale.eval_blocks, exp.scale.eval_blocks) == (2, 8)
    on_sample = evaluator(sample, ["ko_ce"])(exp.load_model("pretrain/base"))["ko_ce"]
    for summary in summaries.values():
        assert summary["curve"][0]["ko_ce"] == pytest.approx(on_sample, abs=1e-6)
    assert on_sample != pytest.approx(exp.summary("pretrain/base")["metrics"]["ko_ce"], abs=1e-3)
    assert "en_ce" not in summaries["sampled"]["metrics"] and "en_ce" in summaries["whole"]["metrics"]
