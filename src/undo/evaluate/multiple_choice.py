"""Multiple-choice accuracy through lm-evaluation-harness, in process: its HFLM wraps the live model, so no
checkpoint is written to be scored.

A task is either one lm-eval knows (`wmdp_bio`, `mmlu`: fetched from the hub at paper scale) or a local one
written from items this project ships (the quiz stand-in): a YAML and a JSONL file in the experiment's cache,
read by lm-eval's own `json` loader, so the identical code path runs offline.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from contextlib import redirect_stderr
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from undo.data.corpora import ANSWER_CUE
from undo.data.facts import FactSplit
from undo.data.quiz import load_quiz
from undo.errors import UserError
from undo.evaluate.metrics import Metric
from undo.evaluate.tasks import Task, no_facts
from undo.io.files import write_text

if TYPE_CHECKING:  # annotations only: the experiment sits above this layer
    from undo.experiment import Experiment

# The prompt of the paper's QA format, as training reads it; lm-eval puts one space before a choice.
QUESTION_TEMPLATE = "{{question}}" + ANSWER_CUE
SEED = 1234  # lm-eval's few-shot sampler: the same shots on every evaluation (`limit` takes the leading documents)


def local_task_yaml(name: str, data_file: Path) -> str:
    """An lm-eval multiple-choice task over a JSONL file of {"question", "choices", "label"} rows."""
    return "\n".join(
        [
            f"task: {name}",
            "dataset_path: json",
            "dataset_kwargs:",
            "  data_files:",
            f"    test: {json.dumps(str(data_file))}",
            "test_split: test",
            "output_type: multiple_choice",
            f"doc_to_text: {json.dumps(QUESTION_TEMPLATE)}",
            'doc_to_choice: "{{choices}}"',
            "doc_to_target: label",
            "metric_list:",
            "  - metric: acc",
            "    aggregation: mean",
            "    higher_is_better: true",
            "",
        ]
    )


def write_local_task(folder: Path, name: str, rows: list[dict]) -> Path:
    """The task's YAML and data under a folder named by their content (a changed item list is a new folder)."""
    data = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
    key = hashlib.sha256(data.encode()).hexdigest()[:12]
    task_dir = Path(folder) / f"{name}-{key}"
    if not (task_dir / f"{name}.yaml").is_file():
        task_dir.mkdir(parents=True, exist_ok=True)
        write_text(task_dir / f"{name}.jsonl", data)
        write_text(task_dir / f"{name}.yaml", local_task_yaml(name, (task_dir / f"{name}.jsonl").resolve()))
    return task_dir


@lru_cache(maxsize=8)
def task_manager(include_path: str | None):
    """lm-eval's task index: only the local folder when given (fast, offline), else lm-eval's own tasks."""
    from lm_eval.tasks import TaskManager  # heavy: only multiple-choice scoring needs lm-eval

    if include_path is None:
        return TaskManager()
    return TaskManager(include_path=include_path, include_defaults=False)


class MultipleChoice(Task):
    """`metric`: lm-eval's `acc` on `task` (`num_fewshot` shots, the first `limit` documents or share of them);
    with `quiz` categories the task is written locally from the shipped quiz items of those categories."""

    def __init__(
        self,
        metric: str,
        task: str | None = None,
        num_fewshot: int = 0,
        limit: float | None = None,
        quiz: tuple[str, ...] | None = None,
    ):
        if (task is None) == (quiz is None):
            raise UserError(f"multiple-choice metric {metric!r} needs either an lm-eval task name or quiz categories")
        self.metric = Metric(metric, higher_is_better=True)
        self.task = task or f"undo_{metric}"
        self.num_fewshot = num_fewshot
        self.limit = limit
        self.quiz = tuple(quiz) if quiz else None

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return (self.metric,)

    def rows(self, held_out: FactSplit | None = None) -> list[dict]:
        """The local task's documents: the quiz items of its categories (with `held_out`, of its held-out part)."""
        rows = [
            {"question": i.question, "choices": list(i.choices), "label": i.label}
            for i in load_quiz()
            if i.category in self.quiz and (held_out is None or held_out.part(i.question) == "held_out")
        ]
        if not rows:
            raise UserError(f"no quiz items in categories {list(self.quiz)}: see undo.data.quiz.categories()")
        return rows

    def include_path(self, exp: Experiment, held_out: FactSplit | None = None) -> str | None:
        if self.quiz is None:
            no_facts(self, held_out)
            return None
        return str(write_local_task(Path(exp.out) / "cache" / "lm_eval", self.task, self.rows(held_out)))

    def evaluate(self, model, exp: Experiment, names=None, held_out=None) -> dict[str, float]:
        """lm-eval's accuracy of the live model; an unknown task name is one line."""
        from lm_eval import simple_evaluate  # heavy: only multiple-choice scoring needs lm-eval
        from lm_eval.models.huggingface import HFLM

        include_path = self.include_path(exp, held_out)
        manager = task_manager(include_path)
        if self.task not in manager.all_tasks:
            where = f"the local tasks in {include_path}" if include_path else "lm-evaluation-harness"
            raise UserError(
                f"{where} has no task {self.task!r}: check the setting's task names (`lm-eval ls tasks` lists them)"
            )
        for logger in ("lm-eval", "lm_eval"):
            logging.getLogger(logger).setLevel(logging.ERROR)
        was_training = model.training
        model.eval()
        # lm-eval's own progress bars (several per call) would bury the training bar they interrupt.
        try:
            with redirect_stderr(io.StringIO()), torch.no_grad():
                lm = HFLM(
                    pretrained=model,
                    tokenizer=exp.tokenizer,
                    batch_size=exp.scale.eval_batch_size,
                    max_length=model.config.max_position_embeddings,
                )
                out = simple_evaluate(
                    model=lm,
                    tasks=[self.task],
                    num_fewshot=self.num_fewshot,
                    limit=self.limit,
                    task_manager=manager,
                    log_samples=False,
                    bootstrap_iters=0,
                    # lm-eval would reseed the global generators mid-training; only its few-shot sampler needs one
                    random_seed=None,
                    numpy_random_seed=None,
                    torch_random_seed=None,
                    fewshot_random_seed=SEED,
                )
        finally:
            model.train(was_training)
        return {self.metric.name: float(out["results"][self.task]["acc,none"])}
