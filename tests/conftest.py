"""Shared fixtures: the embedded tokenizer, micro models, and an experiment over a session-wide block cache.

Tests are hermetic: the hub libraries are offline from the start (huggingface_hub reads its settings when it is
first imported, so they are set here, before any test module imports it), tokens/ is an empty folder, and a test
that opens a connection to anything but this machine fails.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile

import pytest
import torch

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "UNDO_WANDB": "off", "WANDB_SILENT": "true"}
os.environ.update(OFFLINE, UNDO_TOKENS_DIR=tempfile.mkdtemp(prefix="undo-test-tokens-"))
SECRETS = ("WANDB_API_KEY", "HF_TOKEN", "OPENAI_API_KEY")
for secret in SECRETS:
    os.environ.pop(secret, None)


def _loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return False
    if host == "localhost" or os.path.sep in host:  # a name on this machine, or a Unix socket path
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: resolving it would already be a lookup outside
        return False


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test reaches past this machine: a connection elsewhere fails the test, even where the code under test
    catches the error; wandb is off unless a test switches it on."""
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    for secret in SECRETS:  # a test (or the code it runs) may have set one for this process
        monkeypatch.delenv(secret, raising=False)
    attempts = []
    connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            attempts.append(address)
            raise ConnectionRefusedError(f"tests stay on this machine: a connection to {address} was blocked")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    torch.manual_seed(0)
    yield attempts  # what a test tried to reach, for a test of the guard itself
    assert not attempts, f"the test tried to connect outside this machine: {attempts}"


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


@pytest.fixture
def cli(capsys):
    """A run_*.py script's command line, in this process (no interpreter to start, no torch to import again):
    `cli("run_eval.py", "--scale", "smoke")` -> (exit code, stdout, stderr)."""
    from importlib import import_module
    from pathlib import Path

    from undo.cli import guarded

    def run(script: str, *args: str) -> tuple[int, str, str]:
        main = import_module(Path(script).stem).main
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            guarded(lambda: main(list(args)))
        out, err = capsys.readouterr()
        return exit_.value.code, out, err

    return run
