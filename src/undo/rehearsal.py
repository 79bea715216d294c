"""The paper scale rehearsed on a CPU, before any GPU time is spent.

`--scale rehearsal` runs a setting's paper grids thinned to one job of each kind and cut to one step, with
the paper's model shapes and sequence lengths, a tokenizer of Gemma-2's vocabulary size (undo.data.tokenizer)
and local files in the formats of the hub corpora, written here from the embedded corpora. So the paper-scale
code paths (streaming parquet, packing 2048-token blocks, gradient accumulation, chunked losses at a 256k
vocabulary, checkpointing, saving, chaining by name, selection, the report) all run offline on a CPU.

What a CPU cannot hold is scaled down and said so: one row per micro-batch and per evaluation batch, logit losses
256 positions at a time, a few validation blocks, and for WMDP a randomly initialised model of Gemma-2-2b's depth
at the 0.1B width saved as the start checkpoint in place of google/gemma-2-2b, with lm-eval's hub tasks replaced
by the local quiz tasks under the same names and options.
"""

from __future__ import annotations

import os
import re
from copy import deepcopy
from pathlib import Path

from undo.data.corpora import corpus_name, iter_documents
from undo.files import temporary, write_text

DATA = Path("data/rehearsal")  # the local corpora and start checkpoint, relative to the working directory
STEPS = 1  # a step of two accumulated micro-batches: 0.1B at 2048 x 256k takes ~50 s of a 2-core CPU
GRAD_ACCUM = 2
VALIDATION_DOCS = 40
CHUNK_ROWS = 256  # logit positions at a time: the language rehearsal peaked at 12 GB of a 24 GB machine with 256
TRAIN_TOKENS = 200_000
START = "start-gemma-2-2b"

# The hub datasets' columns (the loaders read `text`, or `text_field`); the rest are filled so the files have the
# real layout. Korean text stands in for FineWeb-2 Korean, English LibreOffice help for every English corpus.
KOREAN = ("HuggingFaceFW/fineweb-2",)
COLUMNS = {
    "HuggingFaceFW/fineweb-edu": ("id", "dump", "url", "language", "token_count"),
    "HuggingFaceFW/fineweb-2": ("id", "dump", "url", "language", "language_script"),
    "wikimedia/wikipedia": ("id", "url", "title"),
    "tatsu-lab/alpaca": ("instruction", "input", "output"),
}


def local_source(source: dict) -> dict:
    """A paper-scale corpus source with its hub dataset or local QA files replaced by rehearsal files of the same
    format, and its budgets cut to CPU size."""
    if source["kind"] == "hub":
        local = {"kind": "hub", "path": "parquet", "data_files": [str(DATA / f"{corpus_name(source)}.parquet")]}
        return {**local, "validation_docs": VALIDATION_DOCS, "train_tokens": TRAIN_TOKENS}
    if source["kind"] == "qa":
        files = [str(DATA / Path(f).name) for f in source["data_files"]]
        return {**source, "data_files": files, "validation_docs": VALIDATION_DOCS}
    if source["kind"] == "arithmetic":
        return {**source, "equations": 2000, "word_problems": 200}
    return source


def write_local_data(setting) -> None:
    """Write the rehearsal files the setting's paper corpora need (once; they are deterministic), and where the
    rehearsal's model stands in for a pretrained start (WMDP), that start checkpoint."""
    paper, rehearsal = setting.scale("paper"), setting.scale("rehearsal")
    DATA.mkdir(parents=True, exist_ok=True)
    for source in paper.corpora.values():
        if source["kind"] == "hub":
            _write_parquet(source, Path(local_source(source)["data_files"][0]))
        elif source["kind"] == "qa":
            for path in local_source(source)["data_files"]:
                _write_qa(Path(path))
    if rehearsal.model != paper.model:
        _write_start(rehearsal.model)


def _write_parquet(source: dict, path: Path) -> None:
    if path.is_file():
        return
    import datasets

    name = "libreoffice_ko" if source["path"] in KOREAN else "libreoffice_en"
    texts = [*iter_documents({"kind": "embedded", "name": name}, "validation")]
    texts += [*iter_documents({"kind": "embedded", "name": name}, "train")]
    columns = {"text": texts, **{c: [f"{c}-{i}" for i in range(len(texts))] for c in COLUMNS.get(source["path"], ())}}
    tmp = temporary(path)
    datasets.Dataset.from_dict(columns).to_parquet(str(tmp))
    os.replace(tmp, path)


def _write_qa(path: Path) -> None:
    """Question-answer pairs from the quiz: element symbols for the forget files, the other categories else."""
    import json

    from undo.data.quiz import load_quiz
    from undo.settings import QUIZ_FORGET

    if path.is_file():
        return
    forget = "forget" in path.name
    rows = [{"question": i.question, "answer": i.answer} for i in load_quiz() if (i.category in QUIZ_FORGET) == forget]
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def start_folder() -> Path:
    return DATA / START


def _write_start(model: str) -> None:
    """Once per preset: a start saved from another preset (an earlier stand-in) is replaced."""
    import json
    import shutil

    from undo.data.tokenizer import GEMMA_SIZED, load_tokenizer
    from undo.models import PRESETS, build_model

    config = start_folder() / "config.json"
    if config.is_file() and PRESETS[model].items() <= json.loads(config.read_text()).items():
        return
    tmp = temporary(start_folder())
    build_model(model, load_tokenizer(GEMMA_SIZED), seed=0).save_pretrained(tmp)
    shutil.rmtree(start_folder(), ignore_errors=True)
    os.replace(tmp, start_folder())


NUMBER = re.compile(r"\d+(\.\d+)?(e-?\d+)?")
REFS = ("model", "teacher", "student")


def kind(job) -> tuple:
    """What a job exercises: its name with the numbers blanked (`maxent-lr#`, `maxent-sam-lr#`); for distillation
    its kind and student (full distillation of any teacher is one code path); for an attack the stage of its
    target (every attack trains the same way, whatever model it loads)."""
    if job.stage == "distill":
        return (job.stage, job.params.get("kind"), job.params.get("student"))
    if job.stage == "relearn":
        return (job.stage, job.params["model"].split("/")[0])
    return (job.stage, NUMBER.sub("#", job.name))


def rehearse(jobs: list) -> list:
    """One job of each kind, cut to `STEPS` steps; jobs that read a run left out are left out too."""
    from undo.launch import Job

    kept, dropped, kinds = [], set(), set()
    for job in jobs:
        reads = {job.params.get(key) for key in REFS}
        if kind(job) in kinds or reads & dropped:
            dropped.add(job.ref)
            continue
        kinds.add(kind(job))
        kept.append(Job(job.stage, job.name, _cut(job.params)))
    return kept


def _cut(params: dict) -> dict:
    params = deepcopy(params)
    if "start" in params:  # the pretrained checkpoint a setting starts from (WMDP: google/gemma-2-2b)
        params["start"] = str(start_folder())
    if "batch_size" in params:
        params["batch_size"] = 1
    if "eval_every" in params:
        params["eval_every"] = STEPS
    if "eval_at" in params:
        params["eval_at"] = [STEPS]
    if "steps" in params:
        params["steps"] = STEPS
    if "grad_accum" in params:
        params["grad_accum"] = min(params["grad_accum"], GRAD_ACCUM)
    if params.get("chunk_rows"):  # a loss is the same at any chunk size (tests); smaller chunks, less memory
        params["chunk_rows"] = min(params["chunk_rows"], CHUNK_ROWS)
    if "optim" in params:
        optim = params["optim"]
        optim.update(steps=STEPS, warmup=0, grad_accum=min(optim.get("grad_accum", 1), GRAD_ACCUM))
    return params
