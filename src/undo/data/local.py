"""Local files that stand in for the paper's hub corpora when the paper scale is rehearsed on a CPU
(`--scale rehearsal`, see undo.runner.shrink): parquet files with the hub datasets' columns and question-answer
JSONL, written from the embedded corpora, so the paper-scale data code (streaming parquet, packing long blocks)
runs offline with the same formats."""

from __future__ import annotations

import json
import os
from pathlib import Path

from undo.data.corpora import corpus_name, iter_documents
from undo.data.quiz import FORGET_CATEGORIES, load_quiz
from undo.io.files import temporary, write_text

DATA = Path("data/rehearsal")  # the local corpora and start checkpoint, relative to the working directory
VALIDATION_DOCS = 40
TRAIN_TOKENS = 200_000
STAND_IN = DATA / "start-gemma-2-2b"  # where a randomly initialised model stands in for a pretrained start

# The hub datasets' other columns (the loaders read `text`, or the source's `text_field`), filled so the files have
# the real layout. Korean text stands in for FineWeb-2 Korean, English LibreOffice help for every English corpus.
KOREAN = ("HuggingFaceFW/fineweb-2",)
COLUMNS = {
    "HuggingFaceFW/fineweb-edu": ("id", "dump", "url", "language", "token_count"),
    "HuggingFaceFW/fineweb-2": ("id", "dump", "url", "language", "language_script"),
    "wikimedia/wikipedia": ("id", "url", "title"),
    "cais/wmdp-bio-forget-corpus": ("title", "abstract", "doi"),
    "Magpie-Align": ("uuid", "model", "instruction", "task_category", "difficulty"),  # every Magpie set
}


def local_source(source: dict) -> dict:
    """A paper-scale corpus source with its hub dataset or local QA files replaced by rehearsal files of the same
    format, and its budgets cut to CPU size."""
    if source["kind"] == "hub":
        local = {"kind": "hub", "path": "parquet", "data_files": [str(DATA / f"{corpus_name(source)}.parquet")]}
        field = {"text_field": source["text_field"]} if "text_field" in source else {}
        return {**local, **field, "validation_docs": VALIDATION_DOCS, "train_tokens": TRAIN_TOKENS}
    if source["kind"] == "qa":
        files = [str(DATA / Path(f).name) for f in source["data_files"]]
        return {**source, "data_files": files, "validation_docs": VALIDATION_DOCS}
    if source["kind"] == "arithmetic":
        return {**source, "equations": 2000, "word_problems": 200}
    return source


def write_local_data(corpora: dict[str, dict]) -> None:
    """Write the rehearsal files that these paper-scale corpora need (once; they are deterministic)."""
    DATA.mkdir(parents=True, exist_ok=True)
    for source in corpora.values():
        if source["kind"] == "hub":
            _write_parquet(source, Path(local_source(source)["data_files"][0]))
        elif source["kind"] == "qa":
            for path in local_source(source)["data_files"]:
                _write_qa(Path(path))


def _write_parquet(source: dict, path: Path) -> None:
    if path.is_file():
        return
    import datasets  # heavy: only a rehearsal writes parquet

    name = "libreoffice_ko" if source["path"] in KOREAN else "libreoffice_en"
    texts = [*iter_documents({"kind": "embedded", "name": name}, "validation")]
    texts += [*iter_documents({"kind": "embedded", "name": name}, "train")]
    others = {
        c: [f"{c}-{i}" for i in range(len(texts))]
        for c in COLUMNS.get(source["path"], COLUMNS.get(source["path"].split("/")[0], ()))
    }
    columns = {source.get("text_field", "text"): texts, **others}
    tmp = temporary(path)
    datasets.Dataset.from_dict(columns).to_parquet(str(tmp))
    os.replace(tmp, path)


def _write_qa(path: Path) -> None:
    """Question-answer pairs from the quiz: the stand-in's forget categories for the forget files, the others
    else."""
    if path.is_file():
        return
    forget = "forget" in path.name
    quiz = load_quiz()
    rows = [{"question": i.question, "answer": i.answer} for i in quiz if (i.category in FORGET_CATEGORIES) == forget]
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
