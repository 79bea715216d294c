"""benchmarks/paper_compute.py on the real paper grids: a job's tokens, GPU-hours from a planted throughput file,
and the two compute conventions, each against numbers worked out by hand from the grids' dicts."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import run_distill
import run_pretrain
from undo.runs.names import DISTILLED, ORACLE, UNDO

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "paper_compute.py"


@pytest.fixture(scope="module")
def paper_compute():
    spec = importlib.util.spec_from_file_location("paper_compute", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def language(paper_compute):
    return paper_compute.Grid("language")


def step_tokens(params: dict, seq_len: int) -> int:
    return params["batch_size"] * params["optim"].get("grad_accum", 1) * seq_len


def test_a_pretraining_job_counts_its_steps_and_its_evaluations(language):
    oracle = next(job for job in run_pretrain.GRIDS["language", "paper"] if job.ref == ORACLE)
    params = oracle.params
    steps, every = params["optim"]["steps"], params["eval_every"]
    parsed = next(p for job, p in language.jobs["pretrain"] if job.ref == ORACLE)
    tokens = language.job("pretrain", parsed)
    assert tokens.trained == step_tokens(params, 2048) * steps and tokens.frozen == 0
    # step 0, every `every` steps and the last step; each evaluation reads English and Korean validation blocks
    blocks = language.scale.eval_blocks or 500_000 // 2048
    assert tokens.evaluated == (1 + math.ceil(steps / every)) * 2 * blocks * 2048


def test_evaluations_fall_every_n_steps_at_the_named_steps_and_at_the_last(paper_compute):
    params = SimpleNamespace(eval_every=5, eval_at=(12,), optim=SimpleNamespace(steps=22))
    assert paper_compute.evaluations(params, 22) == 6  # 5, 10, 12, 15, 20, 22
    assert paper_compute.evaluations(params, 12) == 3  # a run stopped by its rule at 12: 5, 10, 12


def test_gpu_hours_are_tokens_over_a_planted_throughput(paper_compute, language, tmp_path, capsys):
    planted = {"0.1B": {"train": 1000.0, "forward": 4000.0}}
    (tmp_path / "rates.json").write_text(json.dumps(planted))
    paper_compute.main(["--setting", "language", "--throughput", str(tmp_path / "rates.json")])
    table = [line.strip("|").split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    rows = {(cells[0].strip(), cells[1].strip()): cells for cells in table}
    for stage in ("pretrain", "distill"):
        tokens = paper_compute.stage_tokens(language, stage, assumed_stop=False)
        hours = (tokens.trained / 1000 + (tokens.frozen + tokens.evaluated) / 4000) / 3600  # at the cap
        assert float(rows["language", stage][6].replace(",", "")) == pytest.approx(hours, abs=0.05)
    # a model not in the file: the first entry's rate scaled by parameters (the same MFU)
    scaled = paper_compute.rates("0.3B", planted)
    ratio = paper_compute.parameters("0.1B") / paper_compute.parameters("0.3B")
    assert scaled == pytest.approx({"train": 1000 * ratio, "forward": 4000 * ratio}) and 0.2 < ratio < 0.5


def test_the_two_conventions_differ_by_the_teacher_forward_share(language):
    pretrain = {job.ref: job.params for job in run_pretrain.GRIDS["language", "paper"]}
    oracle_tokens = step_tokens(pretrain[ORACLE], 2048) * pretrain[ORACLE]["optim"]["steps"]
    full = next(job.params for job in run_distill.GRIDS["language", "paper"] if job.params["role"] == DISTILLED)
    parsed = next(p for _, p in language.jobs["distill"] if p.role == DISTILLED)
    steps = full["optim"]["steps"]
    flops, student = language.percent_of_oracle(parsed, steps)
    assert student == pytest.approx(100 * step_tokens(full, 2048) * steps / oracle_tokens)
    # 6N per student token and 2N per teacher token against 6N per oracle token: the teacher adds a third
    assert flops - student == pytest.approx(student * 2 / 6)
    tokens = language.job("distill", parsed)
    assert tokens.frozen == tokens.trained == step_tokens(full, 2048) * steps


def test_the_assumed_undo_stop_is_a_check_of_the_rule_near_the_papers_share(paper_compute, language):
    undo = max((p for _, p in language.jobs["distill"] if p.role == UNDO), key=lambda p: p.alpha)
    stop = language.undo_steps(undo, assumed=True)
    assert stop % undo.eval_every == 0 and stop < undo.optim.steps == language.undo_steps(undo, assumed=False)
    _, student = language.percent_of_oracle(undo, stop)
    tolerance = 100 * language.step_tokens(undo) * undo.eval_every / language.oracle_tokens
    assert 100 * paper_compute.PAPER_UNDO_SHARE <= student < 100 * paper_compute.PAPER_UNDO_SHARE + tolerance
