"""End to end: the smoke scale runs every stage of run_all in seconds; the real default is a slow test."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import run_all

ROOT = Path(__file__).resolve().parents[1]


def run_all_smoke(out: Path, **popen) -> subprocess.CompletedProcess:
    command = [sys.executable, "run_all.py", "--scale", "smoke", "--out", str(out), "--wandb", "off"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, **popen)


def sections(printed: str) -> dict[str, str]:
    """run_all's output per stage ("=== pretrain ===" ...)."""
    parts = re.split(r"^=== (\w+) ===$", printed, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One uninterrupted smoke pipeline (a subprocess, as a user runs it)."""
    out = tmp_path_factory.mktemp("smoke") / "outputs"
    result = run_all_smoke(out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout


def test_run_all_smoke_runs_every_stage(smoke_run):
    out, printed = smoke_run
    root = out / "language" / "smoke"
    for stage in ("pretrain", "unlearn", "distill", "relearn"):
        assert any((d / "DONE").is_file() for d in (root / stage).iterdir()), stage
    results = json.loads((root / "results" / "results.json").read_text())
    roles = {m["role"] for m in results["models"]}
    assert roles == {"base", "oracle", "unlearned", "distilled", "undo", "matched"}
    assert all("attack" in m for m in results["models"] if m["role"] in ("base", "oracle", "distilled", "undo"))
    assert len(list((root / "results").glob("*.png"))) == 4
    assert "wall time per stage" in printed and "figures:" in printed


def test_second_run_all_finds_every_stage_finished(smoke_run):
    out, _ = smoke_run
    rerun = run_all_smoke(out)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for stage, text in sections(rerun.stdout).items():
        if stage in ("pretrain", "unlearn", "distill", "relearn"):
            assert re.search(r"^0 job\(s\) to run, [1-9]\d* already finished", text, re.MULTILINE), (stage, text)


def leftovers(out: Path) -> list[Path]:
    pattern = re.compile(r"\.(tmp|old|partial)-[^/]*-\d+$|\.ckpt$")
    return [p for p in out.rglob(".*") if pattern.search(p.name)]


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def test_step_0_taken_from_the_starting_run_is_what_evaluating_its_saved_model_gives(smoke_run):
    """Attacks and unlearning runs take their step-0 metrics from the run they start from instead of measuring its
    saved model again: the two must agree exactly."""
    from undo.evaluate.tasks import evaluate
    from undo.experiment import Experiment
    from undo.runs.names import BASE

    out, _ = smoke_run
    exp = Experiment("language", "smoke", out)
    forget = exp.setting.forget.name
    attacks = {"pretrain/oracle": "pretrain-oracle-lr0.001", "distill/full-maxent": "distill-full-maxent-lr0.001"}
    for target, attack in attacks.items():
        step_0 = json.loads((exp.root / "relearn" / attack / "summary.json").read_text())["curve"][0]
        assert step_0 == {"step": 0, **evaluate(exp.load_model(target), exp, [forget])}, attack
    unlearned = next(p for p in (exp.root / "unlearn").iterdir() if (p / "DONE").is_file())
    step_0 = next(r for r in records(unlearned) if r["kind"] == "eval")
    assert step_0["step"] == 0
    assert {k: step_0[k] for k in exp.setting.metrics} == evaluate(exp.load_model(BASE), exp)


def test_sweep_killed_mid_stage_reruns_to_the_same_results(smoke_run, tmp_path):
    """Killed at a fixed point of the sweep, whatever the machine's speed: once its first unlearning run is done,
    with the stage's other runs still to come."""
    reference, _ = smoke_run
    out = tmp_path / "outputs"
    command = [sys.executable, "run_all.py", "--scale", "smoke", "--out", str(out), "--wandb", "off"]
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    unlearn, deadline = out / "language" / "smoke" / "unlearn", time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and not any(unlearn.glob("*/DONE")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(unlearn.glob("*/DONE"))) < len(list((reference / "language/smoke/unlearn").glob("*/DONE")))
    rerun = run_all_smoke(out)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert leftovers(out) == []
    want = json.loads((reference / "language/smoke/results/results.json").read_text())["models"]
    got = json.loads((out / "language/smoke/results/results.json").read_text())["models"]
    assert got == want
    for run in (reference / "language" / "smoke").glob("*/*/DONE"):
        twin = out / run.parent.relative_to(reference)
        assert (twin / "DONE").is_file(), twin
        assert records(twin) == records(run.parent), twin  # every record once, as in the uninterrupted sweep


@pytest.mark.slow
def test_variants_add_their_students_controls_and_attacks_after_a_reset(smoke_run, tmp_path):
    """--variants on a finished pipeline runs only the variant jobs (113 attacks, 15 of them Optuna searches) and
    reports the variant students, the reset controls, robustness after a reset and under the Optuna attacker."""
    import shutil

    reference, _ = smoke_run
    out = tmp_path / "outputs"
    shutil.copytree(reference, out)
    command = [sys.executable, "run_all.py", "--scale", "smoke", "--variants", "--out", str(out), "--wandb", "off"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^0 job\(s\) to run", sections(result.stdout)["unlearn"], re.MULTILINE)
    models = json.loads((out / "language/smoke/results/results.json").read_text())["models"]
    by_name = {m["name"]: m for m in models}
    assert {f"distill/reset-{m}" for m in ("graddiff", "maxent", "rmu")} <= by_name.keys()
    assert by_name["distill/reset-maxent"]["role"] == "reset" and "attack" in by_name["distill/reset-maxent"]
    for name in ("full-maxent-mask", "full-maxent-top64", "full-maxent-retain-text", "undo-maxent-a0.8-s0-mask"):
        assert "robustness_after_reset" in by_name[f"distill/{name}"], name
    for name in ("full-maxent", "full-maxent-top64", "undo-maxent-a0.8-s0"):
        assert len(by_name[f"distill/{name}"]["attack_optuna"]) == 3, name  # budgets 0, 2, 4 of the smoke scale
    views = {json.loads((out / "language/smoke/distill" / n / "summary.json").read_text())["teacher_view"]
             for n in ("full-maxent-mask", "full-maxent-top64", "full-maxent-retain-text")}  # fmt: skip
    assert views == {"mask-forget", "top-k", "full"}


def test_run_all_smoke_arithmetic_reports_accuracy_per_operation_and_format(tmp_path, capsys):
    out = tmp_path / "outputs"
    assert run_all.main(["--setting", "arithmetic", "--scale", "smoke", "--out", str(out), "--wandb", "off"]) == 0
    root = out / "arithmetic" / "smoke"
    results = json.loads((root / "results" / "results.json").read_text())
    assert (results["retain_metric"], results["forget_metric"]) == ("addsub_acc", "muldiv_acc")
    assert results["metrics"]["muldiv_acc"] == {
        "higher_is_better": True,
        "relative": False,
        "mean_of": ["mul_eq", "mul_word", "div_eq", "div_word"],
    }
    for model in results["models"]:
        metrics = model["metrics"]
        assert {"add_eq", "sub_word", "mul_eq", "div_word", "en_ce"} <= metrics.keys()
        assert all(0.0 <= metrics[m] <= 1.0 for m in ("retain", "forget", "add_eq", "div_word"))
        assert metrics["forget"] == pytest.approx(
            sum(metrics[m] for m in ("mul_eq", "mul_word", "div_eq", "div_word")) / 4
        )
    attacked = next(m for m in results["models"] if m["name"] == "pretrain/oracle")
    assert set(attacked["attack"]) == {"0", "2", "4"}
    table = (root / "results" / "results.md").read_text()
    assert "| model | add_eq | add_word | sub_eq |" in table
    assert len(list((root / "results").glob("*.png"))) == 4


@pytest.mark.slow
def test_run_all_smoke_wmdp_reports_recovered_accuracy_without_an_oracle(tmp_path):
    out = tmp_path / "outputs"
    assert run_all.main(["--setting", "wmdp", "--scale", "smoke", "--out", str(out), "--wandb", "off"]) == 0
    root = out / "wmdp" / "smoke"
    results = json.loads((root / "results" / "results.json").read_text())
    assert (results["retain_metric"], results["forget_metric"], results["oracle"]) == (
        "retain_acc",
        "forget_acc",
        False,
    )
    undo = next(m for m in results["models"] if m["role"] == "undo")
    assert "robustness" not in undo
    assert undo["recovered"]["4"] == pytest.approx(undo["attack"]["4"]["forget"] - undo["attack"]["0"]["forget"])
    assert "recovered @2" in (root / "results" / "results.md").read_text()
    assert sorted(p.name for p in (root / "results").glob("*.png")) == ["pareto.png", "relearning_per_method.png"]


@pytest.mark.slow
def test_run_all_embedded_default_shows_the_papers_result(tmp_path):
    out = tmp_path / "outputs"
    assert run_all.main(["--out", str(out), "--wandb", "off"]) == 0
    results = json.loads((out / "language" / "embedded" / "results" / "results.json").read_text())
    by_name = {m["name"]: m for m in results["models"]}
    full = by_name["distill/full-maxent"]
    assert full["robustness"]["headline"] > 0.5
