"""End to end: the smoke scale runs every stage of run_all in seconds; the real default is a slow test."""

from __future__ import annotations

import json

import pytest

import run_all


def test_run_all_smoke_runs_every_stage(tmp_path, capsys):
    out = tmp_path / "outputs"
    assert run_all.main(["--scale", "smoke", "--out", str(out), "--wandb", "off"]) == 0
    root = out / "language" / "smoke"
    for stage in ("pretrain", "unlearn", "distill", "relearn"):
        assert any((d / "DONE").is_file() for d in (root / stage).iterdir()), stage
    results = json.loads((root / "results" / "results.json").read_text())
    roles = {m["role"] for m in results["models"]}
    assert roles == {"base", "oracle", "unlearned", "distilled", "undo", "matched"}
    assert all("attack" in m for m in results["models"] if m["role"] in ("base", "oracle", "distilled", "undo"))
    assert len(list((root / "results").glob("*.png"))) == 4
    printed = capsys.readouterr().out
    assert "wall time per stage" in printed and "figures:" in printed
    # a second run finds everything finished and only re-reports
    assert run_all.main(["--scale", "smoke", "--out", str(out), "--wandb", "off"]) == 0
    assert "0 job(s) to run" in capsys.readouterr().out


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
def test_run_all_embedded_default_shows_the_papers_result(tmp_path):
    out = tmp_path / "outputs"
    assert run_all.main(["--out", str(out), "--wandb", "off"]) == 0
    results = json.loads((out / "language" / "embedded" / "results" / "results.json").read_text())
    by_name = {m["name"]: m for m in results["models"]}
    full = by_name["distill/full-maxent"]
    assert full["robustness"]["headline"] > 0.5
