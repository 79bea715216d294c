"""QA pairs from documents through an OpenAI-compatible endpoint, against a fake server started here: success,
a malformed reply, a 429 then success, a dropped connection; resume after a kill without duplicates; clear lines
for an unreachable endpoint and a missing prompt file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from undo.errors import UserError
from undo.tools.qa_generation import Endpoint, default_prompt, generate, parse_pairs, read_documents

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-PLANTEDopenai0123456789"


class FakeServer:
    """/v1/chat/completions answering two pairs per document; a document's text picks its misbehaviour on the
    first request: 'malformed', 'rate-limit' (429) or 'drop' (closes the connection without a reply)."""

    def __init__(self, delay_s: float = 0.0, answer_first: int | None = None):
        self.calls: Counter = Counter()
        self.tokens: set = set()
        self.delay_s = delay_s
        # with answer_first=n, the requests after the first n wait until `release`: a client can be killed while
        # exactly n documents are answered, whatever the machine's speed
        self.answered, self.answer_first, self.released = 0, answer_first, threading.Event()
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                document = re.search(r"DOC\[(.*?)\]", body["messages"][0]["content"]).group(1)
                with lock:
                    server.calls[document] += 1
                    first = server.calls[document] == 1
                    server.tokens.add(self.headers.get("Authorization"))
                    server.answered += 1
                    hold = server.answer_first is not None and server.answered > server.answer_first
                if hold:
                    server.released.wait(timeout=60)
                time.sleep(server.delay_s)
                if first and "drop" in document:
                    self.close_connection = True
                    return
                if first and "rate-limit" in document:
                    self.send_response(429)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                pairs = [{"question": f"What is {document} #{i}?", "answer": f"answer {i}"} for i in range(2)]
                content = "Sure! Here you go" if first and "malformed" in document else json.dumps(pairs)
                reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda request, address: None  # a killed client's broken pipe is expected
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.released.set()
        self.httpd.shutdown()


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.close()


def documents(path: Path, names: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": name, "text": f"DOC[{name}] some facts."}) + "\n" for name in names))
    return path


def pairs_per_doc(output: Path) -> Counter:
    return Counter(json.loads(line)["doc"] for line in output.read_text().splitlines())


def test_success_malformed_rate_limit_and_dropped_connection(server, tmp_path):
    docs = read_documents(documents(tmp_path / "docs.jsonl", ["ok-1", "ok-2", "malformed", "rate-limit", "drop"]))
    endpoint = Endpoint(server.url, "fake-model", token=SECRET, retries=3, backoff_s=0.01)
    template = default_prompt().read_text()
    stats = generate(docs, tmp_path / "qa.jsonl", endpoint, template, concurrency=3, progress=False)
    print(stats.line())
    assert (stats.documents, stats.pairs, stats.failed) == (5, 10, 0)
    assert stats.requests == 8 and stats.retries == 3 and stats.malformed == 1
    assert pairs_per_doc(tmp_path / "qa.jsonl") == Counter({d: 2 for d, _ in docs})
    assert server.tokens == {f"Bearer {SECRET}"}
    for path in tmp_path.iterdir():
        assert SECRET not in path.read_text()
    again = generate(docs, tmp_path / "qa.jsonl", endpoint, template, progress=False)
    assert (again.skipped, again.requests) == (5, 0)  # a rerun finds every document done


def test_parse_pairs_accepts_a_fenced_list_and_rejects_the_rest():
    assert parse_pairs('```json\n[{"question": "Q?", "answer": "A"}]\n```') == [{"question": "Q?", "answer": "A"}]
    for bad in ("[]", '{"question": "Q", "answer": "A"}', '[{"question": "Q"}]', '[{"question": "", "answer": "A"}]'):
        with pytest.raises(ValueError):
            parse_pairs(bad)


def make_qa(*args, **popen):
    command = [sys.executable, "scripts/make_qa.py", *args]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.Popen(command, cwd=ROOT, text=True, **pipes)


def test_killed_run_resumes_without_duplicates(tmp_path):
    fake = FakeServer(answer_first=4)  # the fifth and later requests wait: the kill comes after four documents
    names = [f"doc-{i}" for i in range(12)]
    docs, output = documents(tmp_path / "docs.jsonl", names), tmp_path / "qa.jsonl"
    args = [str(docs), str(output), "--base-url", fake.url, "--model", "m", "--concurrency", "2", "--backoff", "0.01"]
    try:
        proc = make_qa(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done = output.with_name("qa.jsonl.done")
        deadline = time.time() + 60
        while time.time() < deadline and (not done.is_file() or len(done.read_text().split()) < 4):
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        finished_before = len(done.read_text().split())
        assert finished_before == 4
        fake.released.set()
        resumed = make_qa(*args)
        out, err = resumed.communicate(timeout=120)
    finally:
        fake.close()
    print(f"killed after {finished_before} documents; resumed: {out.strip()}")
    assert resumed.returncode == 0, err
    assert out.startswith(f"{12 - finished_before} documents done ({finished_before} already done before, 0 failed)")
    assert pairs_per_doc(output) == Counter(dict.fromkeys(names, 2))  # every document once, no duplicates
    assert len(set(output.read_text().splitlines())) == 24


def test_unreachable_endpoint_is_one_line_after_its_retries(tmp_path):
    docs = documents(tmp_path / "docs.jsonl", ["a"])
    proc = make_qa(
        str(docs),
        str(tmp_path / "qa.jsonl"),
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--retries",
        "2",
        "--backoff",
        "0.01",
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("error: cannot get replies from http://127.0.0.1:9/v1 (ConnectError on every attempt, 2 retries)")
    )
    assert "Traceback" not in err


def test_missing_prompt_file_is_one_line(tmp_path):
    docs = documents(tmp_path / "docs.jsonl", ["a"])
    proc = make_qa(
        str(docs), str(tmp_path / "qa.jsonl"), "--base-url", "http://x/v1", "--model", "m", "--prompt", "nope.txt"
    )
    _, err = proc.communicate(timeout=120)
    assert (
        proc.returncode == 2
        and err.strip() == "error: prompt file nope.txt does not exist: give --prompt a template file"
    )


def test_bad_document_line_is_named(tmp_path):
    (tmp_path / "docs.jsonl").write_text('{"text": "fine"}\n{"txt": "typo"}\n')
    with pytest.raises(UserError, match=r"docs.jsonl line 2 is not a JSON object with a 'text' field"):
        read_documents(tmp_path / "docs.jsonl")
