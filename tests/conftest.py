"""Shared fixtures: the embedded tokenizer, micro models, and an experiment over a session-wide block cache."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test touches the network; wandb is off unless a test switches it on."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("UNDO_WANDB", "off")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tokenizer():
    from undo.data.tokenizer import load_tokenizer

    return load_tokenizer("embedded")


@pytest.fixture
def micro_model(tokenizer):
    from undo.model.models import build_model

    return build_model("micro", tokenizer, seed=0)


@pytest.fixture(scope="session")
def block_cache(tmp_path_factory):
    """Tokenize the embedded corpora once per session."""
    from undo.experiment import Experiment
    from undo.stages.prepare import prepare

    out = tmp_path_factory.mktemp("shared-out")
    prepare(Experiment("language", "smoke", out))
    return out / "cache"


@pytest.fixture
def exp(tmp_path, block_cache):
    """A smoke-scale language experiment in a fresh output tree that shares the block cache."""
    from undo.experiment import Experiment

    out = tmp_path / "outputs"
    out.mkdir()
    os.symlink(block_cache, out / "cache")
    return Experiment("language", "smoke", out)


@pytest.fixture
def accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)
