"""The prepared GPU check runs its whole code path on the CPU (a micro model), so it works when a GPU is lent."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


def test_gpu_check_cpu_path_measures_every_path_and_step_kind(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = tmp_path / "table.md"
    rows = module.main(["--cpu-smoke", "--table", str(table)])
    measured = {(path, batch, kind): tokens for _, path, batch, kind, tokens, *_ in rows}
    # flex attention has no backward pass on a CPU: its paths say so; the others are timed at every step kind
    for path in ("eager", "fused AdamW"):
        for kind in module.KINDS:
            assert float(measured[(path, 2, kind)].replace(",", "")) > 0
    assert measured[("flex", 2, "the rest")].startswith("failed: NotImplementedError: FlexAttention")
    assert measured[("flex vs eager", 2, "agreement")].startswith("failed: NotImplementedError")
    assert table.read_text().splitlines()[-len(rows) :] == capsys.readouterr().out.splitlines()[-len(rows) :]
