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
    steps = [
        f"{stage} step ({chunks})"
        for chunks in ("full logits", "chunks of 16")
        for stage in ("pretraining", "distillation")
    ]
    assert labels[:4] == steps
    assert all(float(row[1].split()[0].replace(",", "")) > 0 for row in rows[:4])
    assert labels[-1] == "fused linear CE (Liger)" and rows[-1][3] in ("liger-kernel is not installed", "CUDA only")
    assert len(rows) == 7 and "| measured | value | MFU | note |" in capsys.readouterr().out
