"""The test suite itself stays off the network and away from the project's secrets (tests/conftest.py)."""

import os
import socket

import httpx
import pytest

from undo.io.credentials import PROJECT, read_token, tokens_dir


def test_a_request_outside_this_machine_fails_the_test(offline):
    with pytest.raises(httpx.ConnectError, match="tests stay on this machine"):
        httpx.get("http://203.0.113.7/", timeout=2)  # TEST-NET-3: a documentation address
    assert offline == [("203.0.113.7", 80)]
    offline.clear()  # the guard caught it: only this test may end with an attempt on record


def test_connections_on_this_machine_go_through(offline):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        socket.create_connection(server.getsockname(), timeout=2).close()
    assert offline == []


def test_hub_libraries_are_offline_from_their_first_import():
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE and os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_tokens_come_from_an_empty_folder_not_the_projects():
    assert tokens_dir() != PROJECT / "tokens" and not any(tokens_dir().iterdir())
    assert read_token("hf") is None and read_token("wandb") is None
