"""A finished run is skipped only when it is the run its grid asks for; stale runs stop the launch (or are rerun
with rerun_stale), and the report refuses runs whose inputs changed under them."""

from __future__ import annotations

import json

import pytest

from undo.errors import UserError
from undo.reporting.report import collect
from undo.runner.jobs import Job
from undo.runner.launch import launch

PRETRAIN = {"mix": {"en": 0.5, "ko": 0.5}, "batch_size": 2, "eval_every": 2, "optim": {"lr": 1e-3, "steps": 2}}
UNLEARN = {"method": "maxent", "batch_size": 2, "optim": {"lr": 1e-3, "steps": 2}}
ATTACK = {"optim": {"lr": 1e-3, "steps": 2}, "batch_size": 2}


def config(exp, ref: str) -> dict:
    return json.loads((exp.run_dir(ref) / "config.json").read_text())


def test_another_seed_into_a_finished_folder_stops_until_rerun_stale(exp, capsys):
    assert launch(exp, [Job("pretrain", "base", PRETRAIN)]) == 0
    first = config(exp, "pretrain/base")
    reseeded = Job("pretrain", "base", {**PRETRAIN, "seed": 1})
    with pytest.raises(
        UserError, match=r"1 finished run\(s\) no longer match.*\n  pretrain/base: params\.seed \(unset\) -> 1"
    ):
        launch(exp, [reseeded])
    assert config(exp, "pretrain/base") == first  # refused: the seed-0 run is untouched
    launch(exp, [reseeded], dry_run=True)
    assert "stale" in capsys.readouterr().out
    assert launch(exp, [reseeded], rerun_stale=True) == 0
    second = config(exp, "pretrain/base")
    assert second["params"]["seed"] == 1 and second["run_id"] != first["run_id"]
    assert launch(exp, [reseeded]) == 0  # now current: skipped
    assert config(exp, "pretrain/base")["run_id"] == second["run_id"]


def test_an_edited_grid_value_names_what_changed(exp):
    assert launch(exp, [Job("pretrain", "base", PRETRAIN)]) == 0
    edited = Job("pretrain", "base", {**PRETRAIN, "optim": {"lr": 2e-3, "steps": 2}})
    with pytest.raises(UserError, match=r"pretrain/base: params\.optim\.lr 0\.001 -> 0\.002"):
        launch(exp, [edited])


def test_a_run_whose_input_was_rerun_is_stale_and_the_report_refuses_it(exp):
    base = Job("pretrain", "base", PRETRAIN)
    unlearned = Job("unlearn", "maxent", UNLEARN)
    assert launch(exp, [base]) == 0 and launch(exp, [unlearned]) == 0
    read = config(exp, "unlearn/maxent")["inputs"]["base"]
    assert read == {"ref": "pretrain/base", "run_id": config(exp, "pretrain/base")["run_id"]}
    assert launch(exp, [base], force=True) == 0  # the base model is rebuilt under the unlearned one
    with pytest.raises(UserError, match="unlearn/maxent: its base pretrain/base was rerun after this run read it"):
        launch(exp, [unlearned])
    with pytest.raises(UserError, match=r"read inputs that have changed since, so no report was written"):
        collect(exp)
    assert launch(exp, [unlearned], rerun_stale=True) == 0
    assert collect(exp)["models"]


def test_a_changed_selection_makes_its_reader_stale(exp):
    from planting import plant_run

    assert launch(exp, [Job("pretrain", "base", PRETRAIN)]) == 0
    base_metrics = json.loads((exp.run_dir("pretrain/base") / "summary.json").read_text())["metrics"]
    summary = {"method": "maxent", "base": "pretrain/base", "metrics": {**base_metrics, "ko_ce": 9.0}}
    plant_run(exp, "unlearn/weak", summary)
    relearn = Job("relearn", "attack", {"model": "unlearn/selected:maxent", **ATTACK})
    (exp.run_dir("unlearn/weak") / "model").symlink_to(exp.run_dir("pretrain/base") / "model")
    assert launch(exp, [relearn]) == 0
    plant_run(exp, "unlearn/strong", {**summary, "metrics": {**base_metrics, "ko_ce": 12.0}})
    with pytest.raises(
        UserError, match="unlearn/selected:maxent now selects unlearn/strong, but this run read unlearn/weak"
    ):
        launch(exp, [relearn])


def test_missing_input_is_reported_once_with_the_full_command(exp, capsys):
    jobs = [Job("relearn", f"r{i}", {"model": "unlearn/selected:maxent", **ATTACK}) for i in range(3)]
    assert launch(exp, jobs) == 3
    out = capsys.readouterr().out
    assert out.count("no finished unlearn run of method 'maxent'") == 1
    assert out.count("not run, 3 job(s) wait for it") == 1
    assert f"python run_unlearn.py --setting language --scale smoke --out {exp.out}" in out
    assert not (exp.root / "relearn").exists()


def test_only_matching_nothing_lists_the_jobs(exp):
    jobs = [Job("pretrain", "base", PRETRAIN), Job("pretrain", "oracle", PRETRAIN)]
    with pytest.raises(UserError, match=r"--only 'orcale' matches no job of this stage; its jobs are: base, oracle"):
        launch(exp, jobs, only="orcale")
