"""The prepared GPU check runs its whole code path on the CPU (a micro model), so it works when a GPU is lent."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


def test_gpu_check_cpu_path_prints_every_measurement(capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.main(["--cpu-smoke"])
    labels = [row[0] for row in rows]
    assert labels[:2] == ["pretraining step", "distillation step (chunks of 16)"]
    assert all(float(row[1].split()[0].replace(",", "")) > 0 for row in rows[:2])
    assert len(rows) == 4 and "| measured | value | MFU | note |" in capsys.readouterr().out
