"""Run folders, the launcher and the command line: atomic runs, skipping, failures, secrets, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from undo.runner.jobs import Job
from undo.runner.launch import launch
from undo.runs.rundir import is_done

ROOT = Path(__file__).resolve().parents[1]
MICRO_PRETRAIN = {
    "mix": {"en": 0.5, "ko": 0.5},
    "batch_size": 2,
    "eval_every": 2,
    "optim": {"lr": 1e-3, "steps": 2},
}


def test_crashed_run_leaves_no_done_and_keeps_the_error(exp, monkeypatch):
    import undo.stages.pretrain as pretrain

    def save(exp, rundir, model):
        if rundir.final.name == "broken":
            raise OSError("disk full")

    monkeypatch.setattr(pretrain, "save", save)
    bad = Job("pretrain", "broken", MICRO_PRETRAIN)
    good = Job("pretrain", "fine", MICRO_PRETRAIN)
    assert launch(exp, [bad, good]) == 1  # one failure, and the other job still ran
    folder = exp.run_dir("pretrain/broken")
    assert not folder.exists() and not is_done(folder)
    assert "OSError: disk full" in (folder.with_name(".broken.failed") / "ERROR").read_text()
    assert is_done(exp.run_dir("pretrain/fine"))


def test_rerun_skips_finished_runs_unless_forced(exp, capsys):
    job = Job("pretrain", "base", MICRO_PRETRAIN)
    assert launch(exp, [job]) == 0
    stamp = (exp.run_dir(job.ref) / "summary.json").stat().st_mtime_ns
    assert launch(exp, [job]) == 0
    assert "0 job(s) to run, 1 already finished" in capsys.readouterr().out
    assert (exp.run_dir(job.ref) / "summary.json").stat().st_mtime_ns == stamp
    assert launch(exp, [job], force=True) == 0
    assert (exp.run_dir(job.ref) / "summary.json").stat().st_mtime_ns != stamp


def test_dry_run_and_filter_run_nothing_else(exp, capsys):
    jobs = [Job("pretrain", "base", MICRO_PRETRAIN), Job("pretrain", "oracle", MICRO_PRETRAIN)]
    launch(exp, jobs, dry_run=True)
    assert capsys.readouterr().out.count("todo") == 2
    launch(exp, jobs, only="orac*")
    assert is_done(exp.run_dir("pretrain/oracle")) and not exp.run_dir("pretrain/base").exists()


SECRET_HF, SECRET_WANDB = "hf_PLANTEDsecret0123456789", "PLANTEDwandbKEY0123456789abcdef0123456789"


def plant_tokens(folder: Path) -> Path:
    folder.mkdir()
    (folder / "hf_token.txt").write_text(SECRET_HF + "\n")
    (folder / "wandb_token.txt").write_text(SECRET_WANDB + "\n")
    return folder


def assert_no_secret(out: Path, *captured: str) -> None:
    for text in captured:
        assert SECRET_HF not in text and SECRET_WANDB not in text
    for path in (p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert SECRET_HF.encode() not in data and SECRET_WANDB.encode() not in data, path


def test_tokens_from_the_tokens_folder_and_an_unreachable_wandb_server_warn_once_and_leak_nothing(
    tmp_path, block_cache
):
    """--tokens and HF_TOKEN are read (auto -> online, since there is a wandb token); the server does not answer,
    so the launch warns once and logs both runs offline."""
    tokens = plant_tokens(tmp_path / "tokens")
    out = tmp_path / "outputs"
    out.mkdir()
    os.symlink(block_cache, out / "cache")
    env = {k: v for k, v in os.environ.items() if k not in ("UNDO_WANDB", "WANDB_API_KEY", "WANDB_SILENT")}
    env.update(HF_TOKEN=SECRET_HF, WANDB_BASE_URL="http://127.0.0.1:9")
    args = ["--scale", "smoke", "--out", str(out), "--tokens", str(tokens), "--wandb", "auto", "--only", "*"]
    result = run_script("run_pretrain.py", *args, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("wandb: cannot reach http://127.0.0.1:9") == 1
    assert len(list((out / "wandb" / "wandb").glob("offline-run-*"))) == 2  # both runs logged, offline
    assert_no_secret(out, result.stdout, result.stderr)


def test_failed_online_start_falls_back_once_and_leaves_no_folder(exp, tmp_path, monkeypatch, capfd):
    """The server looked reachable but the online start fails: offline from then on, the failed start's folder
    removed, the token nowhere."""
    import undo.runs.tracking as tracking

    monkeypatch.setenv("UNDO_TOKENS_DIR", str(plant_tokens(tmp_path / "tokens")))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(tracking, "unreachable", lambda url: None)
    tracking._server_problem.cache_clear()
    monkeypatch.setattr(tracking, "INIT_TIMEOUT_S", 2)
    monkeypatch.setattr(tracking, "_online_failed", False)
    jobs = [Job("pretrain", "base", MICRO_PRETRAIN), Job("pretrain", "oracle", MICRO_PRETRAIN)]
    assert launch(exp, jobs, wandb="online") == 0
    captured = capfd.readouterr()
    assert captured.err.count("wandb online start failed") == 1
    runs = exp.out / "wandb" / "wandb"
    assert sorted(p.name.split("-")[0] for p in runs.iterdir() if p.name.startswith(("run-", "offline-run-"))) == [
        "offline",
        "offline",
    ]
    assert_no_secret(exp.out, captured.out, captured.err)


@pytest.mark.parametrize(
    "token, message",
    [
        (b"\xff\xfe bad bytes", "cannot read the wandb token file {path} (not UTF-8 text)"),
        (None, "--wandb online needs a token"),
    ],
)
def test_unreadable_token_or_online_without_one_is_one_line(tmp_path, token, message, cli, monkeypatch):
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    if token is not None:
        (tokens / "wandb_token.txt").write_bytes(token)
    monkeypatch.delenv("UNDO_WANDB")
    monkeypatch.setenv("UNDO_TOKENS_DIR", str(tokens))  # --tokens sets it for the process: restored after the test
    out = tmp_path / "outputs"
    code, _, err = cli(
        "run_pretrain.py", "--scale", "smoke", "--out", str(out), "--tokens", str(tokens), "--wandb", "online"
    )
    assert code == 2
    assert err.startswith("error: " + message.format(path=tokens / "wandb_token.txt"))
    assert len(err.strip().splitlines()) == 1
    assert not (out / "language").exists()  # decided before any run started


def test_tokens_folder_is_the_projects_whatever_the_working_directory(tmp_path, monkeypatch):
    from undo.io.credentials import tokens_dir

    monkeypatch.delenv("UNDO_TOKENS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tokens_dir() == ROOT / "tokens"


def run_script(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=180, env=env)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--setting", "chess"], "error: unknown setting 'chess'"),
        (["--scale", "huge"], "error: unknown scale 'huge'"),
    ],
)
def test_bad_names_give_one_clear_line(args, message, cli):
    code, _, err = cli("run_pretrain.py", "--dry-run", *args)
    assert code == 2
    assert err.strip() == err.strip().splitlines()[0]  # one line, no traceback
    assert err.startswith(message)


def test_unwritable_output_folder_is_one_clear_line(tmp_path, cli):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    code, _, err = cli("run_prepare.py", "--out", str(blocked / "out"))
    assert code == 2
    assert "not writable" in err or "cannot write" in err
    assert len(err.strip().splitlines()) == 1


def test_config_records_parameters_and_metrics_are_jsonl(exp):
    launch(exp, [Job("pretrain", "base", MICRO_PRETRAIN)])
    folder = exp.run_dir("pretrain/base")
    config = json.loads((folder / "config.json").read_text())
    assert config["params"] == MICRO_PRETRAIN and config["stage"] == "pretrain"
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in records} == {"train", "eval"}
    assert (folder / "model" / "config.json").is_file() and (folder / "model" / "tokenizer.json").is_file()


def test_several_small_jobs_share_each_gpu_and_the_cores(monkeypatch):
    from undo.runner.workers import worker_slots

    monkeypatch.setattr("undo.runner.workers.visible_gpus", lambda: ["0", "3"])
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    shared = worker_slots(workers=2)  # two small jobs per GPU, each a quarter of the cores and half its GPU
    assert [slot.label for slot in shared] == ["GPU 0 slot 0", "GPU 0 slot 1", "GPU 3 slot 0", "GPU 3 slot 1"]
    assert {(s.env["CUDA_VISIBLE_DEVICES"], s.env["OMP_NUM_THREADS"], s.env["UNDO_GPU_SHARE"]) for s in shared} == {
        ("0", "4", "2"),
        ("3", "4", "2"),
    }
    assert [slot.label for slot in worker_slots(workers=1)] == ["GPU 0", "GPU 3"]


def test_worker_fan_out_runs_the_jobs_in_pinned_worker_processes(exp, monkeypatch, capsys):
    """The worker path (one per GPU, or CPU workers sharing the cores): worker processes, per-job logs,
    failures reported, the others finish."""
    from undo.runner.workers import worker_slots

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    slots = worker_slots(workers=2)
    assert [slot.env["OMP_NUM_THREADS"] for slot in slots] == ["1", "1"] and worker_slots(workers=1) == []
    assert launch(exp, [Job("pretrain", "base", MICRO_PRETRAIN)]) == 0
    unlearn = {"batch_size": 2, "optim": {"lr": 1e-3, "steps": 2}}
    jobs = [
        Job("unlearn", "a", {**unlearn, "method": "maxent"}),
        Job("unlearn", "b", {**unlearn, "method": "rmu", "args": {"layer": 7}}),  # fails when it runs
    ]
    assert launch(exp, jobs, wandb="off", workers=2) == 1
    assert "CPU worker 1: unlearn/" in capsys.readouterr().out
    failures = [(j.ref, (exp.run_dir(j.ref).with_name(f".{j.name}.failed") / "ERROR")) for j in jobs]
    failures = [(ref, path.read_text()) for ref, path in failures if path.is_file()]
    assert [ref for ref, _ in failures] == ["unlearn/b"]
    assert "RMU layer 7 is outside the model" in failures[0][1]
    assert is_done(exp.run_dir("unlearn/a"))
    assert (exp.root / "unlearn" / ".logs" / "a.log").is_file()


def test_a_worker_that_dies_fails_its_job_and_a_fresh_one_runs_the_rest(exp, monkeypatch):
    """A worker killed mid-job (as the kernel kills for memory) fails that job with its exit code; the next job
    runs in a replacement worker and finishes."""
    import multiprocessing
    import signal
    import threading
    import time

    from undo.runner.workers import Slot, run_in_workers

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    launch(exp, [Job("pretrain", "base", MICRO_PRETRAIN)])
    long = {**MICRO_PRETRAIN, "eval_every": 0, "optim": {"lr": 1e-3, "steps": 100_000}}
    jobs = [Job("pretrain", "killed", long), Job("pretrain", "after", MICRO_PRETRAIN)]
    log = exp.root / "pretrain" / ".logs" / "killed.log"

    def kill_once_training():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "pretrain/killed" not in (log.read_text() if log.is_file() else ""):
            time.sleep(0.2)
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_once_training)
    killer.start()
    slot = Slot("CPU worker 0", {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    failures = run_in_workers(exp, jobs, [slot], "off")
    killer.join()
    assert [ref for ref, _ in failures] == ["pretrain/killed"]
    assert "its worker died (exit code -9)" in failures[0][1]
    assert is_done(exp.run_dir("pretrain/after")) and not is_done(exp.run_dir("pretrain/killed"))


HOLD = """
import sys
from undo.experiment import Experiment
from undo.runner.jobs import Job
from undo.runner.launch import launch

params = {"mix": {"en": 1.0}, "batch_size": 2, "eval_every": 0, "optim": {"lr": 1e-3, "steps": int(sys.argv[2])}}
sys.exit(launch(Experiment("language", "smoke", sys.argv[1]), [Job("pretrain", "held", params)], wandb="off"))
"""


def holding(exp, steps: int) -> subprocess.Popen:
    """Another launch into the same tree, running pretrain/held; returned once it holds the run's lock."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(exp.out), str(steps)], cwd=ROOT, env=os.environ.copy())
    lock, deadline = exp.run_dir("pretrain/held").with_name(".held.lock"), time.monotonic() + 120
    while not (lock.is_file() and f'"pid": {proc.pid}' in lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def test_a_run_another_launch_is_running_is_waited_for_and_taken_not_run_again(exp, capsys):
    other = holding(exp, steps=60)
    params = {"mix": {"en": 1.0}, "batch_size": 2, "eval_every": 0, "optim": {"lr": 1e-3, "steps": 60}}
    assert launch(exp, [Job("pretrain", "held", params)], wandb="off") == 0
    assert other.wait(timeout=300) == 0
    out = capsys.readouterr().out
    assert "another launch is running it" in out and "finished by another launch; taking its run" in out
    records = (exp.run_dir("pretrain/held") / "metrics.jsonl").read_text().splitlines()
    assert len([r for r in records if '"train"' in r]) == 6  # one run's records: trained once


def test_the_lock_of_a_killed_launch_is_taken_over_at_once(exp, capsys):
    import signal

    other = holding(exp, steps=100_000)
    other.send_signal(signal.SIGKILL)
    other.wait()
    params = {"mix": {"en": 1.0}, "batch_size": 2, "eval_every": 0, "optim": {"lr": 1e-3, "steps": 2}}
    assert launch(exp, [Job("pretrain", "held", params)], wandb="off") == 0
    assert "another launch is running it" not in capsys.readouterr().out and is_done(exp.run_dir("pretrain/held"))
