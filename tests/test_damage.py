"""Damaged files are named with their path and the fix; the block cache repairs itself; leftovers of killed
processes are swept at the next launch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from undo.errors import UserError
from undo.runner.jobs import Job
from undo.runner.launch import launch

ROOT = Path(__file__).resolve().parents[1]
PRETRAIN = {"mix": {"en": 0.5, "ko": 0.5}, "batch_size": 2, "optim": {"lr": 1e-3, "steps": 2}}


@pytest.fixture
def finished(exp):
    """A finished pretrain/base run."""
    assert launch(exp, [Job("pretrain", "base", PRETRAIN)]) == 0
    return exp.run_dir("pretrain/base")


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    return text


def test_truncated_weights_name_the_model_and_the_rerun_command(exp, finished):
    weights = finished / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UserError) as err:
        exp.load_model("pretrain/base")
    text = one_line(err)
    assert f"the model at {finished / 'model'} is damaged" in text
    assert text.endswith("--force --only base")


def test_missing_model_config_of_a_finished_run_says_rerun_not_run_first(exp, finished):
    (finished / "model" / "config.json").unlink()
    with pytest.raises(UserError) as err:
        exp.load_model("pretrain/base")
    assert "is missing or incomplete (no config.json): rerun it: python run_pretrain.py" in one_line(err)


@pytest.mark.parametrize("content", ["{not json", "", b"\xff\xfe"])
def test_damaged_summary_is_named(exp, finished, content):
    path = finished / "summary.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserError) as err:
        exp.summary("pretrain/base")
    assert one_line(err).startswith(f"{path} is damaged")


def test_damaged_metrics_file_is_named(exp, finished):
    from undo.reporting.report import train_curve

    path = finished / "metrics.jsonl"
    path.write_text(path.read_text() + '{"step": 3, "kin')
    with pytest.raises(UserError) as err:
        train_curve(path)
    assert one_line(err).startswith(f"{path} line ")


def test_damaged_run_config_makes_the_run_stale_not_a_crash(exp, finished):
    (finished / "config.json").write_text("{")
    with pytest.raises(UserError, match=r"pretrain/base: its config\.json is missing or damaged"):
        launch(exp, [Job("pretrain", "base", PRETRAIN)])


@pytest.mark.parametrize("damage", ["truncate ids", "grow ids", "edit meta", "bad meta", "drop mask"])
def test_damaged_cache_entry_is_detected_and_rebuilt(tmp_path, capsys, damage):
    from undo.data.prepare import cache_folder, prepared_blocks
    from undo.settings import get_setting

    source = get_setting("arithmetic").scale("smoke").corpora["addsub"]  # answer-only masks: has mask.bin
    first = prepared_blocks(source, "embedded", 128, "validation", tmp_path)
    ids, mask = np.array(first.ids), np.array(first.mask)
    folder = cache_folder(source, "embedded", 128, "validation", tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    if damage == "truncate ids":
        (folder / "ids.bin").write_bytes((folder / "ids.bin").read_bytes()[:-10])
    elif damage == "grow ids":
        (folder / "ids.bin").write_bytes((folder / "ids.bin").read_bytes() + b"\0\0")
    elif damage == "edit meta":
        (folder / "meta.json").write_text(json.dumps({**meta, "n_blocks": meta["n_blocks"] - 1}))
    elif damage == "bad meta":
        (folder / "meta.json").write_text("{")
    else:
        (folder / "mask.bin").unlink()
    again = prepared_blocks(source, "embedded", 128, "validation", tmp_path)
    assert f"cache entry {folder} is damaged" in capsys.readouterr().err
    assert np.array_equal(np.array(again.ids), ids) and np.array_equal(np.array(again.mask), mask)


def test_leftovers_of_dead_processes_are_swept_at_the_next_launch(exp):
    from undo.io.files import HOST

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stage = exp.root / "pretrain"
    stage.mkdir(parents=True)
    leftovers = [stage / f".base.tmp-{HOST}-{pid}", stage / f".oracle.old-{HOST}-{pid}"]
    live = stage / f".other.tmp-{HOST}-{os.getpid()}"  # this process is alive: not swept
    foreign = stage / f".other.tmp-otherhost-{pid}"  # another machine's: not ours to judge
    cache = exp.cache_root / f".en-train.tmp-{HOST}-{pid}"
    for folder in [*leftovers, live, foreign, cache]:
        folder.mkdir(parents=True, exist_ok=True)
    assert launch(exp, [Job("pretrain", "base", PRETRAIN)]) == 0
    assert not any(p.exists() for p in [*leftovers, cache])
    assert live.exists() and foreign.exists()


def test_unwritable_results_folder_is_one_line(exp, finished, cli):
    results = exp.root / "results"
    results.write_text("a file where the results folder should be")
    code, _, err = cli("run_eval.py", "--scale", "smoke", "--out", str(exp.out), "--wandb", "off")
    assert code == 2, err
    assert err.startswith(f"error: cannot write the results into {results}")
    assert len(err.strip().splitlines()) == 1


def test_damaged_summary_in_run_eval_is_one_line(exp, finished, cli):
    (finished / "summary.json").write_text("{")
    code, _, err = cli("run_eval.py", "--scale", "smoke", "--out", str(exp.out), "--wandb", "off")
    assert code == 2
    assert err.startswith(f"error: {finished / 'summary.json'} is damaged")
    assert len(err.strip().splitlines()) == 1
