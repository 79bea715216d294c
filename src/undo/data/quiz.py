"""Multiple-choice fact questions (capitals, element symbols, collective nouns, poem authors, ...).

The items ship in ``undo/data/corpora/quiz.jsonl.xz``, built from the quiz(6) data of the Debian package
``bsdgames`` by ``scripts/extract_quiz.py`` (provenance and license in ``corpora/NOTICE-quiz.md``). They give a
small, fixed, offline set of facts whose knowledge can be scored by picking one of four choices.
"""

from __future__ import annotations

import functools
import hashlib
import json
import lzma
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# The WMDP stand-in's split of the categories: one forgotten, the others kept.
FORGET_CATEGORIES = ("element_symbols",)
RETAIN_CATEGORIES = (
    "capitals_africa", "capitals_americas", "capitals_asia", "capitals_europe", "collective_nouns", "poem_authors",
    "us_state_capitals",
)  # fmt: skip


@dataclass(frozen=True)
class QuizItem:
    """One question with its choices; `label` is the index of the right one."""

    category: str
    question: str
    choices: tuple[str, ...]
    label: int

    @property
    def answer(self) -> str:
        """The right choice."""
        return self.choices[self.label]


def _quiz_path() -> Path:
    return Path(str(resources.files("undo.data") / "corpora" / "quiz.jsonl.xz"))


@functools.lru_cache(maxsize=1)
def load_quiz() -> list[QuizItem]:
    """All shipped items, sorted by (category, question); cached, so callers must not mutate the list."""
    with lzma.open(_quiz_path(), "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [QuizItem(r["category"], r["question"], tuple(r["choices"]), r["label"]) for r in rows]


def fingerprint() -> str:
    """Identifies the shipped items, for cache keys."""
    return hashlib.sha256(_quiz_path().read_bytes()).hexdigest()[:12]


def categories() -> list[str]:
    """The distinct categories, sorted, e.g. for per-category accuracy."""
    return sorted({item.category for item in load_quiz()})
