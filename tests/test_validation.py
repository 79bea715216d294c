"""Every grid job is validated before anything runs: each bad value is named with its job and key, in one
message, and nothing is written."""

from __future__ import annotations

import pytest

from undo.errors import UserError
from undo.runner.jobs import Job
from undo.runner.launch import launch

OPTIM = {"lr": 1e-3, "steps": 2}
PRETRAIN = {"mix": {"en": 0.5, "ko": 0.5}, "batch_size": 2, "optim": OPTIM}
UNLEARN = {"method": "maxent", "batch_size": 2, "optim": OPTIM}
DISTILL = {"role": "undo", "teacher": "unlearn/t", "alpha": 0.5, "beta": 0.1, "mix": {"en": 1.0}, "batch_size": 2}
RELEARN = {"model": "pretrain/base", "optim": {"lr": 1e-3, "steps": 2}, "batch_size": 2}


def with_(params: dict, **changes) -> dict:
    """A copy with top-level keys (and optim.<key>) replaced; None removes a key."""
    out = {**params, "optim": {**params.get("optim", OPTIM)}} if "optim" in params else dict(params)
    for key, value in changes.items():
        target, name = (out["optim"], key[6:]) if key.startswith("optim_") else (out, key)
        if value is None:
            target.pop(name)
        else:
            target[name] = value
    return out


BAD = [
    # (stage, params, the key named, a piece of the message)
    ("pretrain", with_(PRETRAIN, mix={"en": -0.5, "ko": 0.5}), "mix.en", "greater than 0"),
    ("pretrain", with_(PRETRAIN, mix={"en": 1.0, "klingon": 1.0}), "mix", "unknown domain(s) ['klingon']"),
    ("pretrain", with_(PRETRAIN, mix={}), "mix", "at least 1 item"),
    ("pretrain", with_(PRETRAIN, optim_min_lr=1e-2), "optim", "min_lr 0.01 is above lr 0.001"),
    ("pretrain", with_(PRETRAIN, optim_lr=1e4), "optim.lr", "less than or equal to 1"),
    ("pretrain", with_(PRETRAIN, optim_lr="1e-3"), "optim.lr", "valid number"),
    ("pretrain", with_(PRETRAIN, optim_steps=0), "optim.steps", "greater than or equal to 1"),
    ("pretrain", with_(PRETRAIN, optim_steps=2.5), "optim.steps", "valid integer"),
    ("pretrain", with_(PRETRAIN, optim_warmup=5), "optim", "warmup 5 must be shorter than the run (2 steps)"),
    ("pretrain", with_(PRETRAIN, eval_every=-1), "eval_every", "greater than or equal to 0"),
    ("pretrain", with_(PRETRAIN, batch_size=0), "batch_size", "greater than or equal to 1"),
    ("pretrain", with_(PRETRAIN, model="huge"), "model", "unknown model preset 'huge'"),
    ("pretrain", with_(PRETRAIN, seed=-3), "seed", "greater than or equal to 0"),
    ("pretrain", with_(PRETRAIN, optim=None), "(params)", "optim missing: pretraining needs a mix and optim"),
    ("pretrain", with_(PRETRAIN, start="google/gemma-2-2b"), "(params)", "evaluated as it is: drop mix and optim"),
    ("pretrain", with_(PRETRAIN, optim_betas=[0.9, 1.5]), "optim.betas.1", "less than 1"),
    ("unlearn", with_(UNLEARN, method="forgetall"), "method", "unknown unlearning method 'forgetall'"),
    ("unlearn", with_(UNLEARN, args={"retain_wieght": 2.0}), "(params)", "args.retain_wieght: unknown key"),
    ("unlearn", with_(UNLEARN, optim_sam_rho=-0.1), "optim.sam_rho", "greater than or equal to 0"),
    ("unlearn", with_(UNLEARN, repnoise={"alpha": 1.0}), "repnoise.beta", "Field required"),
    ("unlearn", with_(UNLEARN, base="base"), "base", "must look like '<stage>/<run-name>'"),
    ("distill", with_(DISTILL, alhpa=0.5, optim=OPTIM), "alhpa", "unknown key (check its spelling)"),
    ("distill", with_(DISTILL, beta=None, optim=OPTIM), "(params)", "UNDO needs alpha and beta"),
    ("distill", with_(DISTILL, tolerance=-0.05, optim=OPTIM), "tolerance", "greater than or equal to 0"),
    ("distill", with_(DISTILL, role="fuul", optim=OPTIM), "role", "'distilled', 'undo', 'matched' or 'reset'"),
    ("distill", with_(DISTILL, role="distilled", optim=OPTIM), "(params)", "alpha and beta apply to UNDO only"),
    ("relearn", with_(RELEARN, optim_lr=0), "optim.lr", "greater than 0"),
    ("relearn", with_(RELEARN, optim_steps=0), "optim.steps", "greater than or equal to 1"),
    ("relearn", with_(RELEARN, save_model="yes"), "save_model", "valid boolean"),
]


@pytest.mark.parametrize("stage, params, key, message", BAD, ids=[f"{s}-{k}-{i}" for i, (s, _, k, _) in enumerate(BAD)])
def test_bad_grid_value_is_named_with_job_and_key_before_anything_runs(exp, stage, params, key, message):
    good = Job("pretrain", "fine", PRETRAIN)
    with pytest.raises(UserError) as err:
        launch(exp, [good, Job(stage, "bad", params)])
    text = str(err.value)
    assert text.startswith("1 bad grid value(s), nothing was run:")
    assert f"{stage}/bad: {key}: " in text and message in text, text
    assert "pretrain/fine" not in text
    assert not exp.root.exists()  # nothing ran, not even the good job


def test_every_bad_value_of_every_job_in_one_message(exp):
    jobs = [
        Job("pretrain", "a", with_(PRETRAIN, optim_steps=0, eval_every=-1)),
        Job("relearn", "b", with_(RELEARN, optim_lr=-1.0)),
    ]
    with pytest.raises(UserError) as err:
        launch(exp, jobs, dry_run=True)
    lines = str(err.value).splitlines()
    assert lines[0] == "3 bad grid value(s), nothing was run:"
    assert [line.split(": ")[0].strip() for line in lines[1:]] == ["pretrain/a", "pretrain/a", "relearn/b"]


def test_every_shipped_grid_is_valid():
    """The grids of every run_*.py script at every scale pass their stage's schema."""
    import run_distill
    import run_pretrain
    import run_relearn
    import run_unlearn
    from undo.experiment import Experiment
    from undo.runner.jobs import validate
    from undo.runner.shrink import SMOKE, shrink

    for module in (run_pretrain, run_unlearn, run_distill, run_relearn):
        for (setting, scale), jobs in [*module.GRIDS.items(), *getattr(module, "VARIANTS", {}).items()]:
            exp = Experiment(setting, scale)
            validate(exp, jobs)
            if scale == "embedded":
                validate(Experiment(setting, "smoke"), shrink(jobs, SMOKE, attack_steps=4))


def test_run_all_checks_every_stage_before_the_first_runs(tmp_path, monkeypatch):
    import run_all
    import run_relearn

    grid = [*run_relearn.GRIDS[("language", "embedded")], Job("relearn", "typo", {**RELEARN, "lrr": 1e-3})]
    monkeypatch.setitem(run_relearn.GRIDS, ("language", "embedded"), grid)
    out = tmp_path / "outputs"
    with pytest.raises(UserError, match=r"relearn/typo: lrr: unknown key"):
        run_all.main(["--scale", "smoke", "--out", str(out), "--wandb", "off"])
    assert not out.exists()


def test_every_shipped_attack_grid_evaluates_at_its_scales_budgets():
    """The report reads each attack at its scale's budgets (the headline is the second): an attack grid that does
    not evaluate there would leave them empty. Checked for every attack grid, cut grids (smoke, rehearsal) too."""
    import run_relearn
    from undo.runner.shrink import REHEARSAL, SMOKE, one_of_each, shrink
    from undo.settings import get_setting
    from undo.training.loop import Evaluation

    grids = [*run_relearn.GRIDS.items(), *run_relearn.VARIANTS.items()]
    cut = {"embedded": ("smoke", SMOKE, lambda jobs: jobs), "paper": ("rehearsal", REHEARSAL, one_of_each)}
    for (setting, scale), jobs in grids:
        small, how, which = cut[scale]
        budgets = get_setting(setting).scale(small).attack_budgets
        cases = [(scale, jobs), (small, shrink(which(jobs), how, budgets[-1]))]
        for name, attacks in cases:
            want = set(get_setting(setting).scale(name).attack_budgets)
            for job in attacks:
                p, steps = job.params, job.params["optim"]["steps"]
                evaluation = Evaluation(every=p.get("eval_every", 0), at=tuple(p.get("eval_at", ())))
                evaluated = {0} | {s for s in range(1, steps + 1) if evaluation.due(s, steps)}
                assert want <= evaluated, (
                    f"{setting}/{name} {job.ref}: budgets {sorted(want - evaluated)} not evaluated"
                )
