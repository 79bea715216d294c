"""Where documents come from: the embedded corpora, Hugging Face hub datasets, or local JSONL files.

A corpus source is a small JSON-able dict, so it can be recorded in a run's config and hashed into cache keys:
- ``{"kind": "embedded", "name": "libreoffice_en"}``: the xz-compressed JSONL shipped in ``undo/data/corpora``;
  every line carries its split.
- ``{"kind": "hub", "path": "HuggingFaceFW/fineweb-edu", "name": "sample-10BT", "validation_docs": 2000, ...}``:
  streamed with ``datasets``; the first ``validation_docs`` documents form the validation split, the rest train.
  ``"path": "json", "data_files": [...]`` reads local JSONL files of the same format through the same code.
- ``{"kind": "arithmetic", "ops": ["add", "sub"], "equations": 20000, "word_problems": 10000}``: generated
  problems (see undo.data.arithmetic) as `QA` documents, trained with loss on the answer only, or with
  ``"loss_on": "all"`` as plain text with loss on every token (the public scripts' way); the validation split is
  the evaluation items (held-out templates).
- ``{"kind": "quiz", "categories": ["element_symbols"], "passes": 20}``: the shipped four-choice fact questions
  (undo.data.quiz) as QA documents, `passes` differently shuffled copies in training, one in validation.
- ``{"kind": "qa", "data_files": ["forget_qa.jsonl"], "validation_docs": 200}``: local JSONL of {"question",
  "answer"} (what scripts/make_qa.py writes); the leading `validation_docs` pairs form the validation split.

An arithmetic or quiz source may keep one part of a keyed split of its facts (undo.data.facts), e.g.
``"facts": {"key": 0, "held_out": 0.5, "part": "shown"}``: what a held-out-facts attack trains on.

Question-answer documents follow the paper's format, question + "\nAnswer: " + answer, with loss on the answer.

A document is a string (every token is a target) or a `QA` (only the answer's tokens are).
"""

from __future__ import annotations

import hashlib
import json
import lzma
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from importlib import resources
from pathlib import Path

from undo.data import arithmetic
from undo.data.arithmetic import QA
from undo.data.facts import FactSplit
from undo.data.quiz import fingerprint, load_quiz
from undo.errors import UserError
from undo.io.credentials import read_token
from undo.io.hub import fetching

SPLITS = ("train", "validation")
KINDS = ("embedded", "hub", "arithmetic", "quiz", "qa")


def corpus_name(source: dict) -> str:
    """A short readable name for cache folders and logs."""
    if source["kind"] == "embedded":
        return source["name"]
    if source["kind"] == "arithmetic":
        return "arithmetic-" + "-".join(source["ops"])
    if source["kind"] == "quiz":
        return "quiz-" + "-".join(source["categories"])
    label = source.get("name") or Path(str(source.get("data_files", ["local"])[0])).stem
    return f"{Path(source.get('path', source['kind'])).name}-{label}".replace("/", "_")


def source_fingerprint(source: dict) -> dict:
    """What identifies a corpus's content for cache keys: the source, plus the generator's version if any."""
    if source.get("kind") == "arithmetic":
        return {**source, "generator": arithmetic.fingerprint()}
    if source.get("kind") == "quiz":
        return {**source, "items": fingerprint()}
    return source


def iter_documents(source: dict, split: str) -> Iterator[str | QA]:
    """Yield the documents of one split of a corpus, in a fixed order."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}: choose one of {SPLITS}")
    kind = source.get("kind")
    if "facts" in source and kind not in ("arithmetic", "quiz"):
        raise UserError(f"corpus {corpus_name(source)} is not made of facts to split: only arithmetic and quiz are")
    if kind == "embedded":
        return _embedded_documents(source["name"], split)
    if kind == "hub":
        return _hub_documents(source, split)
    if kind == "arithmetic":
        return _arithmetic_documents(source, split)
    if kind == "quiz":
        return _quiz_documents(source, split)
    if kind == "qa":
        return _qa_documents(source, split)
    raise UserError(f"unknown corpus kind {kind!r} in {source}: use one of {sorted(KINDS)}")


LOSS_ON = ("answer", "all")  # an arithmetic corpus's training targets: the answer only, or every token


def _arithmetic_documents(source: dict, split: str) -> Iterator[str | QA]:
    loss_on = source.get("loss_on", "answer")
    if loss_on not in LOSS_ON:
        raise UserError(f"arithmetic corpus 'loss_on' is {loss_on!r}: choose one of {LOSS_ON}")
    if split == "train":
        items = arithmetic.training_items(source["ops"], source["equations"], source["word_problems"])
    else:
        items = arithmetic.evaluation_items(source["ops"])
    keeps = _keeps(source)
    whole = loss_on == "all" and split == "train"
    return (item.qa.text if whole else item.qa for item in items if keeps(item.fact))


def _keeps(source: dict) -> Callable[[str], bool]:
    """Which facts the source keeps: all, or those in the part of the split it names."""
    if "facts" not in source:
        return lambda fact: True
    split, part = FactSplit.of_source(source["facts"])
    return lambda fact: split.part(fact) == part


ANSWER_CUE = "\nAnswer:"  # ends the prompt of the paper's QA text; the multiple-choice tasks reuse it


def question_answer(question: str, answer: str) -> QA:
    """The paper's QA text: the answer, after one space, is the only target (a multiple-choice scorer reads the
    same prompt and the choice after a space)."""
    return QA(question + ANSWER_CUE, f" {answer}")


def _quiz_documents(source: dict, split: str) -> Iterator[QA]:
    keeps = _keeps(source)
    items = [i for i in load_quiz() if i.category in source["categories"] and keeps(i.question)]
    if not items:
        raise UserError(f"no quiz items in categories {source['categories']}: see undo.data.quiz.categories()")
    for rep in range(source.get("passes", 1) if split == "train" else 1):
        order = sorted(items, key=lambda i: hashlib.sha256(f"{rep}:{i.question}".encode()).digest())
        yield from (question_answer(i.question, i.answer) for i in order)


def _qa_documents(source: dict, split: str) -> Iterator[QA]:
    n_validation = source.get("validation_docs", 0)
    index = 0
    for path in source["data_files"]:
        if not Path(path).is_file():
            raise UserError(f"question-answer file {path} does not exist: write it with scripts/make_qa.py")
        with open(path, encoding="utf-8") as lines:
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                row = _parse_row(line, path, lineno)
                missing = [f for f in ("question", "answer") if not isinstance(row.get(f), str)]
                if missing:
                    raise UserError(
                        f"{path}, line {lineno}: no string {missing[0]!r} field; every line needs "
                        '{"question": ..., "answer": ...}'
                    )
                if (index < n_validation) == (split == "validation"):
                    yield question_answer(row["question"], row["answer"])
                index += 1


def embedded_path(name: str) -> Path:
    return Path(str(resources.files("undo.data") / "corpora" / f"{name}.jsonl.xz"))


def _embedded_documents(name: str, split: str) -> Iterator[str]:
    path = embedded_path(name)
    if not path.is_file():
        raise UserError(f"embedded corpus file {path} is missing: restore it with `git checkout -- {path}`")
    with lzma.open(path, "rt", encoding="utf-8") as lines:
        for lineno, line in enumerate(lines, 1):
            row = _parse_line(line, path, lineno)
            if row.get("split") == split:
                yield row["text"]


def _parse_line(line: str, path: Path | str, lineno: int) -> dict:
    row = _parse_row(line, path, lineno)
    if not isinstance(row.get("text"), str):
        raise UserError(f"{path}, line {lineno}: expected an object with a string 'text' field")
    return row


def _parse_row(line: str, path: Path | str, lineno: int) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}, line {lineno}: not valid JSON ({err.msg}); fix or delete that line") from None
    if not isinstance(row, dict):
        raise UserError(f"{path}, line {lineno}: expected a JSON object")
    return row


def _hub_documents(source: dict, split: str) -> Iterator[str]:
    """Stream a hub (or local JSONL) dataset with `datasets`; the leading documents are the validation split."""
    import datasets  # heavy: only hub and local-file corpora need it

    data_files = source.get("data_files")
    for path in data_files or []:
        if not Path(path).is_file():
            raise UserError(f"corpus file {path} does not exist: check the 'data_files' of the corpus source")
    with _hub_access(source):
        stream = datasets.load_dataset(
            source["path"],
            name=source.get("name") if not data_files else None,
            data_files=data_files,
            split="train",
            streaming=True,
            token=read_token("hf"),
        )
    n_validation = source.get("validation_docs", 0)
    field = source.get("text_field", "text")
    try:
        with _hub_access(source):
            for index, row in enumerate(stream):
                if (index < n_validation) == (split == "validation"):
                    yield row[field]
                elif split == "validation":
                    return
    except UserError:
        raise
    except Exception as err:  # datasets wraps parse errors; point at the offending line when the file is local
        for path in data_files or []:
            _find_bad_line(path)
        raise UserError(f"could not read corpus {corpus_name(source)}: {err}") from None


def _hub_access(source: dict):
    """A hub that cannot be reached as one line; local files need no hub (probing it would fail offline)."""
    return nullcontext() if source.get("data_files") else fetching(f"dataset {source['path']}")


def _find_bad_line(path: str) -> None:
    with open(path, encoding="utf-8", errors="replace") as lines:
        for lineno, line in enumerate(lines, 1):
            if line.strip():
                _parse_line(line, path, lineno)
