"""Two launches of the whole pipeline into one output tree at once: every run is trained once, by whichever launch
gets to it first, and both end with the same clean report."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_simultaneous_pipelines_share_the_work_and_agree(tmp_path):
    out = tmp_path / "outputs"
    command = [sys.executable, "run_all.py", "--scale", "smoke", "--out", str(out), "--wandb", "off"]
    launches = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)]
    launches.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    outputs = [proc.communicate(timeout=1200)[0] for proc in launches]
    assert [proc.returncode for proc in launches] == [0, 0], outputs
    tree = out / "language" / "smoke"
    runs = sorted(str(done.parent.relative_to(tree)) for done in tree.glob("*/*/DONE"))
    lines = [line for text in outputs for line in text.splitlines()]
    finished = Counter(line.split()[1] for line in lines if " done in " in line)  # trained or taken
    taken = Counter(line.split(":")[0] for line in lines if "finished by another launch" in line)
    assert {run: finished[run] - taken[run] for run in runs} == dict.fromkeys(runs, 1)  # each trained once
    print(f"{len(runs)} runs, {sum(taken.values())} taken from the other launch")
    assert json.loads((tree / "results" / "results.json").read_text())["models"]
