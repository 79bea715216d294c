"""The paper grids against docs/fidelity.md: every row that names a grid value states what the grid holds, and every
row that differs from the paper or the public code says why."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

import run_distill
import run_pretrain
import run_relearn
import run_unlearn
from undo.experiment import Experiment
from undo.runner.jobs import validate
from undo.settings import SETTINGS

TABLE = Path(__file__).resolve().parents[1] / "docs" / "fidelity.md"
STAGES = {"pretrain": run_pretrain, "unlearn": run_unlearn, "distill": run_distill, "relearn": run_relearn}


def rows() -> list[list[str]]:
    """The table rows whose first cell names settings ("wmdp-*": both domains), one row per setting: setting,
    hyperparameter, paper, public code, ours, grid value, verdict."""
    found = []
    for line in TABLE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        settings = fnmatch.filter(SETTINGS, cells[0]) if line.startswith("|") else []
        assert not settings or len(cells) == 7, line
        found += [[setting, *cells[1:]] for setting in settings]
    return found


def show(value) -> str:
    """A value as the table writes it."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return "none" if value is None else str(value)


def lookup(obj, path: str):
    for key in path.split("."):
        obj = obj[key] if isinstance(obj, dict) else getattr(obj, key)
    return obj


def grid_value(setting: str, query: str) -> str:
    """`<stage> <job glob> <field.path>` (every matching job's value, in grid order, each once), `scale <field>`,
    `corpus <domain> <key>` or `setting <attribute>`, at paper scale."""
    exp = Experiment(setting, "paper", "/nonexistent")
    kind, *rest = query.split()
    if kind == "scale":
        return show(lookup(exp.scale, rest[0]))
    if kind == "corpus":
        return show(exp.scale.corpora[rest[0]].get(rest[1]))
    if kind == "setting":
        return show(lookup(exp.setting, rest[0]))
    glob, path = rest
    jobs = [j for j in STAGES[kind].GRIDS[(setting, "paper")] if fnmatch.fnmatchcase(j.name, glob)]
    assert jobs, f"{setting}: no {kind} job matches {glob}"
    parsed = validate(exp, jobs)
    values = [show(lookup(parsed[j.ref], path)) for j in jobs]
    return ", ".join(dict.fromkeys(values))


def test_every_grid_value_in_the_fidelity_table_is_the_grids():
    checked = [(r[0], r[1], r[4], r[5].strip("`")) for r in rows() if r[5] not in ("", "-")]
    assert len(checked) > 60
    wrong = [
        f"{setting} / {what}: table says {ours!r}, grid has {grid_value(setting, query)!r}"
        for setting, what, ours, query in checked
        if grid_value(setting, query) != ours.strip("`")
    ]
    assert not wrong, "\n".join(wrong)


def test_every_row_says_whether_it_matches_and_every_difference_says_why():
    for setting, what, *_, verdict in rows():
        assert re.match(r"(matches|differs because .{10,})", verdict), f"{setting} / {what}: {verdict!r}"


@pytest.mark.parametrize("setting", ["language", "arithmetic", "wmdp-bio", "wmdp-cyber"])
def test_the_table_covers_every_stage_of_each_paper_grid(setting):
    queried = {r[5].strip("`").split()[0] for r in rows() if r[0] == setting and r[5] not in ("", "-")}
    assert set(STAGES) - {"pretrain"} <= queried  # WMDP's pretraining is the start checkpoint only
    assert "pretrain" in queried
