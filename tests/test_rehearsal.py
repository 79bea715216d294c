"""The paper-scale rehearsal: a Gemma-sized vocabulary that tokenizes as the embedded one, local files that the
hub loader reads as it reads the hub, paper grids thinned to one job of each shape; the whole rehearsal is slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import run_distill
import run_pretrain
import run_relearn
import run_unlearn
from undo.data import local
from undo.data.corpora import iter_documents
from undo.runner.jobs import Job
from undo.runner.shrink import REHEARSAL, one_of_each, shrink, write_rehearsal_inputs
from undo.settings import PAPER_CHUNK_ROWS, get_setting

ROOT = Path(__file__).resolve().parents[1]


def test_the_gemma_sized_tokenizer_has_256k_ids_and_tokenizes_as_the_embedded_one(tokenizer):
    from undo.data.tokenizer import GEMMA_SIZED, load_tokenizer

    padded = load_tokenizer(GEMMA_SIZED)
    assert len(padded) == 256_000
    text = "Press F1 for help. 12 + 30 = 42<|endoftext|>도움말을 엽니다."
    assert padded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert (padded.pad_token_id, padded.eos_token_id) == (tokenizer.pad_token_id, tokenizer.eos_token_id)


def test_local_files_are_read_by_the_hub_loader_in_the_hub_formats(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_rehearsal_inputs(get_setting("wmdp-bio"))
    scale = get_setting("wmdp-bio").scale("rehearsal")
    web = scale.corpora["web"]
    assert web["path"] == "parquet" and Path(web["data_files"][0]).is_file()
    validation = list(iter_documents(web, "validation"))
    assert len(validation) == local.VALIDATION_DOCS and all(isinstance(d, str) and d for d in validation)
    magpie = scale.corpora["magpie-gemma-2"]  # read from its `response` column, as on the hub
    columns = pq.read_schema(magpie["data_files"][0]).names
    assert magpie["text_field"] == "response" and "response" in columns and "text" not in columns
    assert list(iter_documents(magpie, "validation")) == validation
    forget = list(iter_documents(scale.corpora["forget"], "train"))
    assert forget and all("\nAnswer:" in qa.prompt for qa in forget)
    start = local.STAND_IN
    assert (start / "config.json").is_file()  # the stand-in for google/gemma-2-2b, at the rehearsal's vocabulary
    assert '"vocab_size": 256000' in (start / "config.json").read_text()
    assert '"num_hidden_layers": 26' in (start / "config.json").read_text()  # Gemma-2-2b's depth


@pytest.mark.parametrize("setting", ["language", "arithmetic", "wmdp-bio", "wmdp-cyber"])
def test_every_layer_the_paper_unlearning_grid_names_exists_in_the_rehearsal_model(setting):
    """RMU steers and trains layers by index: the rehearsal's model (WMDP: the stand-in start) must have them."""
    from undo.model.models import PRESETS

    layers = PRESETS[get_setting(setting).scale("rehearsal").model]["num_hidden_layers"]
    named = [
        index
        for job in run_unlearn.GRIDS[(setting, "paper")]
        for index in [job.params["args"].get("layer", 0), *job.params["args"].get("trainable_layers", [])]
    ]
    assert named and max(named) < layers


def test_local_files_are_read_without_a_network(tmp_path, monkeypatch):
    """Reading local files in a hub format must not probe the hub, which fails at once without a network."""
    import undo.io.hub

    monkeypatch.chdir(tmp_path)
    write_rehearsal_inputs(get_setting("language"))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(undo.io.hub, "_hub_problem", lambda: "https://huggingface.co does not answer")
    source = get_setting("language").scale("rehearsal").corpora["ko"]
    assert len(list(iter_documents(source, "validation"))) == local.VALIDATION_DOCS


def test_paper_grids_are_thinned_to_one_job_of_each_shape_and_cut_to_one_step():
    jobs = [
        *run_pretrain.GRIDS[("language", "paper")],
        *run_unlearn.GRIDS[("language", "paper")],
        *run_distill.GRIDS[("language", "paper")],
        *run_relearn.GRIDS[("language", "paper")],
    ]
    kept = shrink(one_of_each(jobs), REHEARSAL, attack_steps=1)
    assert {j.ref for j in kept if j.stage == "unlearn"} == {
        "unlearn/graddiff-lr1e-05",
        "unlearn/maxent-lr1e-05",
        "unlearn/rmu-lr1e-05",
        "unlearn/maxent-sam-lr3e-05",
        "unlearn/maxent-repnoise-a0.1-b0.0001-lr3e-05",
    }
    assert {j.ref for j in kept if j.stage == "distill"} == {
        "distill/full-graddiff",
        "distill/undo-maxent-a0.1-s0",
        "distill/match-base",
        "distill/match-random",
    }
    attacked = [j.params["model"] for j in kept if j.stage == "relearn"]
    assert attacked == ["pretrain/base", "unlearn/graddiff-lr1e-05", "distill/full-graddiff"]
    for job in kept:
        assert job.params["optim"]["steps"] == REHEARSAL.steps and job.params["batch_size"] == 1
        assert job.params["chunk_rows"] == REHEARSAL.chunk_rows < PAPER_CHUNK_ROWS  # the paper's are larger
    base = next(j for j in kept if j.ref == "pretrain/base")
    assert base.params["optim"]["grad_accum"] == REHEARSAL.grad_accum  # accumulation is exercised, not removed


def test_a_pretrained_start_is_replaced_by_the_local_stand_in():
    (job,) = shrink([Job("pretrain", "base", {"role": "base", "start": "google/gemma-2-2b"})], REHEARSAL, 1)
    assert job.params["start"] == str(local.STAND_IN)


@pytest.mark.slow
@pytest.mark.parametrize(
    "setting",
    [
        "language",
        "arithmetic",
        "wmdp-bio",
    ],
)
def test_the_paper_grid_rehearses_end_to_end_on_the_cpu(setting, tmp_path):
    out = tmp_path / "outputs"
    command = [sys.executable, str(ROOT / "run_all.py"), "--setting", setting, "--scale", "rehearsal"]
    result = subprocess.run(
        [*command, "--out", str(out), "--wandb", "off"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = out / setting / "rehearsal" / "results"
    assert (results / "results.md").is_file()
    models = json.loads((results / "results.json").read_text())["models"]
    assert any("attack" in model for model in models)  # the report found the grid's attacks
