"""run_sample.py: streamed completions from any run or folder, side by side, interactive; clear lines for
runs that are missing or unfinished."""

from __future__ import annotations

import io

import pytest

import run_sample
from undo.errors import UserError
from undo.runner.jobs import Job
from undo.runner.launch import launch

PRETRAIN = {"mix": {"en": 0.5, "ko": 0.5}, "batch_size": 2, "optim": {"lr": 1e-3, "steps": 2}}


@pytest.fixture
def trained(exp):
    assert launch(exp, [Job("pretrain", "base", PRETRAIN), Job("pretrain", "oracle", {**PRETRAIN, "seed": 1})]) == 0
    return exp


def sample(exp, *args) -> int:
    return run_sample.main([*args, "--setting", "language", "--scale", "smoke", "--out", str(exp.out)])


def test_side_by_side_streams_each_model_under_its_name(trained, capsys):
    assert sample(trained, "pretrain/base", "pretrain/oracle", "--prompt", "The file", "--max-new-tokens", "6") == 0
    out = capsys.readouterr().out
    assert out.index("--- pretrain/base\nThe file") < out.index("--- pretrain/oracle\nThe file")
    assert len(out.splitlines()) == 4  # per model: its name, then the prompt and its streamed continuation


def test_same_seed_same_sample_and_greedy_is_deterministic(trained):
    from undo.tools.sample import Sampling, complete, load

    model, tokenizer = load(trained, "pretrain/base")
    folder_model, _ = load(trained, str(trained.run_dir("pretrain/base")))  # a run folder works too
    for sampling in (Sampling(8, seed=3), Sampling(8, greedy=True)):
        answers = [complete(m, tokenizer, "Korean", sampling, io.StringIO()) for m in (model, model, folder_model)]
        assert answers[0] == answers[1] == answers[2] and answers[0]


def test_interactive_loop_reads_prompts_until_an_empty_line(trained, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("Open the\nSave as\n\nnever read\n"))
    assert sample(trained, "pretrain/base", "--greedy", "--max-new-tokens", "3") == 0
    out = capsys.readouterr().out
    assert out.count("--- pretrain/base") == 2 and "never read" not in out


@pytest.mark.parametrize(
    "name, message",
    [
        ("distill/full-maxent", "no finished run 'distill/full-maxent'"),
        ("pretrain/half", "no finished run 'pretrain/half'"),
        ("nonsense", "'nonsense' is neither a folder nor a run reference"),
    ],
)
def test_missing_or_unfinished_run_is_one_line(trained, name, message):
    (trained.root / "pretrain" / ".half.tmp-host-1").mkdir()  # a run still being written
    with pytest.raises(UserError, match=message) as err:
        sample(trained, name, "--prompt", "x")
    assert "\n" not in str(err.value)


def test_bad_sampling_options_are_clear(trained):
    with pytest.raises(UserError, match="--top-p must be in"):
        sample(trained, "pretrain/base", "--prompt", "x", "--top-p", "0")
