"""Turn documents (JSONL) into question-answer pairs through any OpenAI-compatible endpoint.

    uv run python scripts/make_qa.py docs.jsonl qa.jsonl --base-url http://localhost:8000/v1 --model MODEL
    uv run python scripts/make_qa.py docs.jsonl qa.jsonl --base-url https://api.openai.com/v1 --model gpt-4o-mini

Output lines are {"question", "answer", "doc"}: the format the WMDP setting trains on. Rerunning the same command
resumes: finished documents are skipped and nothing is written twice. The token comes from tokens/openai_token.txt
or OPENAI_API_KEY (a local server needs none) and is never printed or written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from undo.cli import guarded


def main(argv: list[str] | None = None) -> int:
    from undo.errors import UserError
    from undo.io.credentials import read_token
    from undo.tools.qa_generation import Endpoint, default_prompt, generate, read_documents

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("documents", help="JSONL with a text field (and optionally an id) per line")
    p.add_argument("output", help="JSONL of question-answer pairs (appended to; resumable)")
    p.add_argument("--base-url", required=True, help="the endpoint's base URL, ending in /v1")
    p.add_argument("--model", required=True)
    p.add_argument("--prompt", default=str(default_prompt()), help="prompt template with {document} and {n_pairs}")
    p.add_argument("--pairs-per-document", type=int, default=5)
    p.add_argument("--text-field", default="text")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--backoff", type=float, default=1.0, help="first wait between retries, seconds (doubles)")
    p.add_argument("--limit", type=int, help="only the first N documents")
    args = p.parse_args(argv)
    prompt = Path(args.prompt)
    if not prompt.is_file():
        raise UserError(f"prompt file {prompt} does not exist: give --prompt a template file")
    template = prompt.read_text(encoding="utf-8")
    if "{document}" not in template:
        raise UserError(f"prompt file {prompt} has no {{document}} slot for the document's text")
    if args.concurrency < 1 or args.retries < 0 or args.pairs_per_document < 1:
        raise UserError("--concurrency and --pairs-per-document must be >= 1 and --retries >= 0")
    docs = read_documents(Path(args.documents), args.text_field)[: args.limit]
    endpoint = Endpoint(args.base_url, args.model, read_token("openai"), args.retries, args.backoff)
    stats = generate(docs, Path(args.output), endpoint, template, args.pairs_per_document, args.concurrency)
    print(stats.line())
    return 1 if stats.failed else 0


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
