"""The linear probe (undo.attacks.linear_probe): it reads what is linearly encoded, is trained on the shown facts'
problems and scored on the held-out facts', and its job is reported apart from the forget-metric families."""

from __future__ import annotations

import os

import pytest
import torch

from undo.attacks import linear_probe
from undo.attacks.linear_probe import LinearProbe, fit_and_score, forget_operations, last_digit, probe
from undo.data.facts import FactSplit
from undo.errors import UserError
from undo.experiment import Experiment
from undo.runner.jobs import Job
from undo.runner.launch import launch
from undo.settings import get_setting


def test_the_probe_reads_a_linearly_encoded_label_and_not_a_random_one():
    torch.manual_seed(0)
    x = torch.randn(600, 16)
    encoded = (x @ torch.randn(16, 10)).argmax(1)
    noise = torch.randint(0, 10, (600,))
    assert fit_and_score(x[:300], encoded[:300], x[300:], encoded[300:], 1e-3) > 0.8
    assert fit_and_score(x[:300], noise[:300], x[300:], noise[300:], 1e-3) < 0.2


def test_a_probe_trains_on_the_shown_facts_and_scores_the_held_out_ones(monkeypatch):
    seen = []

    def states(model, tokenizer, items):  # layer 1 encodes the answer's last digit; layer 0 nothing
        seen.append(items)
        digits = torch.nn.functional.one_hot(torch.tensor([last_digit(i) for i in items]), 10).float()
        return torch.stack([torch.zeros_like(digits), digits])

    monkeypatch.setattr(linear_probe, "hidden_states", states)
    split = FactSplit(key=3, held_out=0.5)
    scores = probe(None, None, ["mul", "div"], split, LinearProbe(items=40))
    shown, held = seen
    assert {split.part(i.fact) for i in shown} == {"shown"} and {split.part(i.fact) for i in held} == {"held_out"}
    assert not {i.fact for i in shown} & {i.fact for i in held} and len(shown) + len(held) == 160
    assert scores["probe_layer1"] == 1.0 and scores["probe_layer0"] == scores["probe_majority"] < 0.5


def test_a_setting_without_arithmetic_answers_is_one_line():
    with pytest.raises(UserError, match="language has none: use it with --setting arithmetic"):
        forget_operations(get_setting("language"))


def test_a_linear_probe_job_runs_and_is_reported_apart_from_the_families(tmp_path, block_cache):
    from undo.reporting.families import attacks_by_family, linear_probes

    out = tmp_path / "arithmetic"
    out.mkdir()
    os.symlink(block_cache, out / "cache")
    exp = Experiment("arithmetic", "smoke", out)
    pretrain = {"batch_size": 2, "eval_every": 2, "optim": {"lr": 1e-3, "steps": 2}, "mix": exp.setting.retain_mix}
    probed = {"model": "pretrain/base", "linear_probe": {"items": 10}, "held_out": {"key": 0}}
    assert launch(exp, [Job("pretrain", "base", pretrain)], wandb="off") == 0
    assert launch(exp, [Job("relearn", "probe", probed)], wandb="off") == 0
    summary = exp.summary("relearn/probe")
    assert summary["family"] == "linear-probe+held-out" and summary["attacker"] == "linear-probe"
    layers = exp.load_model(summary["target"]).config.num_hidden_layers
    expected = {f"probe_layer{i}" for i in range(layers + 1)} | {"probe_majority"}
    assert set(summary["metrics"]) == expected
    assert linear_probes(exp) == {summary["target"]: summary["metrics"]}
    assert not any(family.startswith("linear-probe") for _, family in attacks_by_family(exp))
