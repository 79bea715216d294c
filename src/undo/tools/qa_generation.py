"""Question-answer pairs from documents through any OpenAI-compatible chat endpoint (a local vLLM server or a
hosted API), for the WMDP setting's answer-only training data.

Requests run concurrently, with retries and exponential backoff on rate limits (429, honouring Retry-After),
server errors and dropped connections; a reply that is not a JSON list of {"question", "answer"} is asked again.
Output is resumable: a document's pairs are appended, then its id is appended to `<output>.done`; a rerun skips
done documents and first drops pairs of documents that never reached `.done` (a killed run), so no pair is
written twice. The token is sent in a header and never printed or written.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import httpx
from tqdm.auto import tqdm

from undo.errors import UserError
from undo.io.files import write_text


def default_prompt() -> Path:
    return Path(str(resources.files("undo.data") / "prompts" / "qa_pairs.txt"))


@dataclass
class Endpoint:
    base_url: str  # e.g. http://localhost:8000/v1
    model: str
    token: str | None = field(default=None, repr=False)
    retries: int = 5
    backoff_s: float = 1.0  # first wait; doubled each retry, with jitter
    max_backoff_s: float = 60.0
    timeout_s: float = 120.0
    temperature: float = 0.0


@dataclass
class Stats:
    documents: int = 0  # finished in this run
    skipped: int = 0  # finished by an earlier run
    failed: int = 0  # still without a valid reply after the retries (a rerun tries them again)
    pairs: int = 0
    requests: int = 0
    retries: int = 0
    malformed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def line(self) -> str:
        return (
            f"{self.documents} documents done ({self.skipped} already done before, {self.failed} failed), "
            f"{self.pairs} pairs; {self.requests} requests, {self.retries} retries, {self.malformed} malformed replies"
        )


class EndpointDown(Exception):
    """The endpoint kept failing (no connection, rate limits, server errors) through every retry."""


def parse_pairs(content: str) -> list[dict]:
    """The pairs of a reply: a JSON list of objects with non-empty string question and answer (a ```json fence
    around it is allowed); anything else is a ValueError."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    pairs = json.loads(text)
    if not isinstance(pairs, list) or not pairs:
        raise ValueError("not a non-empty JSON list")
    out = []
    for pair in pairs:
        if not isinstance(pair, dict) or not all(
            isinstance(pair.get(k), str) and pair[k].strip() for k in ("question", "answer")
        ):
            raise ValueError(f"not a question-answer pair: {pair!r}")
        out.append({"question": pair["question"].strip(), "answer": pair["answer"].strip()})
    return out


def _wait(endpoint: Endpoint, attempt: int, retry_after: str | None = None) -> None:
    if retry_after is not None:
        try:
            time.sleep(min(float(retry_after), endpoint.max_backoff_s))
            return
        except ValueError:
            pass
    delay = min(endpoint.backoff_s * 2**attempt, endpoint.max_backoff_s)
    time.sleep(delay * (0.5 + random.random() / 2))


def request_pairs(client, endpoint: Endpoint, prompt: str, stats: Stats) -> list[dict] | None:
    """The pairs for one prompt, or None when every attempt got a malformed reply."""

    headers = {"Authorization": f"Bearer {endpoint.token}"} if endpoint.token else {}
    body = {
        "model": endpoint.model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": endpoint.temperature,
    }
    problem = "no attempt"
    for attempt in range(endpoint.retries + 1):
        if attempt:
            stats.add(retries=1)
        stats.add(requests=1)
        try:
            reply = client.post(f"{endpoint.base_url.rstrip('/')}/chat/completions", json=body, headers=headers)
        except httpx.TransportError as err:  # refused, dropped or timed-out connections
            problem = type(err).__name__
            _wait(endpoint, attempt)
            continue
        if reply.status_code == 429 or reply.status_code >= 500:
            problem = f"HTTP {reply.status_code}"
            _wait(endpoint, attempt, reply.headers.get("retry-after"))
            continue
        if reply.status_code >= 400:
            raise UserError(
                f"{endpoint.base_url} refused the request (HTTP {reply.status_code}: {reply.text[:200].strip()}): "
                "check --model and the token"
            )
        try:
            return parse_pairs(reply.json()["choices"][0]["message"]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            stats.add(malformed=1)
            problem = "malformed"
    if problem == "malformed":
        return None
    raise EndpointDown(f"{problem} on every attempt")


def read_documents(path: Path, text_field: str = "text") -> list[tuple[str, str]]:
    """(id, text) per line of a JSONL file: the line's "id" if it has one, else its line number."""
    if not Path(path).is_file():
        raise UserError(f"document file {path} does not exist")
    docs = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = row[text_field]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserError(f"{path} line {number} is not a JSON object with a {text_field!r} field") from None
            docs.append((str(row.get("id", number)), text))
    return docs


def _resume(output: Path, done_path: Path) -> set[str]:
    """The ids already done; drops pairs (and partial lines) of documents that never reached the done file."""
    done = set(done_path.read_text(encoding="utf-8").split("\n")) - {""} if done_path.is_file() else set()
    if output.is_file():
        kept = []
        for line in output.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["doc"] in done:
                    kept.append(line + "\n")
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        write_text(output, "".join(kept))
    return done


def generate(
    docs: list[tuple[str, str]],
    output: Path,
    endpoint: Endpoint,
    template: str,
    n_pairs: int = 5,
    concurrency: int = 8,
    progress: bool = True,
) -> Stats:
    """Write the pairs of every document not yet done to `output` (JSONL: question, answer, doc)."""

    output = Path(output)
    done_path = output.with_name(output.name + ".done")
    output.parent.mkdir(parents=True, exist_ok=True)
    done = _resume(output, done_path)
    stats = Stats(skipped=sum(1 for doc_id, _ in docs if doc_id in done))
    todo = [(doc_id, text) for doc_id, text in docs if doc_id not in done]
    with (
        httpx.Client(timeout=endpoint.timeout_s) as client,
        ThreadPoolExecutor(max_workers=concurrency) as pool,
        open(output, "a", encoding="utf-8") as pairs_file,
        open(done_path, "a", encoding="utf-8") as done_file,
    ):
        futures = {
            pool.submit(request_pairs, client, endpoint, template.format(document=text, n_pairs=n_pairs), stats): doc_id
            for doc_id, text in todo
        }
        bar = tqdm(as_completed(futures), total=len(futures), desc="documents", disable=not progress)
        for future in bar:
            doc_id = futures[future]
            try:
                pairs = future.result()
            except EndpointDown as err:
                pool.shutdown(wait=False, cancel_futures=True)
                raise UserError(
                    f"cannot get replies from {endpoint.base_url} ({err}, {endpoint.retries} retries): check "
                    "--base-url and that the server runs; rerun the same command to resume (finished documents kept)"
                ) from None
            if pairs is None:
                stats.add(failed=1)
                continue
            pairs_file.write("".join(json.dumps({**pair, "doc": doc_id}, ensure_ascii=False) + "\n" for pair in pairs))
            pairs_file.flush()
            done_file.write(doc_id + "\n")
            done_file.flush()
            stats.add(documents=1, pairs=len(pairs))
            bar.set_postfix(pairs=stats.pairs, retries=stats.retries)
    return stats
